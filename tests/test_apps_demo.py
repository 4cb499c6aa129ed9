"""``make demo`` entry point: clean failure without the data set, progress bar, JSON contents."""

import json
import os
import subprocess
import sys

from apps.demo import Progress, _read_progress
from apps.mnist import PROJECT_ROOT, write_idx

import numpy as np


def _run_demo(env_extra, *args):
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-m", "apps.demo", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_missing_dataset_is_one_line_and_exit_2(tmp_path):
    r = _run_demo({"MNIST_DIR": str(tmp_path / "no_mnist")}, "--out", str(tmp_path / "demo.json"))
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: MNIST file t10k-images-idx3-ubyte")
    assert "Traceback" not in r.stderr and str(tmp_path / "no_mnist") in lines[0]
    assert not (tmp_path / "demo.json").exists()


def test_demo_small_run_writes_json(tmp_path):
    """A tiny model-only run from a folder holding the 500-digit sample as both splits."""
    from apps.mnist import load_sample

    images, labels = load_sample(limit=60)
    for split in ("t10k", "train"):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels)
    out = tmp_path / "demo.json"
    r = _run_demo({"MNIST_DIR": str(tmp_path)}, "--out", str(out), "--cosim-images", "0",
                  "--tune-images", "60")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    for key in ("software_accuracy", "model_accuracy", "model_images", "cosim_accuracy", "cosim_images",
                "cosim_model_mismatches"):
        assert key in res
    assert res["model_images"] == 60 and res["cosim_images"] == 0
    assert 0.8 <= res["software_accuracy"] <= 1.0
    assert 0.5 <= res["model_accuracy"] <= 1.0
    assert set(res["model_accuracy_by_measure"]) >= {"bare", "calibrated", "calibrated_retuned"}
    assert "software" in r.stdout and "model, bare" in r.stdout


def test_progress_bar(capsys, tmp_path):
    bar = Progress("job", width=10)
    bar.update(5, 10)
    bar.done()
    err = capsys.readouterr().err
    assert "[#####.....]" in err and "5/10" in err and err.endswith("\n")
    p = tmp_path / "progress"
    assert _read_progress(p) == 0          # not there yet
    p.write_text("7 200\n")
    assert _read_progress(p) == 7
    np.testing.assert_equal(_read_progress(p), 7)
