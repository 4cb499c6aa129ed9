"""The fast model at register level: reset values, access types, commands, batch equivalence."""

import numpy as np
import pytest

from macro_spec.params import MACRO_ID, MacroParams
from macro_spec.regmap import (
    ADDR_BITS, FLAG_BAD_CMD, FLAG_DONE, FLAG_WRITE_FAIL, OP_COMPUTE, OP_READ_ROW,
    OP_WRITE_ROW, REGISTERS, reg,
)
from firmware.model import FastMacroModel
from firmware.regs import (
    BusError, RESP_SLVERR, encode_fields, pack_codes, unpack_codes, words_to_bits,
)
from firmware.driver import run_sync

P = MacroParams()


def _model(preset="ideal", params=P, **kw):
    from analog_models.config import preset as get_preset
    cfg = get_preset(preset)
    m = FastMacroModel(params, cfg, **kw)
    for name, value in cfg.register_settings(params).items():
        m.write_sync(reg(name).address(), value)
    return m


def _cmd(m, op, row=0, side=0):
    m.write_sync(reg("CMD").address(), encode_fields(reg("CMD"), dict(OP=op, ROW=row, SIDE=side)))


def _words(m, name, n):
    return [m.read_sync(reg(name).address(i)) for i in range(n)]


@pytest.mark.parametrize("params", [P, MacroParams(rows=40, cols=72, tdc_bits=10, sync_stages=3)])
def test_reset_values_match_regmap(params):
    m = FastMacroModel(params, "ideal")
    for r in REGISTERS:
        for i in range(r.words(params)):
            value = m.read_sync(r.address(i))
            expected = 0 if r.access == "WO" else r.reset_value(params)
            assert value == expected, f"{r.name}[{i}]"
    caps = reg("CAPS")
    word = m.read_sync(caps.address())
    assert caps.field("ROWS").extract(word) == params.rows
    assert caps.field("COLS").extract(word) == params.cols
    assert m.read_sync(reg("ID").address()) == MACRO_ID


def test_read_only_write_is_slverr_and_changes_nothing():
    m = FastMacroModel(P, "ideal")
    for name in ("ID", "CAPS", "STATUS", "OP_COUNT", "CODE", "ACT"):
        addr = reg(name).address()
        before = m.read_sync(addr)
        with pytest.raises(BusError) as exc:
            m.write_sync(addr, 0xFFFF_FFFF)
        assert exc.value.resp == RESP_SLVERR and exc.value.addr == addr and exc.value.write
        assert m.read_sync(addr) == before


def test_unmapped_and_beyond_window_are_bus_errors():
    m = FastMacroModel(P, "ideal")
    used = {r.offset + 4 * i for r in REGISTERS for i in range(r.words(P))}
    holes = [a for a in range(0, 1 << ADDR_BITS, 4) if a not in used]
    assert reg("CODE").address(P.code_words) in holes  # window tail beyond the geometry
    for a in holes[::7] + [reg("COL_OFFSET").address(P.cols)]:
        with pytest.raises(BusError):
            m.read_sync(a)
        with pytest.raises(BusError):
            m.write_sync(a, 1)
    # async interface surfaces the same error
    with pytest.raises(BusError):
        run_sync(m.read(holes[0]))


def test_rw_keeps_only_field_bits_and_wo_reads_zero():
    m = FastMacroModel(P, "ideal")
    m.write_sync(reg("TDC_STEP").address(), 0xFFFF_FFFF)
    assert m.read_sync(reg("TDC_STEP").address()) == 0xFF
    m.write_sync(reg("COL_OFFSET").address(3), 0xFFFF)  # -1
    assert reg("COL_OFFSET").field("VALUE").extract(m.read_sync(reg("COL_OFFSET").address(3))) == -1
    assert m.read_sync(reg("CMD").address()) == 0
    with pytest.raises(ValueError):
        m.write_sync(reg("CTRL").address(), 1 << 32)


