"""Every command-line tool answers a bad argument with one line on stderr and exit status 2."""

import os
import subprocess
import sys

import pytest

TOOLS = ["rtl", "firmware", "tb.run", "tb.bench", "tb.simcost", "tb.stress", "tb.waves", "analog_models.characterize",
         "apps.demo", "apps.paper", "apps.mnist_mlp", "apps.vgg8", "apps.face", "apps.sweeps",
         "apps.error_model", "rtl.board.fpga"]


@pytest.mark.parametrize("module", TOOLS)
def test_unknown_option_is_one_line_and_status_2(module, tmp_path):
    res = subprocess.run([sys.executable, "-m", module, "--no-such-option"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    # Either the unknown option or the missing sub-command is named, on one line.
    assert len(lines) == 1 and "error" in lines[0] and ("no-such-option" in lines[0] or "required" in lines[0]), res.stderr
    assert "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == [], "a refused command left files behind"


def test_simcost_refuses_bad_values_before_running(tmp_path):
    for args, word in ((["--sim", "xsim"], "xsim"), (["--batches", "0"], "--batches")):
        res = subprocess.run([sys.executable, "-m", "tb.simcost", *args], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and word in lines[0], res.stderr


def test_bad_cast_cache_switch_is_one_line_and_status_2(tmp_path):
    import numpy as np

    np.save(tmp_path / "w.npy", np.ones((64, 2)))
    np.save(tmp_path / "x.npy", np.ones((1, 64)))
    env = {**os.environ, "MRAM_ICARUS_CAST_CACHE": "fast"}
    for cmd in (["tb.run", "--sim", "icarus"], ["tb.bench"], ["tb.simcost"],
                ["firmware", "matvec", "--weights", "w.npy", "--inputs", "x.npy", "--out", "y.npz",
                 "--backend", "cosim"]):
        res = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, cwd=tmp_path,
                             env=env, timeout=120)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, (cmd, res.stderr)
        assert "MRAM_ICARUS_CAST_CACHE must be 0 or 1, not 'fast'" in lines[0], (cmd, res.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npy", "x.npy"]


def test_sweeps_refuse_bad_counts_and_run_without_mnist(tmp_path):
    for args in (["--n-dots", "0"], ["--n-digits", "-3"]):
        res = subprocess.run([sys.executable, "-m", "apps.sweeps", *args], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and "--n-dots and --n-digits" in lines[0], res.stderr
    assert list(tmp_path.iterdir()) == []
    # Without the data set the dot-product and energy sweeps still run; the network accuracies
    # are left out with the reason on the log, not with a traceback.
    env = {**os.environ, "MNIST_DIR": str(tmp_path / "no-mnist")}
    res = subprocess.run([sys.executable, "-m", "apps.sweeps", "--n-dots", "256", "--n-digits", "4", "--only", "clock",
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=600)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "VGG-8 accuracy left out of the sweeps: MNIST file" in res.stdout
    import json
    r = json.loads((tmp_path / "out" / "sweeps.json").read_text())
    assert r["vgg8_available"] is False and r["mlp_available"] is False
    points = r["sweeps"]["clock"]["points"]
    assert points and all("mean_abs_error" in p and "vgg8_emulated" not in p for p in points)
    assert (tmp_path / "out" / "sweep_clock.png").stat().st_size > 0
