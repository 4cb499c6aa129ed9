"""The characterisation command."""

import json
import subprocess
import sys

import pytest

from analog_models import characterize


def test_characterize_stats(tmp_path):
    out = tmp_path / "char"
    assert characterize.main(["--out", str(out), "--evals", "500"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["n_devices"] == 8192
    assert stats["r_low_mean_ohm"] == pytest.approx(13_000, rel=0.01)
    assert stats["r_high_mean_ohm"] == pytest.approx(26_000, rel=0.01)
    assert stats["r_low_sigma_ohm"] == pytest.approx(1_600, rel=0.06)
    assert stats["r_high_sigma_ohm"] == pytest.approx(2_000, rel=0.06)
    assert stats["delay_ns_all_match"] == pytest.approx(13.0, abs=0.3)
    assert stats["delay_ns_all_mismatch"] == pytest.approx(29.0, abs=0.3)
    assert stats["write_error_rate"] == pytest.approx(1e-3, rel=0.01)
    assert 0 < stats["write_error_rate_monte_carlo"] < 3e-3
    for name in stats["figures"]:
        assert (out / name).stat().st_size > 5_000
    assert len(stats["figures"]) == 4


def test_bad_arguments_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "analog_models.characterize", "--out", str(tmp_path),
                        "--rows", "7"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "rows" in r.stderr
    r = subprocess.run([sys.executable, "-m", "analog_models.characterize"], capture_output=True, text=True)
    assert r.returncode == 2 and "--out" in r.stderr