def test_flags_w1c_and_irq():
    m = _model()
    _cmd(m, OP_COMPUTE)
    _cmd(m, 7)  # unknown OP
    flags = m.read_sync(reg("FLAGS").address())
    assert flags == FLAG_DONE | FLAG_BAD_CMD
    assert not m.irq
    m.write_sync(reg("IRQ_EN").address(), FLAG_BAD_CMD)
    assert m.irq
    m.write_sync(reg("FLAGS").address(), FLAG_DONE)  # clears DONE only
    assert m.read_sync(reg("FLAGS").address()) == FLAG_BAD_CMD
    m.write_sync(reg("FLAGS").address(), FLAG_BAD_CMD)
    assert m.read_sync(reg("FLAGS").address()) == 0 and not m.irq


def test_bad_row_is_bad_cmd_and_touches_nothing():
    m = _model()
    pulses = []
    m.array.write_pulse = lambda *a, **k: pulses.append(a)
    _cmd(m, OP_WRITE_ROW, row=P.rows)
    assert m.read_sync(reg("FLAGS").address()) == FLAG_BAD_CMD
    assert pulses == []


def test_compute_matches_brute_force_mismatch_count():
    m = _model("ideal")
    rng = np.random.default_rng(1)
    w = rng.choice([-1, 1], size=(P.rows, P.cols))
    m.array.program_ideal(w)
    for _ in range(5):
        x = rng.choice([-1, 1], size=P.rows)
        xw = [0] * P.row_words
        for i in range(P.rows):
            if x[i] > 0:
                xw[i // 32] |= 1 << (i % 32)
        for i, v in enumerate(xw):
            m.write_sync(reg("X").address(i), v)
        _cmd(m, OP_COMPUTE)
        codes = unpack_codes(_words(m, "CODE", P.code_words), P.code_field_bits, P.cols)
        # Independent brute force: count the cells whose input differs from the weight.
        for j in range(P.cols):
            mismatches = sum(1 for i in range(P.rows) if x[i] != w[i, j])
            assert codes[j] == mismatches
            assert P.rows - 2 * codes[j] == int(x @ w[:, j])
    assert m.read_sync(reg("OP_COUNT").address()) == 5


def _read_all(m):
    out = {}
    for r in REGISTERS:
        for i in range(r.words(m.params)):
            out[(r.name, i)] = m.read_sync(r.address(i))
    return out


def test_batch_equals_sequential_bit_for_bit_paper():
    rng = np.random.default_rng(2)
    w = rng.choice([-1, 1], size=(P.rows, P.cols))
    x = rng.random((40, P.rows)) < 0.5
    a, b = _model("paper", seed=5), _model("paper", seed=5)
    for m in (a, b):
        m.array.program_ideal(w)
        for j in range(P.cols):  # non-trivial offsets and thresholds
            m.write_sync(reg("COL_OFFSET").address(j), (j % 5 - 2) & 0xFFFF)
            m.write_sync(reg("COL_THRESH").address(j), 7)
    seq = []
    for k in range(x.shape[0]):
        words = [0] * P.row_words
        for i in np.flatnonzero(x[k]):
            words[i // 32] |= 1 << (i % 32)
        for i, v in enumerate(words):
            a.write_sync(reg("X").address(i), v)
        _cmd(a, OP_COMPUTE)
        seq.append((unpack_codes(_words(a, "CODE", P.code_words), P.code_field_bits, P.cols),
                    words_to_bits(_words(a, "ACT", P.col_words), P.cols),
                    words_to_bits(_words(a, "TMO", P.col_words), P.cols)))
    codes, act, tmo = b.compute_batch(x)
    assert np.array_equal(codes, np.array([s[0] for s in seq]))
    assert np.array_equal(act, np.array([s[1] for s in seq]))
    assert np.array_equal(tmo, np.array([s[2] for s in seq]))
    assert len(np.unique(codes)) > 3  # not a degenerate comparison
    assert _read_all(a) == _read_all(b)
    # the analog model's random streams advanced identically
    assert np.array_equal(a.compute_batch(x[:3])[0], b.compute_batch(x[:3])[0])


def _write_row(m, row, w_row):
    words = [0] * P.col_words
    for j in np.flatnonzero(w_row > 0):
        words[j // 32] |= 1 << (j % 32)
    for i, v in enumerate(words):
        m.write_sync(reg("WDATA").address(i), v)
    _cmd(m, OP_WRITE_ROW, row=row)


def test_write_row_pulse_and_sense_order_and_retry():
    m = _model("ideal")
    log = []
    orig_pulse, orig_sense = m.array.write_pulse, m.array.sense
    flaky = {"left": 2}  # column 5, side A, ignores its first two pulses

    def pulse(row, side, data_low, enable, pulse_width_ps):
        log.append(("pulse", row, side, int(np.sum(enable)), pulse_width_ps))
        en = np.array(enable, dtype=bool)
        if side == 0 and en[5] and flaky["left"]:
            flaky["left"] -= 1
            en[5] = False
        orig_pulse(row, side, data_low, en, pulse_width_ps)

    def sense(row, side):
        log.append(("sense", row, side))
        return orig_sense(row, side)

    m.array.write_pulse, m.array.sense = pulse, sense
    m.array.program_ideal(-np.ones((P.rows, P.cols), dtype=int))
    w = np.ones(P.cols, dtype=int)
    _write_row(m, 3, w)
    t_ps = m.config.clock_period_ps * m.read_sync(reg("WRITE_PULSE").address())
    assert log == [("pulse", 3, 0, P.cols, t_ps), ("pulse", 3, 1, P.cols, t_ps),
                   ("sense", 3, 0), ("sense", 3, 1),
                   ("pulse", 3, 0, 1, t_ps), ("sense", 3, 0), ("sense", 3, 1),
                   ("pulse", 3, 0, 1, t_ps), ("sense", 3, 0), ("sense", 3, 1)]
    ws = reg("WRITE_STATUS")
    word = m.read_sync(ws.address())
    assert ws.field("ROUNDS").extract(word) == 2 and ws.field("ROW").extract(word) == 3
    assert ws.field("FAILED").extract(word) == 0
    assert m.read_sync(reg("RETRY_TOTAL").address()) == 2
    assert m.read_sync(reg("FLAGS").address()) == FLAG_DONE


def test_write_row_failure_sets_fail_mask():
    m = _model("ideal")
    orig = m.array.write_pulse

    def stuck(row, side, data_low, enable, pulse_width_ps):
        orig(row, side, data_low, enable, pulse_width_ps)
        m.array.state_b[row, 37] = True  # B of column 37 stuck low

    m.array.write_pulse = stuck
    _write_row(m, 9, np.ones(P.cols, dtype=int))  # needs B high everywhere
    assert m.read_sync(reg("FLAGS").address()) & FLAG_WRITE_FAIL
    mask = words_to_bits(_words(m, "FAIL_MASK", P.col_words), P.cols)
    assert [j for j, b in enumerate(mask) if b] == [37]
    retries = m.read_sync(reg("WRITE_RETRIES").address())
    assert reg("WRITE_STATUS").field("ROUNDS").extract(m.read_sync(reg("WRITE_STATUS").address())) == retries


def test_write_without_verify_does_not_sense():
    m = _model("ideal")
    m.write_sync(reg("CTRL").address(), 0)
    senses = []
    orig = m.array.sense
    m.array.sense = lambda r, s: senses.append((r, s)) or orig(r, s)
    _write_row(m, 0, np.ones(P.cols, dtype=int))
    assert senses == []


def test_read_row_and_stale_read_rule():
    m = _model("ideal")
    w = np.where(np.arange(P.cols) % 3 == 0, 1, -1)
    m.array.program_ideal(np.tile(w, (P.rows, 1)))
    _cmd(m, OP_READ_ROW, row=4, side=0)
    a = words_to_bits(_words(m, "RDATA", P.col_words), P.cols)
    assert a == list(w > 0)
    _cmd(m, OP_READ_ROW, row=4, side=1)
    b = words_to_bits(_words(m, "RDATA", P.col_words), P.cols)
    assert b == list(w < 0)
    # Make the read pulse shorter than the latency: the sample is the previous sense's data.
    cycles = max(1, -(-m.config.read_latency_ps // m.config.clock_period_ps))
    m.write_sync(reg("READ_PULSE").address(), cycles)  # R*T >= latency -> stale
    _cmd(m, OP_READ_ROW, row=4, side=0)
    assert words_to_bits(_words(m, "RDATA", P.col_words), P.cols) == b
    _cmd(m, OP_READ_ROW, row=4, side=1)
    assert words_to_bits(_words(m, "RDATA", P.col_words), P.cols) == a


def test_code_packing_roundtrip():
    codes = list(range(P.cols))
    words = pack_codes(codes, 8, P.code_words)
    assert words[0] == 0x03020100
    assert unpack_codes(words, 8, P.cols) == codes


def test_soft_reset_clears_results_keeps_configuration_and_counters():
    m = _model("ideal")
    m.array.program_ideal(np.random.default_rng(3).choice([-1, 1], size=(P.rows, P.cols)))
    m.write_sync(reg("PRECHARGE").address(), 3)
    m.write_sync(reg("X").address(), 0x5)
    _cmd(m, OP_COMPUTE)
    _cmd(m, OP_READ_ROW, row=6, side=1)
    ws = reg("WRITE_STATUS")
    assert ws.field("ROW").extract(m.read_sync(ws.address())) == 6  # reads latch the row too
    assert any(_words(m, "CODE", P.code_words)) and any(_words(m, "RDATA", P.col_words))
    flags = m.read_sync(reg("FLAGS").address())
    m.write_sync(reg("SOFT_RESET").address(), 1)
    assert _words(m, "CODE", P.code_words) == [0] * P.code_words
    assert _words(m, "RDATA", P.col_words) == [0] * P.col_words
    assert m.read_sync(ws.address()) == 0
    assert m.read_sync(reg("PRECHARGE").address()) == 3
    assert m.read_sync(reg("X").address()) == 0x5
    assert m.read_sync(reg("OP_COUNT").address()) == 1
    assert m.read_sync(reg("FLAGS").address()) == flags  # nothing was running: no ABORTED
    status = reg("STATUS")
    word = m.read_sync(status.address())
    assert status.field("BUSY").extract(word) == 0
    assert status.field("LAST_OP").extract(word) == OP_READ_ROW


@pytest.mark.parametrize("params", [P, MacroParams(rows=40, cols=72, tdc_bits=10, sync_stages=3)],
                         ids=["64x64", "40x72"])
@pytest.mark.parametrize("setting", ["paper", "short_pulses", "stale_reads", "no_verify"])
def test_write_rows_equals_row_commands_and_plain_pin_operations(params, setting):
    """write_rows (first rounds of several rows computed together) = one WRITE_ROW command per
    row = the same commands over the plain write_pulse / sense pin operations: rounds, fail
    masks, every register, the array's states and counters."""
    def model():
        m = _model("paper", params=params, seed=4)
        if setting == "short_pulses":  # many retries and some failures
            m.write_sync(reg("WRITE_PULSE").address(), 2)
            m.write_sync(reg("WRITE_RETRIES").address(), 2)
        elif setting == "stale_reads":
            cycles = max(1, -(-m.config.read_latency_ps // m.config.clock_period_ps))
            m.write_sync(reg("READ_PULSE").address(), cycles)
        elif setting == "no_verify":
            m.write_sync(reg("CTRL").address(), 0)
        return m

    bits = np.random.default_rng(8).random((params.rows, params.cols)) < 0.5
    fast, commands, plain = model(), model(), model()
    for name in ("write_pulse", "sense"):  # instance wrappers: the model takes the plain path
        setattr(plain.array, name, getattr(plain.array, name))
    rounds, fail = fast.write_rows(bits)
    registers = _read_all(fast)  # once: reading BATCH_OUT sets FLAGS.QUEUE
    ws = reg("WRITE_STATUS")
    for m in (commands, plain):
        for i in range(params.rows):
            words = [0] * params.col_words
            for j in np.flatnonzero(bits[i]):
                words[j // 32] |= 1 << (j % 32)
            for k, v in enumerate(words):
                m.write_sync(reg("WDATA").address(k), v)
            _cmd(m, OP_WRITE_ROW, row=i)
            assert ws.field("ROUNDS").extract(m.read_sync(ws.address())) == rounds[i]
            assert words_to_bits(_words(m, "FAIL_MASK", params.col_words), params.cols) == list(fail[i])
        assert _read_all(m) == registers
        np.testing.assert_array_equal(m.array.state_a, fast.array.state_a)
        np.testing.assert_array_equal(m.array.state_b, fast.array.state_b)
        assert (m.array.pulse_count, m.array.sense_count) == (fast.array.pulse_count, fast.array.sense_count)
    if setting == "short_pulses":
        assert rounds.max() == 2 and fail.any()  # not a degenerate comparison
    elif setting != "no_verify":
        assert rounds.any()
