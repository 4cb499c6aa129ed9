"""cocotb regression of the whole macro: registers, bus errors, compute, programming, timeouts.

Run through pytest (tests/test_cosim.py) or ``make sim SIM=icarus|verilator TEST=name``. The
configuration (geometry, preset, seed, number of operations) comes from the runner as JSON.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, Timer

from firmware.regs import BusError, bits_to_words
from macro_spec.regmap import (FLAG_ABORTED, FLAG_BAD_CMD, FLAG_DONE, FLAG_REFUSED, FLAG_TIMEOUT,
                               FLAG_WRITE_FAIL, OP_COMPUTE, REGISTERS, reg)

from .env import MacroTB, load_config
from .macro_ops import cmd_word, compute, read_row, wait_done, write_row


async def _tb(dut, **kw) -> MacroTB:
    tb = MacroTB.from_env(dut, **kw)
    await tb.start()
    await tb.configure(tb.config.register_settings(tb.params))
    return tb


@cocotb.test()
async def smoke(dut):
    """Identify the macro, program a few rows, run a few computes through the scoreboard."""
    tb = await _tb(dut)
    assert await tb.regs.read_reg("ID") == reg("ID").reset_value(tb.params)
    caps = await tb.regs.read_fields("CAPS")
    assert (caps["ROWS"], caps["COLS"]) == (tb.params.rows, tb.params.cols)
    rng = np.random.default_rng(tb.seed)
    w = rng.choice([-1, 1], size=(tb.params.rows, tb.params.cols))
    for r in range(min(4, tb.params.rows)):
        flags, mask = await write_row(tb.regs, tb.params, r, w[r] > 0)
    tb.program_ideal(w)
    for _ in range(8):
        x = rng.integers(0, 2, tb.params.rows).astype(bool)
        codes, act, tmo, flags = await compute(tb.regs, tb.params, x)
        tb.scoreboard.check(codes, act, tmo, flags & FLAG_TIMEOUT)


@cocotb.test()
async def register_reset_values(dut):
    """Every register reads its reset value from the register map (write-only ones read 0)."""
    tb = MacroTB.from_env(dut)
    await tb.start()
    for r in REGISTERS:
        for i in range(r.words(tb.params)):
            got = await tb.regs.read(r.address(i))
            want = 0 if r.access == "WO" else r.reset_value(tb.params)
            assert got == want, f"{r.name}[{i}] reads {got:#x}, expected {want:#x}"


@cocotb.test()
async def register_read_write(dut):
    """Every RW word holds all ones and all zeros in its writable bits."""
    tb = MacroTB.from_env(dut)
    await tb.start()
    for r in REGISTERS:
        if r.access != "RW":
            continue
        for i in range(r.words(tb.params)):
            for pattern in (0xFFFFFFFF, 0xA5A5A5A5, 0):
                await tb.regs.write(r.address(i), pattern)
                got = await tb.regs.read(r.address(i))
                assert got == pattern & r.writable_mask, f"{r.name}[{i}]: wrote {pattern:#x}, read {got:#x}"


@cocotb.test()
async def bus_errors(dut):
    """Unmapped addresses and writes to read-only registers answer SLVERR; the bus keeps working."""
    tb = MacroTB.from_env(dut)
    await tb.start()
    for addr, write in ((0x0F0, False), (0x0F0, True), (reg("ID").address(), True),
                        (reg("CODE").address(63), False), (0xFFC, False)):
        try:
            if write:
                await tb.regs.write(addr, 1)
            else:
                await tb.regs.read(addr)
        except BusError as e:
            assert e.resp == 2
        else:
            raise AssertionError(f"{'write' if write else 'read'} of {addr:#x} did not answer SLVERR")
    assert await tb.regs.read_reg("ID") == reg("ID").reset_value(tb.params)


@cocotb.test()
async def compute_regression(dut):
    """Random weights and inputs; every compute checked by the scoreboard (and exact under ideal)."""
    tb = await _tb(dut)
    cfg = load_config()
    n_ops = int(cfg.get("n_ops", 200))
    reprogram_every = int(cfg.get("reprogram_every", 50))
    rng = np.random.default_rng(tb.seed)
    p = tb.params
    w = None
    for k in range(n_ops):
        if k % reprogram_every == 0:
            w = rng.choice([-1, 1], size=(p.rows, p.cols))
            tb.program_ideal(w)
        x = rng.integers(0, 2, p.rows).astype(bool)
        codes, act, tmo, flags = await compute(tb.regs, p, x)
        tb.scoreboard.check(codes, act, tmo, flags & FLAG_TIMEOUT)
        if tb.config.name == "ideal":
            dots = np.where(x, 1, -1) @ w
            assert list(codes) == list((p.rows - dots) // 2), f"ideal preset: codes are not the mismatch counts (op {k})"
    assert tb.scoreboard.checked == n_ops
    assert await tb.regs.read_reg("OP_COUNT") == n_ops


def _marginal(tb, row: int, sigmas: float = 6.0) -> set:
    """Columns of a row with an MTJ within a few noise sigma of the sense reference."""
    r_ohm = np.stack([tb.array.sense_resistance_ohm(row, side) for side in (0, 1)])
    sigma_ohm = np.maximum(tb.config.sense.noise_rel * r_ohm, 1e-9)
    margin = np.abs(r_ohm - tb.config.sense.reference_ohm) / sigma_ohm
    return set(np.flatnonzero((margin < sigmas).any(axis=0)).tolist())


@cocotb.test()
async def program_and_read_back(dut):
    """Row writes with verify through the switching model; read back both sides."""
    tb = await _tb(dut)
    p = tb.params
    rng = np.random.default_rng(tb.seed + 1)
    w = rng.choice([-1, 1], size=(p.rows, p.cols))
    failed_rows = {}
    for r in range(p.rows):
        flags, mask = await write_row(tb.regs, p, r, w[r] > 0)
        if flags & FLAG_WRITE_FAIL:
            failed_rows[r] = np.flatnonzero(mask).tolist()
    stored = tb.array.weights()
    for r in range(p.rows):
        wrong = set(np.flatnonzero(stored[r] != w[r]).tolist())
        reported = set(failed_rows.get(r, []))
        # No silent corruption: every bit the array really holds wrong was reported. A reported
        # bit may still be right in the array when its MTJ sits near the sense reference and
        # misread in every verify round; then reading it back now may misread too.
        assert wrong <= reported, f"row {r}: array wrong at {sorted(wrong)}, controller reported {sorted(reported)}"
        a = await read_row(tb.regs, p, r, 0)
        b = await read_row(tb.regs, p, r, 1)
        sensed = np.where(a & ~b, 1, np.where(~a & b, -1, 0))
        suspicious = set(np.flatnonzero(sensed != stored[r]).tolist())
        assert suspicious <= reported | _marginal(tb, r), f"row {r}: read-back differs at {sorted(suspicious)}"
    total = await tb.regs.read_reg("RETRY_TOTAL")
    dut._log.info("programmed %d rows, %d retry rounds, %d rows failed", p.rows, total, len(failed_rows))


@cocotb.test()
async def timeout_and_window(dut):
    """A timeout shorter than any fire time flags every column; the code is then code_max."""
    tb = await _tb(dut)
    p = tb.params
    await tb.configure({"TDC_TIMEOUT": 3})
    codes, act, tmo, flags = await compute(tb.regs, p, np.ones(p.rows, bool))
    assert flags & FLAG_TIMEOUT and tmo.all() and not act.any()
    tb.scoreboard.check(codes, act, tmo, True)


@cocotb.test()
async def refused_bad_and_irq(dut):
    """A command while busy is refused and flagged; bad commands flagged; IRQ follows FLAGS & IRQ_EN."""
    tb = await _tb(dut)
    p = tb.params
    await tb.regs.write_reg("IRQ_EN", FLAG_DONE)
    await tb.regs.write_reg("WRITE_PULSE", 200)
    await tb.regs.write_window("WDATA", bits_to_words(np.ones(p.cols, bool), p.col_words))
    await tb.regs.write_reg("CMD", cmd_word(2, 0))
    await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE))
    flags = await wait_done(tb.regs)
    assert flags & FLAG_REFUSED
    assert len(tb.adapter.log.evaluations) == 0
    await tb.regs.write_reg("CMD", cmd_word(2, 0))
    for _ in range(2000):
        if int(dut.irq.value):
            break
        await ClockCycles(dut.clk, 10)
    assert int(dut.irq.value) == 1
    await tb.regs.write_reg("FLAGS", 0xFF)
    assert int(dut.irq.value) == 0
    await tb.regs.write_reg("CMD", 7)
    assert await tb.regs.read_reg("FLAGS") & FLAG_BAD_CMD


@cocotb.test()
async def soft_reset_mid_compute_and_write(dut):
    """Soft reset aborts a compute and a write at once; the macro then works normally."""
    tb = await _tb(dut)
    p = tb.params
    await tb.configure({"TDC_TIMEOUT": 60000})
    tb.program_ideal(np.ones((p.rows, p.cols)))
    await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE))
    await Timer(3 * tb.period_ps, unit="ps")
    await tb.regs.write_reg("SOFT_RESET", 1)
    assert int(dut.array__evaluate.value) == 0
    flags = await tb.regs.read_reg("FLAGS")
    assert flags & FLAG_ABORTED
    await tb.regs.write_reg("FLAGS", flags)
    await tb.regs.write_reg("WRITE_PULSE", 1000)
    await tb.regs.write_reg("CMD", cmd_word(2, 1))
    await Timer(20 * tb.period_ps, unit="ps")
    await tb.regs.write_reg("SOFT_RESET", 1)
    assert int(dut.array__wr_en.value) == 0
    assert (await tb.regs.read_reg("STATUS")) & 1 == 0
    await tb.regs.write_reg("FLAGS", 0xFF)
    await tb.configure(tb.config.register_settings(p))
    tb.scoreboard._next = len(tb.adapter.log.evaluations)  # the aborted evaluation has no result
    x = np.ones(p.rows, bool)
    codes, act, tmo, flags = await compute(tb.regs, p, x)
    tb.scoreboard.check(codes, act, tmo, flags & FLAG_TIMEOUT)


@cocotb.test()
async def faults_flagged(dut):
    """Stuck MTJs are reported per row by verify; an open column times out; a stuck-high comparator reads 0.

    Runs with the configuration's explicit fault map (tests/test_cosim.py sets it).
    """
    tb = await _tb(dut)
    p = tb.params
    spec = load_config().get("faults", {})
    # With every weight +1, A must be low and B high: A stuck high or B stuck low cannot verify,
    # while A stuck low or B stuck high already hold the right state.
    devices = [(int(r), int(c), side, kind) for r, c, side, kind in spec.get("devices", [])]
    stuck = {(r, c) for r, c, side, kind in devices
             if (side, kind) in (("A", "stuck_high"), ("B", "stuck_low"))}
    harmless = {(r, c) for r, c, side, kind in devices
                if (side, kind) in (("A", "stuck_low"), ("B", "stuck_high"))}
    open_cols = [int(c) for c, kind in spec.get("columns", []) if kind == "open"]
    high_cols = [int(c) for c, kind in spec.get("columns", []) if kind == "comparator_stuck_high"]
    assert stuck and open_cols and high_cols, "this test needs a fault map with all three kinds"
    assert stuck and harmless, "this test needs stuck devices of both kinds"
    w = np.ones((p.rows, p.cols))
    for r in sorted({r for r, _ in stuck | harmless}):
        flags, mask = await write_row(tb.regs, p, r, w[r] > 0)
        expected = {c for rr, c in stuck if rr == r}
        reported = set(np.flatnonzero(mask).tolist())
        assert bool(flags & FLAG_WRITE_FAIL) == bool(expected), f"row {r}: WRITE_FAIL is {bool(flags & FLAG_WRITE_FAIL)}"
        assert expected <= reported, f"row {r}: FAIL_MASK {sorted(reported)} misses {sorted(expected - reported)}"
        assert not {c for rr, c in harmless if rr == r} & reported, f"row {r}: a harmless stuck bit was reported"
    tb.program_ideal(w)
    codes, act, tmo, flags = await compute(tb.regs, p, np.ones(p.rows, bool))
    tb.scoreboard.check(codes, act, tmo, flags & FLAG_TIMEOUT)
    assert flags & FLAG_TIMEOUT
    assert np.flatnonzero(tmo).tolist() == open_cols
    assert all(codes[c] == 0 for c in high_cols)
