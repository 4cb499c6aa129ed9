"""The batch queue (BATCH_IN, COMPUTE_BATCH, BATCH_OUT) in the fast model and the driver.

The RTL side is tests/test_cosim.py::test_batch_queue (same rules, through the pins) and
tests/test_firmware_cosim.py (the driver's queue path against the model, bit for bit).
"""

import numpy as np
import pytest

from analog_models.config import preset
from firmware.driver import MacroError, SyncMacroDriver
from firmware.model import FastMacroModel
from firmware.regs import bits_to_words, unpack_codes
from macro_spec.params import PACKED_CODE_BITS, MacroParams
from macro_spec.regmap import FLAG_BAD_CMD, FLAG_DONE, FLAG_QUEUE, OP_COMPUTE_BATCH, reg

P = MacroParams(rows=40, cols=72, tdc_bits=10, sync_stages=3, batch_depth=6)
BI, BO = reg("BATCH_IN").offset, reg("BATCH_OUT").offset
CMD_BATCH = reg("CMD").field("OP").insert(OP_COMPUTE_BATCH)


def _driver(params, mode, seed=3):
    cfg = preset("paper")
    model = FastMacroModel(params, cfg, seed=seed)
    if mode != "numpy":
        model.compute_batch = None  # take the register path, as on the RTL
    drv = SyncMacroDriver(model, use_batch=(mode == "queue"))
    drv.open()
    drv.configure(cfg.register_settings(params))
    rng = np.random.default_rng(1)
    drv.program_weights(rng.choice([-1, 1], size=(params.rows, params.cols)), raise_on_failure=False)
    return drv, model


@pytest.mark.parametrize("params", [MacroParams(), P], ids=["64x64", "40x72"])
def test_queue_path_equals_single_computes_and_numpy_path(params):
    """17 vectors over chunks of DEPTH: codes, activations, timeouts, registers all identical."""
    x = np.random.default_rng(2).choice([-1, 1], size=(17, params.rows))
    results = {}
    for mode in ("numpy", "queue", "single"):
        drv, model = _driver(params, mode)
        before = dict(drv.stats)
        results[mode] = (drv.matvec(x, allow_timeouts=True), model)
        assert drv.stats["computes"] - before["computes"] == 17
    ref, ref_model = results["numpy"]
    for mode in ("queue", "single"):
        r, m = results[mode]
        assert (r.codes == ref.codes).all() and (r.activations == ref.activations).all()
        assert (r.timeouts == ref.timeouts).all() and np.array_equal(r.dot, ref.dot)
        for name in ("OP_COUNT", "CODE", "ACT"):
            assert m.read_sync(reg(name).offset) == ref_model.read_sync(reg(name).offset), name


def test_driver_uses_the_queue():
    """The queue path really issues COMPUTE_BATCH: one per chunk of DEPTH vectors."""
    drv, model = _driver(P, "queue")
    issued = []
    write = model.write_sync

    def spy(addr, value):
        if addr == reg("CMD").offset:
            issued.append(reg("CMD").field("OP").extract(value))
        write(addr, value)

    model.write_sync = spy
    drv.matvec(np.ones((13, P.rows)), allow_timeouts=True)
    assert issued == [OP_COMPUTE_BATCH] * 3  # 6 + 6 + 1


def test_model_queue_rules():
    """Levels, result layout, overflow, underflow and bad commands, as docs/timing.md states."""
    drv, m = _driver(P, "queue")
    m.write_sync(reg("FLAGS").offset, 0xFF)
    assert m.read_sync(reg("BATCH_CAPS").offset) == (P.batch_depth | P.result_words << 8
                                                     | P.packed_result_words << 16)
    m.write_sync(reg("CMD").offset, CMD_BATCH)              # nothing queued
    assert m.read_sync(BO) == 0
    assert m.flags == FLAG_BAD_CMD | FLAG_QUEUE
    m.write_sync(reg("FLAGS").offset, 0xFF)
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, size=(P.batch_depth, P.rows)).astype(bool)
    for v in x:
        for w in bits_to_words(v, P.row_words):
            m.write_sync(BI, w)
    m.write_sync(BI, 7)                                     # queue full: dropped
    assert m.flags == FLAG_QUEUE
    status = reg("BATCH_STATUS")
    assert status.field("IN_LEVEL").extract(m.read_sync(status.offset)) == P.batch_depth
    m.write_sync(reg("FLAGS").offset, 0xFF)
    m.write_sync(reg("CMD").offset, CMD_BATCH)
    assert m.flags & FLAG_DONE and not m.flags & FLAG_BAD_CMD
    words = [m.read_sync(BO) for _ in range(P.batch_depth * P.result_words)]
    assert m.read_sync(status.offset) == 0
    # Result k is the compute of vector k on a twin model with the same seed and history.
    _drv2, m2 = _driver(P, "single")
    codes, act, tmo = FastMacroModel.compute_batch(m2, x)
    for k in range(P.batch_depth):
        rec = words[k * P.result_words:(k + 1) * P.result_words]
        assert unpack_codes(rec[:P.code_words], P.code_field_bits, P.cols) == codes[k].tolist()
        assert rec[P.code_words:P.code_words + P.col_words] == bits_to_words(act[k], P.col_words)
        assert rec[P.code_words + P.col_words:] == bits_to_words(tmo[k], P.col_words)
    # A half-received vector makes COMPUTE_BATCH a bad command; SOFT_RESET empties the queue.
    m.write_sync(BI, 1)
    m.write_sync(reg("CMD").offset, CMD_BATCH)
    assert m.flags & FLAG_BAD_CMD
    assert status.field("IN_WORDS").extract(m.read_sync(status.offset)) == 1
    m.write_sync(reg("SOFT_RESET").offset, 1)
    assert m.read_sync(status.offset) == 0


