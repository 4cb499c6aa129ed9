"""The fast model and the co-simulated RTL give the same results, bit for bit, for one job."""

import subprocess
import sys

import numpy as np
import pytest

from analog_models.config import preset
from firmware.cosim import run_job
from firmware.driver import MacroDriver, run_sync
from firmware.jobs import calibrate_job, program_and_matvec_job
from firmware.model import FastMacroModel
from macro_spec.params import MacroParams
from tb.runner import SIMULATORS


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("preset_name,seed", [("paper", 3), ("fine", 8)])
def test_model_and_cosim_agree_bit_for_bit(sim, preset_name, seed):
    params = MacroParams()
    rng = np.random.default_rng(seed)
    w = rng.choice([-1, 1], size=(params.rows, params.cols))
    x = rng.choice([-1, 1], size=(24, params.rows))
    cosim = run_job("sequence", sim=sim, params=params, preset=preset_name, seed=seed,
                    arrays={"weights": w, "inputs": x})
    model = run_sync(program_and_matvec_job(MacroDriver(FastMacroModel(params, preset(preset_name), seed=seed)),
                                            preset(preset_name), w, x))
    assert set(cosim) == set(model)
    for key in model:
        assert np.array_equal(np.asarray(cosim[key]), np.asarray(model[key])), f"{key} differs on {sim}"
    # The run did real work: writes needed retries or all verified, and codes vary.
    assert len(np.unique(model["codes"])) > 3


def test_cli_cosim_tiled_150x70_is_exact_under_ideal(tmp_path):
    rng = np.random.default_rng(4)
    w = rng.choice([-1, 1], size=(150, 70)).astype(np.int8)
    x = rng.choice([-1, 1], size=(3, 150)).astype(np.int8)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npz"
    res = subprocess.run([sys.executable, "-m", "firmware", "matvec", "--weights", str(tmp_path / "w.npy"),
                          "--inputs", str(tmp_path / "x.npy"), "--backend", "cosim", "--sim", "verilator",
                          "--preset", "ideal", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    with np.load(out) as y:
        assert np.array_equal(y["dot"], x.astype(int) @ w.astype(int))


def test_calibration_flow_agrees_and_helps_on_verilator():
    """The calibration flow through the RTL gives the model's offsets, and they are loaded in hardware."""
    params = MacroParams()
    cfg = preset("paper")
    rng = np.random.default_rng(12)
    w = rng.choice([-1, 1], size=(params.rows, params.cols))
    x = rng.choice([-1, 1], size=(16, params.rows))
    cosim = run_job("calibrate", sim="verilator", params=params, preset="paper", seed=12,
                    arrays={"weights": w, "inputs": x})
    model = run_sync(calibrate_job(MacroDriver(FastMacroModel(params, cfg, seed=12)), cfg, w, x, seed=12))
    for key in model:
        assert np.array_equal(cosim[key], model[key]), f"{key} differs"
    assert np.array_equal(cosim["offsets_read_back"], cosim["offsets"])
    assert np.abs(cosim["offsets"]).max() > 0  # the paper preset's comparator offsets need correcting
    exact = x @ w
    assert np.abs(cosim["dot"] - exact).mean() < 4.0


def test_verify_failure_names_row_and_columns_through_the_rtl():
    """A stuck MTJ makes the driver raise VerifyError naming the row and the column."""
    params = MacroParams()
    w = np.ones((params.rows, params.cols), dtype=np.int8)
    faults = {"devices": [[17, 42, "A", "stuck_high"]], "columns": []}
    with pytest.raises(RuntimeError, match=r"VerifyError: row 17: columns \[42\]"):
        run_job("program_strict", sim="verilator", params=params, preset="ideal", seed=0,
                arrays={"weights": w}, faults=faults)
