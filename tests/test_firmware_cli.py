"""``python -m firmware matvec``: happy path and every kind of bad input."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(9)
    w = rng.choice([-1, 1], size=(80, 10)).astype(np.int8)
    x = rng.choice([-1, 1], size=(7, 80)).astype(np.float64)
    np.save(tmp_path / "W.npy", w)
    np.save(tmp_path / "X.npy", x)
    return tmp_path, w, x


def _run(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def _args(tmp, **over):
    a = {"--weights": str(tmp / "W.npy"), "--inputs": str(tmp / "X.npy"),
         "--out": str(tmp / "Y.npz"), "--backend": "model", "--preset": "ideal", "--seed": "0"}
    a.update(over)
    out = ["matvec"]
    for k, v in a.items():
        if v is not None:
            out += [k, v]
    return out


def test_happy_path(files, capsys):
    tmp, w, x = files
    code, err = _run(capsys, *_args(tmp))
    assert code == 0 and err == ""
    y = np.load(tmp / "Y.npz")
    assert np.array_equal(y["dot"], x @ w)
    assert y["codes"].shape == (2, 7, 10)
    assert set(y.files) >= {"dot", "codes", "activations", "timeouts"}
    assert [p.name for p in tmp.iterdir() if p.name.startswith("Y.npz.")] == []  # no temp left


def _bad(tmp, name, arr):
    path = tmp / name
    np.save(path, arr)
    return str(path)


@pytest.mark.parametrize("case", [
    "missing", "not_npy_suffix", "garbage", "wrong_shape", "not_pm1", "nan", "1d",
    "unknown_preset", "negative_seed", "bad_seed", "out_not_npz", "out_dir_missing",
    "unknown_option", "missing_option", "bool_dtype",
])
def test_bad_inputs_one_line_error_no_output(files, capsys, case):
    tmp, w, x = files
    over = {}
    if case == "missing":
        over["--weights"] = str(tmp / "nope.npy")
    elif case == "not_npy_suffix":
        (tmp / "W.txt").write_text("1 1")
        over["--weights"] = str(tmp / "W.txt")
    elif case == "garbage":
        (tmp / "G.npy").write_bytes(b"not an npy file")
        over["--weights"] = str(tmp / "G.npy")
    elif case == "wrong_shape":
        over["--inputs"] = _bad(tmp, "X2.npy", x[:, :79])
    elif case == "not_pm1":
        over["--weights"] = _bad(tmp, "W2.npy", np.where(w > 0, 1, 0))
    elif case == "nan":
        xn = x.copy()
        xn[3, 4] = np.nan
        over["--inputs"] = _bad(tmp, "X3.npy", xn)
    elif case == "1d":
        over["--weights"] = _bad(tmp, "W3.npy", w[:, 0])
    elif case == "bool_dtype":
        over["--weights"] = _bad(tmp, "W4.npy", w > 0)
    elif case == "unknown_preset":
        over["--preset"] = "heavenly"
    elif case == "negative_seed":
        over["--seed"] = "-1"
    elif case == "bad_seed":
        over["--seed"] = "one"
    elif case == "out_not_npz":
        over["--out"] = str(tmp / "Y.npy")
    elif case == "out_dir_missing":
        over["--out"] = str(tmp / "nodir" / "Y.npz")
    argv = _args(tmp, **over)
    if case == "unknown_option":
        argv += ["--frobnicate"]
    elif case == "missing_option":
        i = argv.index("--weights")
        del argv[i:i + 2]
    code, err = _run(capsys, *argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert not (tmp / "Y.npz").exists() and not (tmp / "Y.npy").exists()
    assert [p.name for p in tmp.iterdir() if ".tmp" in p.name] == []


def test_cosim_missing_is_exit_2(files, capsys, monkeypatch):
    tmp, _, _ = files
    monkeypatch.setitem(sys.modules, "firmware.cosim", None)  # make the import fail
    code, err = _run(capsys, *_args(tmp, **{"--backend": "cosim"}))
    assert code == 2 and err.startswith("error: cosim backend not available:")
    assert len(err.strip().splitlines()) == 1 and not (tmp / "Y.npz").exists()


def test_subprocess_help_and_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "firmware", "matvec", "--help"], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0
    for opt in ("--weights", "--inputs", "--backend", "--sim", "--preset", "--seed", "--out"):
        assert opt in r.stdout
    r = subprocess.run([sys.executable, "-m", "firmware", "matvec", "--weights",
                        str(tmp_path / "W.npy"), "--inputs", str(tmp_path / "X.npy"),
                        "--out", str(tmp_path / "Y.npz")], cwd=ROOT, capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "does not exist" in r.stderr and not (tmp_path / "Y.npz").exists()
