"""The driver against the fast model: identification, programming, verify, matvec, calibration."""

import numpy as np
import pytest

from macro_spec.params import MacroParams
from macro_spec.regmap import reg
from firmware.driver import (
    IdentificationError, MacroDriver, MacroError, MacroTimeoutError, SyncMacroDriver,
    UsageError, VerifyError, run_sync,
)
from firmware.model import FastMacroModel
from firmware.regs import RegisterAccess

P = MacroParams()


def _driver(preset="ideal", params=P, seed=0, model=None):
    from analog_models.config import preset as get_preset
    cfg = get_preset(preset)
    m = model or FastMacroModel(params, cfg, seed=seed)
    d = SyncMacroDriver(m)
    d.open()
    d.configure(cfg.register_settings(params))
    return d, m


class LoopOnly(RegisterAccess):
    """The model without its batch entry: forces one COMPUTE command per vector."""

    def __init__(self, model):
        self.m = model
        self.synchronous = True
        self.reads = 0

    async def read(self, addr):
        self.reads += 1
        return self.m.read_sync(addr)

    async def write(self, addr, value):
        self.m.write_sync(addr, value)


def test_open_reads_geometry_from_caps():
    params = MacroParams(rows=40, cols=24)
    d, _ = _driver(params=params)
    assert (d.rows, d.cols) == (40, 24)


def test_open_rejects_wrong_id():
    class WrongId(LoopOnly):
        async def read(self, addr):
            return 0x12345678 if addr == reg("ID").address() else self.m.read_sync(addr)

    d = SyncMacroDriver(WrongId(FastMacroModel(P, "ideal")))
    with pytest.raises(IdentificationError, match="ID register"):
        d.open()


def test_matvec_exact_under_ideal_both_paths():
    rng = np.random.default_rng(3)
    w = rng.choice([-1, 1], size=(37, 20))  # partial rows (odd padding) and columns
    x = rng.choice([-1, 1], size=(30, 37))
    d, m = _driver()
    d.program_weights(w)
    res = d.matvec(x)
    assert res.dot.shape == (30, 20)
    assert np.array_equal(res.dot, x @ w)
    # The register-by-register path gives the same.
    d2 = SyncMacroDriver(LoopOnly(FastMacroModel(P, "ideal")))
    d2.open()
    from analog_models.config import preset
    d2.configure(preset("ideal").register_settings(P))
    d2.program_weights(w)
    res2 = d2.matvec(x)
    assert np.array_equal(res2.codes, res.codes) and np.array_equal(res2.dot, res.dot)
    assert np.array_equal(d2.read_weights(), w)


