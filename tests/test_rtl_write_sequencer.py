"""Write sequencer (program with verify and retries, row reads), soft reset, refusal, interrupt."""

import numpy as np

from macro_spec.params import MacroParams
from macro_spec.regmap import (FLAG_ABORTED, FLAG_BAD_CMD, FLAG_DONE, FLAG_REFUSED, FLAG_TIMEOUT, FLAG_WRITE_FAIL,
                               OP_COMPUTE, OP_READ_ROW, OP_WRITE_ROW, reg)
from rtl.mram_cim import MramCim
from tests.rtl_harness import AxiMaster, DigitalArray, bits_to_words, run, words_to_bits

P = MacroParams(rows=16, cols=40)
CMD = reg("CMD")


def cmd(op, row=0, side=0):
    return CMD.field("OP").insert(op) | CMD.field("ROW").insert(row) | CMD.field("SIDE").insert(side)


async def wait_done(ctx, bus, limit=2000):
    for _ in range(limit):
        flags = await bus.read_reg(ctx, "FLAGS")
        if flags & FLAG_DONE:
            await bus.write_reg(ctx, "FLAGS", flags)
            return flags
    raise AssertionError("command never finished")


async def write_row(ctx, bus, row, w_bits):
    for i, v in enumerate(bits_to_words(w_bits, P.col_words)):
        await bus.write_reg(ctx, "WDATA", v, i)
    await bus.write_reg(ctx, "CMD", cmd(OP_WRITE_ROW, row))
    return await wait_done(ctx, bus)


async def read_row(ctx, bus, row, side):
    await bus.write_reg(ctx, "CMD", cmd(OP_READ_ROW, row, side))
    await wait_done(ctx, bus)
    return words_to_bits([await bus.read_reg(ctx, "RDATA", i) for i in range(P.col_words)], P.cols)


def test_program_rows_then_read_back_both_sides():
    dut = MramCim(P)
    array = DigitalArray(dut)
    rng = np.random.default_rng(1)
    w = rng.integers(0, 2, (P.rows, P.cols)).astype(bool)
    got = {}

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        await bus.write_reg(ctx, "WRITE_PULSE", 5)
        for r in (0, 7, 15):
            flags = await write_row(ctx, bus, r, w[r])
            assert not flags & FLAG_WRITE_FAIL
            got[r] = (await read_row(ctx, bus, r, 0), await read_row(ctx, bus, r, 1))
        got["retries"] = await bus.read_reg(ctx, "RETRY_TOTAL")

    run(dut, bench, array)
    for r in (0, 7, 15):
        assert list(array.state_a[r]) == list(w[r])
        assert list(array.state_b[r]) == list(~w[r])
        assert list(got[r][0]) == list(w[r]) and list(got[r][1]) == list(~w[r])
    assert got["retries"] == 0
    # First attempt: one pulse per side, all columns enabled, then verify found nothing to redo.
    assert len(array.pulses) == 6
    assert all(c == (1 << P.cols) - 1 for (_, _, _, c) in array.pulses)


def test_pulse_width_is_the_register_value():
    dut = MramCim(P)
    array = DigitalArray(dut)
    widths = []

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        await bus.write_reg(ctx, "WRITE_PULSE", 7)
        await bus.write_reg(ctx, "CTRL", 0)  # no verify
        for i, v in enumerate(bits_to_words([1] * P.cols, P.col_words)):
            await bus.write_reg(ctx, "WDATA", v, i)
        await bus.write_reg(ctx, "CMD", cmd(OP_WRITE_ROW, 3))
        n = 0
        for _ in range(200):
            await ctx.tick()
            if ctx.get(dut.array.wr_en):
                n += 1
            elif n:
                widths.append(n)
                n = 0
        await wait_done(ctx, bus)

    run(dut, bench, array)
    assert widths == [7, 7]


def test_verify_retries_only_failing_bits_and_reports_stuck_ones():
    # Row 2: column 5 of side A stuck high-resistance (never low), column 9 of B stuck low.
    stuck = {(2, 0, 5): False, (2, 1, 9): True}
    dut = MramCim(P)
    array = DigitalArray(dut, stuck=stuck)
    w = np.ones(P.cols, bool)  # A must be low everywhere, B high everywhere
    out = {}

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        await bus.write_reg(ctx, "WRITE_PULSE", 2)
        await bus.write_reg(ctx, "WRITE_RETRIES", 2)
        out["flags"] = await write_row(ctx, bus, 2, w)
        out["mask"] = words_to_bits([await bus.read_reg(ctx, "FAIL_MASK", i) for i in range(P.col_words)], P.cols)
        out["status"] = await bus.read_reg(ctx, "WRITE_STATUS")
        out["total"] = await bus.read_reg(ctx, "RETRY_TOTAL")

    run(dut, bench, array)
    assert out["flags"] & FLAG_WRITE_FAIL
    assert sorted(np.flatnonzero(out["mask"])) == [5, 9]
    st = reg("WRITE_STATUS")
    assert st.field("ROUNDS").extract(out["status"]) == 2
    assert st.field("ROW").extract(out["status"]) == 2
    assert st.field("FAILED").extract(out["status"]) == 1
    assert out["total"] == 2
    # Retry pulses carry only the failing column of each side.
    retries = array.pulses[2:]
    assert [(s, c) for (_, s, _, c) in retries] == [(0, 1 << 5), (1, 1 << 9)] * 2


