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


@pytest.mark.parametrize("preset", ["paper", "fine"])
def test_programming_through_write_rows_equals_row_commands(preset):
    """The fast model's write_rows path of program_weights = one WRITE_ROW command per row:
    same report, registers, array and statistics."""
    w = np.random.default_rng(11).choice([-1, 1], size=(50, 60))
    results = []
    for fast in (True, False):
        d, m = _driver(preset, seed=2)
        if not fast:
            m.write_rows = None  # the register path, as on the RTL
        d.program_weights(np.ones((P.rows, P.cols)), raise_on_failure=False)
        m.write_sync(reg("WRITE_PULSE").address(), 3)  # short pulses: retries and failures
        rep = d.program_weights(w, raise_on_failure=False)
        results.append((rep, m, dict(d.stats)))
    (a, ma, sa), (b, mb, sb) = results
    np.testing.assert_array_equal(a.retry_rounds, b.retry_rounds)
    np.testing.assert_array_equal(a.fail_mask, b.fail_mask)
    assert a.total_retries and a.fail_mask.any()  # not a degenerate comparison
    assert sa == sb
    for name in ("FLAGS", "WRITE_STATUS", "RETRY_TOTAL", "STATUS", "WDATA", "FAIL_MASK"):
        for i in range(reg(name).words(P)):
            assert ma.read_sync(reg(name).address(i)) == mb.read_sync(reg(name).address(i)), name
    np.testing.assert_array_equal(ma.array.state_a, mb.array.state_a)
    np.testing.assert_array_equal(ma.array.state_b, mb.array.state_b)


def test_dot_table_equals_formula():
    """_dot_from_codes looks the estimates up in a table of the formula: the same bits."""
    d, _m = _driver("paper")
    d.calibrate()
    d.program_weights(np.ones((40, 30)))
    drv = d.driver
    rng = np.random.default_rng(12)
    for codes in (rng.integers(0, 16, (500, 30)), rng.integers(3, 5, (7, 30)), rng.integers(0, 1000, (3, 30)),
                  np.zeros((0, 30), dtype=np.int64)):
        got = drv._dot_from_codes(codes, slice(0, 30))
        ref = drv._dot_formula(codes, slice(0, 30))
        assert got.shape == ref.shape and got.dtype == ref.dtype
        assert np.array_equal(got.view(np.int64), ref.view(np.int64))


def test_as_pm1_integer_shortcut_keeps_messages():
    from firmware.driver import as_pm1
    for arr, message in [(np.array([[1, 0]]), "found np.int64(0) at index (0, 1)"),
                         (np.array([[-2, 1]], np.int8), "found np.int8(-2) at index (0, 0)"),
                         (np.array([[1, 255]], np.uint8), "found np.uint8(255) at index (0, 1)")]:
        with pytest.raises(UsageError, match=message.replace("(", "\\(").replace(")", "\\)")):
            as_pm1(arr, "x", 2)
    assert as_pm1(np.array([[1, -1]], np.int16), "x", 2).dtype == np.int8