def test_input_validation_messages():
    d, _ = _driver()
    with pytest.raises(UsageError, match="no weights programmed"):
        d.matvec(np.ones((1, 64)))
    with pytest.raises(UsageError, match="-1 or \\+1"):
        d.program_weights(np.zeros((4, 4)))
    with pytest.raises(UsageError, match="NaN"):
        d.program_weights(np.array([[1.0, np.nan]]))
    with pytest.raises(UsageError, match="do not fit"):
        d.program_weights(np.ones((64, 65)))
    with pytest.raises(UsageError, match="dtype"):
        d.program_weights(np.ones((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="2-D"):
        d.program_weights(np.ones(4))
    d.program_weights(np.ones((8, 4)))
    with pytest.raises(UsageError, match="8 rows"):
        d.matvec(np.ones((2, 9)))
    with pytest.raises(UsageError, match="unknown setting"):
        d.configure({"NOPE": 1})


def _stuck_b(model, row, col):
    orig = model.array.write_pulse

    def pulse(r, side, data_low, enable, pulse_width_ps):
        orig(r, side, data_low, enable, pulse_width_ps)
        model.array.state_b[row, col] = True  # B MTJ stuck low (P)

    model.array.write_pulse = pulse


def test_stuck_mtj_raises_verify_error_naming_row_and_column():
    d, m = _driver()
    _stuck_b(m, 11, 6)
    w = np.ones((20, 10))
    with pytest.raises(VerifyError) as exc:
        d.program_weights(w)
    assert exc.value.row == 11 and exc.value.columns == [6]
    assert "row 11" in str(exc.value) and "[6]" in str(exc.value)
    assert exc.value.report.failed_rows == [11]
    # A stuck bit outside the used columns is only reported.
    d, m = _driver()
    _stuck_b(m, 10, 30)  # unused column; row 10 pads with +1 there, so B must be high
    rep = d.program_weights(w)
    assert rep.ok and rep.fail_mask[10, 30]
    # And report-only mode does not raise.
    d, m = _driver()
    _stuck_b(m, 2, 3)
    rep = d.program_weights(w, raise_on_failure=False)
    assert not rep.ok and rep.failed_rows == [2]


def test_flaky_writes_recovered_by_retries():
    d, m = _driver()
    orig = m.array.write_pulse
    rng = np.random.default_rng(0)

    def flaky(r, side, data_low, enable, pulse_width_ps):  # 30 % of bits miss each pulse
        en = np.array(enable, bool) & (rng.random(len(enable)) > 0.3)
        orig(r, side, data_low, en, pulse_width_ps)

    m.array.write_pulse = flaky
    d.configure({"WRITE_RETRIES": 12})  # 0.3**13 per bit: recovery is certain
    w = np.random.default_rng(1).choice([-1, 1], size=(64, 64))
    rep = d.program_weights(w)
    assert rep.ok and rep.total_retries > 20
    assert np.array_equal(d.read_weights(), w)
    # Without verify the same flakiness leaves wrong weights.
    rep = d.program_weights(-w, verify=False)
    assert rep.total_retries == 0 and not np.array_equal(d.read_weights(), -w)


def test_polling_is_bounded():
    class NeverDone(LoopOnly):
        async def read(self, addr):
            if addr == reg("FLAGS").address():
                return 0
            return self.m.read_sync(addr)

    be = NeverDone(FastMacroModel(P, "ideal"))
    d = SyncMacroDriver(be, max_polls=17)
    d.open()
    with pytest.raises(MacroTimeoutError) as exc:
        d.program_weights(np.ones((2, 2)))
    assert exc.value.row == 0 and isinstance(exc.value, MacroError)


def test_dot_threshold_activations_exact_under_ideal():
    rng = np.random.default_rng(4)
    w = rng.choice([-1, 1], size=(45, 16))
    x = rng.choice([-1, 1], size=(50, 45))
    d, _ = _driver()
    d.program_weights(w)
    d.set_thresholds(d.dot_threshold_codes(3))
    res = d.matvec(x)
    assert np.array_equal(res.activations, (x @ w) >= 3)


def test_calibration_reduces_error_under_paper():
    rng = np.random.default_rng(5)
    w = rng.choice([-1, 1], size=(64, 64))
    # Inputs correlated with the weights so dot products spread over the TDC window.
    x = np.where(rng.random((300, 64)) < 0.5, w[:, rng.integers(0, 64, 300)].T, 1)
    d, _ = _driver("paper", seed=3)
    d.program_weights(w, raise_on_failure=False)  # a rare unrecoverable bit is realistic
    truth = x @ w

    def rms():
        r = d.matvec(x, allow_timeouts=True)
        inside = (r.codes > 0) & (r.codes < 15)  # a 4-bit code says nothing beyond its range
        return np.sqrt(np.mean((r.dot - truth)[inside] ** 2))

    before = rms()
    rep_global = d.calibrate(per_column=False)
    after_global = rms()
    rep = d.calibrate()
    after = rms()
    assert after < after_global < before
    assert rep.rms_error_codes < rep_global.rms_error_codes
    assert np.array_equal(d.weights, w)  # calibration restored the weights
    assert np.any(rep.offsets != 0)


def test_calibration_is_exact_under_ideal():
    d, _ = _driver()
    rep = d.calibrate()
    assert np.all(rep.gain == 1.0) and np.all(rep.intercept == 0.0) and np.all(rep.offsets == 0)
    w = np.random.default_rng(6).choice([-1, 1], size=(64, 64))
    x = np.random.default_rng(7).choice([-1, 1], size=(20, 64))
    d.program_weights(w)
    assert np.array_equal(d.matvec(x).dot, x @ w)


def test_async_api_and_run_sync():
    m = FastMacroModel(P, "ideal")
    d = MacroDriver(m)
    info = run_sync(d.open())
    assert info.rows == P.rows
    import asyncio
    assert asyncio.run(d.read_row(0, 0)).shape == (P.cols,)