def test_refused_while_busy_bad_commands_and_irq():
    dut = MramCim(P)
    array = DigitalArray(dut)
    out = {}

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        await bus.write_reg(ctx, "IRQ_EN", FLAG_DONE | FLAG_BAD_CMD)
        await bus.write_reg(ctx, "WRITE_PULSE", 60)
        await bus.write_reg(ctx, "CMD", cmd(OP_WRITE_ROW, 1))
        await bus.write_reg(ctx, "CMD", cmd(OP_COMPUTE))  # refused: the write is running
        out["busy"] = await bus.read_reg(ctx, "STATUS") & 1
        flags = await wait_done(ctx, bus)
        out["flags"] = flags
        out["evals"] = len(array.evaluations)
        await bus.write_reg(ctx, "CMD", cmd(OP_WRITE_ROW, P.rows))  # row out of range
        await bus.write_reg(ctx, "CMD", 7)  # unknown op
        out["bad"] = await bus.read_reg(ctx, "FLAGS")
        out["irq_bad"] = ctx.get(dut.irq)
        await bus.write_reg(ctx, "FLAGS", 0xFF)
        out["irq_clear"] = ctx.get(dut.irq)

    run(dut, bench, array)
    assert out["busy"] == 1
    assert out["flags"] & FLAG_REFUSED and out["flags"] & FLAG_DONE
    assert out["evals"] == 0  # the refused compute never reached the array
    assert out["bad"] & FLAG_BAD_CMD and not out["bad"] & FLAG_DONE
    assert out["irq_bad"] == 1 and out["irq_clear"] == 0


def test_soft_reset_in_the_middle_of_a_write_and_of_a_compute():
    dut = MramCim(P)
    array = DigitalArray(dut, fire_fn=lambda x, a, b: np.full(P.cols, 2**62))  # never fires
    out = {}

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        arr = dut.array
        await bus.write_reg(ctx, "WRITE_PULSE", 500)
        await bus.write_reg(ctx, "CMD", cmd(OP_WRITE_ROW, 4))
        for _ in range(20):
            await ctx.tick()
        assert ctx.get(arr.wr_en) == 1
        await bus.write_reg(ctx, "SOFT_RESET", 1)
        out["wr_en"] = ctx.get(arr.wr_en)
        out["status_w"] = await bus.read_reg(ctx, "STATUS")
        out["flags_w"] = await bus.read_reg(ctx, "FLAGS")
        out["pulse_kept"] = await bus.read_reg(ctx, "WRITE_PULSE")
        await bus.write_reg(ctx, "FLAGS", 0xFF)
        await bus.write_reg(ctx, "TDC_TIMEOUT", 3000)
        await bus.write_reg(ctx, "CMD", cmd(OP_COMPUTE))
        for _ in range(30):
            await ctx.tick()
        assert ctx.get(arr.evaluate) == 1
        await bus.write_reg(ctx, "SOFT_RESET", 1)
        out["evaluate"] = ctx.get(arr.evaluate)
        out["flags_c"] = await bus.read_reg(ctx, "FLAGS")
        # The macro works normally afterwards.
        await bus.write_reg(ctx, "WRITE_PULSE", 3)
        out["after"] = await write_row(ctx, bus, 4, np.ones(P.cols, bool))

    run(dut, bench, array)
    assert out["wr_en"] == 0 and out["status_w"] & 1 == 0
    assert out["flags_w"] & FLAG_ABORTED and not out["flags_w"] & FLAG_DONE
    assert out["pulse_kept"] == 500
    assert out["evaluate"] == 0 and out["flags_c"] & FLAG_ABORTED
    assert out["after"] & FLAG_DONE and not out["after"] & FLAG_WRITE_FAIL
    assert array.state_a[4].all()


def test_timeout_bounds_a_compute_when_nothing_fires():
    dut = MramCim(P)
    array = DigitalArray(dut, fire_fn=lambda x, a, b: np.full(P.cols, 2**62))
    out = {}

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        await bus.write_reg(ctx, "TDC_TIMEOUT", 50)
        await bus.write_reg(ctx, "CMD", cmd(OP_COMPUTE))
        out["flags"] = await wait_done(ctx, bus, limit=100)
        out["tmo"] = words_to_bits([await bus.read_reg(ctx, "TMO", i) for i in range(P.col_words)], P.cols)

    run(dut, bench, array)
    assert all(out["tmo"])
    assert out["flags"] & FLAG_TIMEOUT