@pytest.mark.parametrize("cmax,packed", [(15, True), (16, False), (2, True)])
def test_model_packed_results(cmax, packed):
    """CTRL.PACK_CODES: 4-bit codes, 8 a word, only while TDC_CODE_MAX <= 15; same values."""
    drv, m = _driver(P, "queue")
    m.write_sync(reg("TDC_CODE_MAX").offset, cmax)
    m.write_sync(reg("CTRL").offset, reg("CTRL").field("PACK_CODES").insert(1))
    x = np.random.default_rng(6).integers(0, 2, size=(4, P.rows)).astype(bool)
    for v in x:
        for w in bits_to_words(v, P.row_words):
            m.write_sync(BI, w)
    m.write_sync(reg("CMD").offset, CMD_BATCH)
    status = reg("BATCH_STATUS")
    word = m.read_sync(status.offset)
    assert status.field("PACKED").extract(word) == packed and status.field("OUT_LEVEL").extract(word) == 4
    rw, cw, fb = ((P.packed_result_words, P.packed_code_words, PACKED_CODE_BITS) if packed
                  else (P.result_words, P.code_words, P.code_field_bits))
    words = [m.read_sync(BO) for _ in range(4 * rw)]
    assert status.field("OUT_LEVEL").extract(m.read_sync(status.offset)) == 0
    _drv2, m2 = _driver(P, "single")
    m2.write_sync(reg("TDC_CODE_MAX").offset, cmax)
    codes, act, tmo = FastMacroModel.compute_batch(m2, x)
    assert codes.max() <= cmax
    for k in range(4):
        rec = words[k * rw:(k + 1) * rw]
        assert unpack_codes(rec[:cw], fb, P.cols) == codes[k].tolist()
        assert rec[cw:cw + P.col_words] == bits_to_words(act[k], P.col_words)
        assert rec[cw + P.col_words:] == bits_to_words(tmo[k], P.col_words)


@pytest.mark.parametrize("params", [MacroParams(), P], ids=["64x64", "40x72"])
def test_driver_packs_when_codes_fit(params):
    """The paper preset's 4-bit codes come back packed (fewer BATCH_OUT reads), the same values
    as with packing switched off; a 5-bit code range is read in the full layout."""
    x = np.random.default_rng(4).choice([-1, 1], size=(9, params.rows))
    results, pops = {}, {}
    for pack in (True, False):
        drv, model = _driver(params, "queue")
        drv.pack_codes = pack
        read = model.read_sync
        count = [0]

        def spy(addr, _read=read, _count=count):
            _count[0] += addr == BO
            return _read(addr)

        model.read_sync = spy
        results[pack] = drv.matvec(x, allow_timeouts=True)
        pops[pack] = count[0]
    assert pops[True] == 9 * params.packed_result_words and pops[False] == 9 * params.result_words
    for attr in ("codes", "activations", "timeouts", "dot"):
        assert np.array_equal(getattr(results[True], attr), getattr(results[False], attr)), attr
    drv, model = _driver(params, "queue")
    drv.configure({"TDC_CODE_MAX": 16})
    read = model.read_sync
    count = [0]

    def spy16(addr):
        count[0] += addr == BO
        return read(addr)

    model.read_sync = spy16
    drv.matvec(x, allow_timeouts=True)
    assert count[0] == 9 * params.result_words


def test_driver_detects_a_layout_changed_behind_it():
    """TDC_CODE_MAX written around the driver: the macro stops packing, the driver says so."""
    drv, m = _driver(P, "queue")
    drv.matvec(np.ones((2, P.rows)), allow_timeouts=True)   # packed (paper: TDC_CODE_MAX 15)
    m.write_sync(reg("TDC_CODE_MAX").offset, 255)
    with pytest.raises(MacroError, match="BATCH_STATUS"):
        drv.matvec(np.ones((2, P.rows)), allow_timeouts=True)


def test_leftover_queue_is_reported():
    """A vector left in the queue (an interrupted batch) makes the driver stop with a clear error."""
    drv, m = _driver(P, "queue")
    m.write_sync(BI, 1)  # one stray word of a vector
    with pytest.raises(MacroError, match="soft_reset"):
        drv.matvec(np.ones((3, P.rows)))


def test_no_queue_build():
    """batch_depth=0: BATCH_CAPS says so, the driver falls back to single computes."""
    params = MacroParams(batch_depth=0)
    drv, m = _driver(params, "queue")
    assert drv.info.batch_depth == 0
    r = drv.matvec(np.ones((3, params.rows)), allow_timeouts=True)
    assert r.codes.shape == (3, params.cols)
    m.write_sync(BI, 1)
    assert m.flags & FLAG_QUEUE
