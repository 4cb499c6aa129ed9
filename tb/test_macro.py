"""cocotb regression of the whole macro: registers, bus errors, compute, programming, timeouts.

Run through pytest (tests/test_cosim.py) or ``make sim SIM=icarus|verilator TEST=name``. The
configuration (geometry, preset, seed, number of operations) comes from the runner as JSON.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, Timer

from firmware.regs import BusError, bits_to_words, unpack_codes, words_to_bits
from macro_spec.params import PACKED_CODE_BITS
from macro_spec.regmap import (FLAG_ABORTED, FLAG_BAD_CMD, FLAG_DONE, FLAG_QUEUE, FLAG_REFUSED, FLAG_TIMEOUT,
                               FLAG_WRITE_FAIL, OP_COMPUTE, OP_COMPUTE_BATCH, REGISTERS, reg)

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


def _marginal(tb, row: int, sigmas: float = 5.0) -> set:
    """Columns of a row with an MTJ that the sense can misread: its resistance lies on the wrong
    side of the reference for its state, or within 5 noise sigma of it (odds > 3e-7)."""
    r_ohm = np.stack([tb.array.sense_resistance_ohm(row, side) for side in (0, 1)])
    low = np.stack([tb.array.state_a[row], tb.array.state_b[row]])
    sigma_ohm = np.maximum(tb.config.sense.noise_rel * r_ohm, 1e-9)
    ref = tb.config.sense.reference_ohm
    margin = np.where(low, ref - r_ohm, r_ohm - ref) / sigma_ohm
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
        assert wrong <= reported | _marginal(tb, r), \
            f"row {r}: array wrong at {sorted(wrong)}, controller reported {sorted(reported)}"
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
    await tb.soft_reset()
    assert int(dut.array__evaluate.value) == 0
    flags = await tb.regs.read_reg("FLAGS")
    assert flags & FLAG_ABORTED
    await tb.regs.write_reg("FLAGS", flags)
    await tb.regs.write_reg("WRITE_PULSE", 1000)
    await tb.regs.write_reg("CMD", cmd_word(2, 1))
    await Timer(20 * tb.period_ps, unit="ps")
    await tb.soft_reset()
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
    # An open MTJ on the conducting branch (side A under all-+1 inputs) opens its column's chain.
    open_cols = sorted({int(c) for c, kind in spec.get("columns", []) if kind in ("open", "comparator_stuck_low")}
                       | {c for r, c, side, kind in devices if kind == "open" and side == "A"})
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


class Coverage:
    """Functional coverage bins of the stress test, written as JSON for build/coverage/."""

    BINS = {
        "op": ["compute", "write_row", "read_row", "soft_reset_busy", "soft_reset_idle", "hard_reset",
               "refused", "bad_cmd", "reconfigure"],
        "code": ["zero", "middle", "saturated"],
        "flag": ["DONE", "REFUSED", "BAD_CMD", "WRITE_FAIL", "TIMEOUT", "ABORTED"],
        "retry_rounds": ["0", "1", "2+"],
        "window": ["at_all_match", "late", "early"],
        "timeout": ["nominal", "short"],
        "step": ["1", "2+"],
        "calibration": ["offsets_loaded"],
    }

    def __init__(self):
        self.hits = {k: {b: 0 for b in v} for k, v in self.BINS.items()}

    def hit(self, kind: str, name: str) -> None:
        self.hits[kind][name] += 1

    def flags(self, flags: int) -> None:
        for i, name in enumerate(self.BINS["flag"]):
            if flags >> i & 1:
                self.hit("flag", name)

    def missing(self) -> list[str]:
        return [f"{k}.{b}" for k, v in self.hits.items() for b, n in v.items() if n == 0]


@cocotb.test()
async def stress_random(dut):
    """Random interleaving of every command, random bus stalls, resets at random moments.

    Every compute goes through the scoreboard; every write is checked against the array
    model (no silent corruption); the controller must finish or abort every command and the
    bus must answer every transfer (the lean master times out otherwise).
    """
    import json
    from pathlib import Path

    from macro_spec.regmap import FLAG_REFUSED as REFUSED

    cfg = load_config()
    tb = await _tb(dut)
    p = tb.params
    rng = np.random.default_rng(tb.seed + 99)
    tb.regs.master.stall = (rng, float(cfg.get("stall", 0.3)))
    cov = Coverage()
    base = tb.config.register_settings(p)
    n_tx = int(cfg.get("transactions", 2000))
    max_cycles = 200_000

    async def settle():
        """Wait until idle (bounded), then clear the flags and return them."""
        for _ in range(2000):
            if not (await tb.regs.read_reg("STATUS")) & 1:
                break
        else:
            raise AssertionError("the controller stayed busy")
        flags = await tb.regs.read_reg("FLAGS")
        cov.flags(flags)
        await tb.regs.write_reg("FLAGS", flags)
        return flags

    async def reset_action(action, wait_cycles):
        """Start a command, wait, then soft- or hard-reset; check what the flags say."""
        op = int(rng.choice([OP_COMPUTE, 2]))
        await tb.regs.write_reg("CMD", cmd_word(op, int(rng.integers(p.rows))))
        if wait_cycles:
            await ClockCycles(dut.clk, wait_cycles)
        busy = (await tb.regs.read_reg("STATUS")) & 1
        if action == "soft_reset":
            await tb.regs.write_reg("SOFT_RESET", 1)
            flags = await settle()
            # The command may finish between the STATUS read and the reset: then it is DONE,
            # not ABORTED; a command seen idle can never be aborted.
            aborted = bool(flags & FLAG_ABORTED)
            assert busy or not aborted, "ABORTED although the controller was idle"
            assert aborted or not busy or flags & FLAG_DONE, "a busy command neither finished nor aborted"
            cov.hit("op", "soft_reset_busy" if aborted else "soft_reset_idle")
        else:
            await tb.reset()
            await tb.configure(tb.scoreboard.settings)
            await tb.regs.write_reg("IRQ_EN", 0)
            await settle()
            cov.hit("op", "hard_reset")
        # Whatever was interrupted has no result to check; a write may have been cut short.
        tb.scoreboard._next = len(tb.adapter.log.evaluations)
        if action == "hard_reset":  # a hard reset returns every register to its reset value
            tb.scoreboard.offsets[:] = 0
            tb.scoreboard.thresholds[:] = 0

    async def write_action(pulse, retries):
        """Write a random row with this pulse width and retry budget; check what verify says."""
        r = int(rng.integers(p.rows))
        w_row = rng.choice([-1, 1], size=p.cols)
        await tb.regs.write_reg("WRITE_PULSE", pulse)
        await tb.regs.write_reg("WRITE_RETRIES", retries)
        flags, mask = await write_row(tb.regs, p, r, w_row > 0)
        cov.flags(flags)
        rounds = (await tb.regs.read_fields("WRITE_STATUS"))["ROUNDS"]
        cov.hit("retry_rounds", "0" if rounds == 0 else "1" if rounds == 1 else "2+")
        wrong = set(np.flatnonzero(tb.array.weights()[r] != w_row).tolist())
        # A device right at the sense reference can misread as correct in verify (the
        # sense model's physics); anything else wrong must have been reported.
        silent = wrong - set(np.flatnonzero(mask).tolist()) - _marginal(tb, r)
        assert not silent, f"row {r}: silent corruption at {sorted(silent)}"
        cov.hit("op", "write_row")

    tb.program_ideal(rng.choice([-1, 1], size=(p.rows, p.cols)))
    # A soft reset right after a command is written (it is surely still running) and one long
    # after it (surely finished), so both outcomes are covered whatever the random mix brings.
    await reset_action("soft_reset", 0)
    await reset_action("soft_reset", 5000)
    # A one-cycle write pulse rarely switches a device: the retries run out (2+ rounds, and
    # usually WRITE_FAIL), whatever the random mix brings.
    await write_action(1, 3)
    # At least n_tx transactions, then on until every coverage bin is hit (bounded: 4 n_tx),
    # so closing coverage does not hang on one seed's particular random mix.
    while tb.regs.transactions < n_tx or (cov.missing() and tb.regs.transactions < 4 * n_tx):
        action = rng.choice(["compute"] * 5 + ["write_row"] * 2 + ["read_row", "soft_reset", "hard_reset",
                                                                     "refused", "bad_cmd", "reconfigure",
                                                                     "calibrate"])
        if action == "compute":
            x = rng.integers(0, 2, p.rows).astype(bool)
            codes, act, tmo, flags = await compute(tb.regs, p, x)
            cov.flags(flags)
            tb.scoreboard.check(codes, act, tmo, flags & FLAG_TIMEOUT)
            cmax = min(tb.scoreboard.settings["TDC_CODE_MAX"], p.code_max)
            if (codes == 0).any():
                cov.hit("code", "zero")
            if (codes == cmax).any():
                cov.hit("code", "saturated")
            if ((codes > 0) & (codes < cmax)).any():
                cov.hit("code", "middle")
            cov.hit("op", "compute")
        elif action == "write_row":
            # Short pulses switch less reliably: they exercise the retries and the failure path.
            pulse = int(rng.choice([base["WRITE_PULSE"], base["WRITE_PULSE"], max(base["WRITE_PULSE"] // 3, 1), 1]))
            await write_action(pulse, int(rng.integers(0, 4)))
        elif action == "read_row":
            r, side = int(rng.integers(p.rows)), int(rng.integers(2))
            bits = await read_row(tb.regs, p, r, side)
            stored = tb.array.state_a[r] if side == 0 else tb.array.state_b[r]
            differ = set(np.flatnonzero(bits != stored).tolist())
            r_ohm = tb.array.sense_resistance_ohm(r, side)
            assert differ <= _marginal(tb, r), (f"row {r} side {side}: read-back differs at {sorted(differ)} "
                                                f"(sense resistance {[round(float(r_ohm[j])) for j in sorted(differ)]} ohm, "
                                                f"stored {[bool(stored[j]) for j in sorted(differ)]}, "
                                                f"last senses {[(s_[0], s_[1]) for s_ in tb.adapter.log.senses[-3:]]})")
            cov.hit("op", "read_row")
        elif action in ("soft_reset", "hard_reset"):
            await reset_action(action, int(rng.integers(0, 80)))
        elif action == "refused":
            await tb.regs.write_reg("WRITE_PULSE", 400)
            await tb.regs.write_reg("CMD", cmd_word(2, int(rng.integers(p.rows))))
            await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE))
            flags = await settle()
            assert flags & REFUSED
            await tb.regs.write_reg("WRITE_PULSE", base["WRITE_PULSE"])
            tb.scoreboard._next = len(tb.adapter.log.evaluations)
            cov.hit("op", "refused")
        elif action == "calibrate":
            # What the firmware's calibration leaves in the controller: per-column offsets and
            # thresholds (loaded here at random; the scoreboard applies the same values).
            cols = rng.choice(p.cols, size=8, replace=False)
            for j in cols:
                off, thr = int(rng.integers(-6, 7)), int(rng.integers(0, 16))
                await tb.regs.write_reg("COL_OFFSET", off & 0xFFFF, int(j))
                await tb.regs.write_reg("COL_THRESH", thr, int(j))
                tb.scoreboard.offsets[j], tb.scoreboard.thresholds[j] = off, thr
            cov.hit("calibration", "offsets_loaded")
            cov.hit("op", "reconfigure")
        elif action == "bad_cmd":
            await tb.regs.write_reg("CMD", int(rng.choice([0, 4, 5, 6, 7])) | (p.rows << 8) * int(rng.integers(2)))
            flags = await settle()
            assert flags & FLAG_BAD_CMD
            cov.hit("op", "bad_cmd")
        else:  # reconfigure the TDC: window early/at/late, step, timeout short or long
            # Settings cycle through the cases so every window/timeout bin is reached.
            k = cov.hits["op"]["reconfigure"]
            window = base["TDC_WINDOW"] + (-6, 0, 8, 0)[k % 4]
            step = (1, 2, 1, 3)[k % 4]
            timeout = base["TDC_TIMEOUT"] if k % 2 == 0 else max(window + 4, 8)
            await tb.configure({"TDC_WINDOW": max(window, 0), "TDC_STEP": step, "TDC_TIMEOUT": timeout})
            cov.hit("window", "early" if window < base["TDC_WINDOW"] else "late" if window > base["TDC_WINDOW"]
                    else "at_all_match")
            cov.hit("step", "1" if step == 1 else "2+")
            cov.hit("timeout", "nominal" if timeout == base["TDC_TIMEOUT"] else "short")
            cov.hit("op", "reconfigure")
        assert get_sim_time_cycles(tb) < max_cycles * 100, "stress run exceeded its cycle budget"
    out = cfg.get("coverage_out")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"hits": cov.hits, "missing": cov.missing(),
                                         "transactions": tb.regs.transactions}, indent=2))
    dut._log.info("stress: %d transactions, %d computes checked, missing bins %s",
                  tb.regs.transactions, tb.scoreboard.checked, cov.missing())


def get_sim_time_cycles(tb) -> int:
    """Simulated time in controller cycles."""
    from cocotb.utils import get_sim_time

    return int(get_sim_time(unit="ps")) // tb.period_ps


@cocotb.test()
async def non_volatile(dut):
    """Weights survive a controller reset and a power cycle of the array model (state saved and restored)."""
    import tempfile
    from pathlib import Path

    from analog_models.array import MramArray

    tb = await _tb(dut)
    p = tb.params
    rng = np.random.default_rng(tb.seed + 5)
    rows = sorted(rng.choice(p.rows, size=min(6, p.rows), replace=False).tolist())
    w = rng.choice([-1, 1], size=(p.rows, p.cols))
    for r in rows:
        flags, mask = await write_row(tb.regs, p, r, w[r] > 0)
        assert not mask.any(), f"row {r} did not verify"

    async def read_back():
        out = {}
        for r in rows:
            a = await read_row(tb.regs, p, r, 0)
            b = await read_row(tb.regs, p, r, 1)
            out[r] = np.where(a & ~b, 1, np.where(~a & b, -1, 0))
        return out

    before = await read_back()
    for r in rows:
        assert list(before[r]) == list(w[r]), f"row {r} read back wrong before any reset"
    await tb.reset()
    await tb.configure(tb.config.register_settings(p))
    after_reset = await read_back()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "array_state.npz"
        tb.array.save(path)
        # Power cycle: a new model object built from the saved file alone.
        tb.array = tb.adapter.array = MramArray.restore(path)
    await tb.reset()
    await tb.configure(tb.config.register_settings(p))
    after_power = await read_back()
    for r in rows:
        assert list(after_reset[r]) == list(w[r]), f"row {r} changed across a controller reset"
        assert list(after_power[r]) == list(w[r]), f"row {r} changed across a power cycle"


@cocotb.test()
async def register_bit_bash(dut):
    """Walking ones and zeros through every writable bit; no write may change another register.

    Every RW word first gets a distinct signature; after each word is bashed and restored,
    all RW words are read back in one pipelined block per window, so an aliased write shows up
    as a changed signature at once.
    """
    tb = MacroTB.from_env(dut)
    await tb.start()
    p = tb.params
    words = [(r, i) for r in REGISTERS if r.access == "RW" for i in range(r.words(p))]
    rng = np.random.default_rng(3)
    signature = {(r.name, i): int(rng.integers(0, 2**32)) & r.writable_mask for r, i in words}
    for r, i in words:
        await tb.regs.write(r.address(i), signature[(r.name, i)])

    async def check_all(after: str):
        for r in {r for r, _ in words}:
            n = r.words(p)
            got = await tb.regs.read_block(r.offset, n)
            for i in range(n):
                assert got[i] == signature[(r.name, i)], f"{r.name}[{i}] changed after {after}"

    for r, i in words:
        mask = r.writable_mask
        bits = [b for b in range(32) if mask >> b & 1]
        for b in bits:
            for value in (1 << b, mask & ~(1 << b)):
                await tb.regs.write(r.address(i), value)
                got = await tb.regs.read(r.address(i))
                assert got == value, f"{r.name}[{i}] bit {b}: wrote {value:#x}, read {got:#x}"
        await tb.regs.write(r.address(i), signature[(r.name, i)])
        await check_all(f"bashing {r.name}[{i}]")
    # Read-only registers keep their value when written (and the write answers SLVERR).
    for r in REGISTERS:
        if r.access == "RO" and not r.is_window:
            before = await tb.regs.read(r.address())
            try:
                await tb.regs.write(r.address(), ~before & 0xFFFFFFFF)
            except BusError:
                pass
            else:
                raise AssertionError(f"write to read-only {r.name} was accepted")
            assert await tb.regs.read(r.address()) == before, f"read-only {r.name} changed"


@cocotb.test()
async def batch_queue(dut):
    """COMPUTE_BATCH: queued vectors run in order with one completion, results pop in order.

    Every result is scoreboarded; pushes and pops while busy are refused without effect; DONE
    comes once, at the end; a full queue drops a push with QUEUE; an empty or half-filled queue
    makes COMPUTE_BATCH a bad command; a soft reset mid-batch aborts it and empties both queues.
    """
    tb = await _tb(dut)
    p = tb.params
    depth, rw = p.batch_depth, p.result_words
    bi, bo = reg("BATCH_IN").offset, reg("BATCH_OUT").offset
    rng = np.random.default_rng(tb.seed)
    tb.program_ideal(rng.choice([-1, 1], size=(p.rows, p.cols)))
    assert await tb.regs.read_fields("BATCH_CAPS") == {"DEPTH": depth, "RESULT_WORDS": rw,
                                                       "PACKED_WORDS": p.packed_result_words}

    async def flags_now(clear=True):
        f = await tb.regs.read_reg("FLAGS")
        if clear:
            await tb.regs.write_reg("FLAGS", f)
        return f

    async def push(x):
        await tb.regs.write_fifo(bi, [w for v in x for w in bits_to_words(v, p.row_words)])

    # Nothing queued: a bad command; popping an empty queue reads 0 and flags QUEUE.
    await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE_BATCH))
    assert await tb.regs.read(bo) == 0
    assert await flags_now() == FLAG_BAD_CMD | FLAG_QUEUE
    for n in (depth, 3, 1):
        x = rng.integers(0, 2, size=(n, p.rows)).astype(bool)
        await push(x)
        assert await tb.regs.read_fields("BATCH_STATUS") == {"IN_LEVEL": n, "IN_WORDS": 0, "OUT_LEVEL": 0, "OUT_WORD": 0,
                                                             "PACKED": 0}
        evals, ops = len(tb.adapter.log.evaluations), await tb.regs.read_reg("OP_COUNT")
        await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE_BATCH))
        stream = n == depth
        if stream:
            # A push while the batch runs is refused; the results stream out as they are
            # stored: every read is held off until its word exists.
            await tb.regs.write(bi, 0xFFFFFFFF)
            words = await tb.regs.read_fifo(bo, n * rw)
        else:
            polls = 0
            while True:
                # FLAGS first: DONE seen while STATUS, read later, still says busy came too early.
                early = await tb.regs.read_reg("FLAGS")
                if not (await tb.regs.read_reg("STATUS")) & 1:
                    break
                polls += 1
                assert not early & FLAG_DONE, "DONE before the batch ended"
            assert n == 1 or polls > 0
        flags = await flags_now()
        assert flags & FLAG_DONE and not flags & (FLAG_BAD_CMD | FLAG_QUEUE)
        assert bool(flags & FLAG_REFUSED) == stream
        assert len(tb.adapter.log.evaluations) == evals + n
        assert await tb.regs.read_reg("OP_COUNT") == ops + n
        assert (await tb.regs.read_fields("STATUS"))["LAST_OP"] == OP_COMPUTE_BATCH
        if not stream:
            assert await tb.regs.read_fields("BATCH_STATUS") == {"IN_LEVEL": 0, "IN_WORDS": 0, "OUT_LEVEL": n, "OUT_WORD": 0,
                                                                 "PACKED": 0}
            words = await tb.regs.read_fifo(bo, n * rw)
        assert await tb.regs.read_reg("BATCH_STATUS") == 0
        for k in range(n):
            rec = words[k * rw:(k + 1) * rw]
            codes = np.array(unpack_codes(rec[:p.code_words], p.code_field_bits, p.cols))
            act = np.array(words_to_bits(rec[p.code_words:p.code_words + p.col_words], p.cols), bool)
            tmo = np.array(words_to_bits(rec[p.code_words + p.col_words:], p.cols), bool)
            assert (tb.adapter.log.evaluations[evals + k].x_bits == x[k]).all(), f"vector {k} out of order"
            tb.scoreboard.check(codes, act, tmo)
        # The CODE registers show the batch's last result, as after a single COMPUTE.
        assert await tb.regs.read_window("CODE", p.code_words) == words[(n - 1) * rw:(n - 1) * rw + p.code_words]
        assert await tb.regs.read(bo) == 0 and await flags_now() == FLAG_QUEUE

    # Packed results (CTRL.PACK_CODES): 4-bit codes, 8 a word, only while the codes cannot
    # exceed 15; the same codes, ACT and TMO as the full layout. With TDC_CODE_MAX = 16 the bit
    # is set but the results keep the full layout.
    saved_cmax = tb.scoreboard.settings["TDC_CODE_MAX"]
    await tb.regs.modify_fields("CTRL", PACK_CODES=1)
    prw, pcw = p.packed_result_words, p.packed_code_words
    for cmax, packed in ((16, 0), (15, 1), (3, 1)):
        await tb.configure({"TDC_CODE_MAX": cmax})
        n = min(depth, 3)
        x = rng.integers(0, 2, size=(n, p.rows)).astype(bool)
        await push(x)
        evals = len(tb.adapter.log.evaluations)
        await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE_BATCH))
        assert (await wait_done(tb.regs)) & FLAG_DONE
        status = await tb.regs.read_fields("BATCH_STATUS")
        assert status["PACKED"] == packed and status["OUT_LEVEL"] == n, f"TDC_CODE_MAX {cmax}: {status}"
        width = prw if packed else rw
        words = await tb.regs.read_fifo(bo, n * width)
        assert await tb.regs.read(bo) == 0 and await flags_now() == FLAG_QUEUE, "result words left over"
        for k in range(n):
            rec = words[k * width:(k + 1) * width]
            cw_k, fb = (pcw, PACKED_CODE_BITS) if packed else (p.code_words, p.code_field_bits)
            codes = np.array(unpack_codes(rec[:cw_k], fb, p.cols))
            act = np.array(words_to_bits(rec[cw_k:cw_k + p.col_words], p.cols), bool)
            tmo = np.array(words_to_bits(rec[cw_k + p.col_words:], p.cols), bool)
            assert (tb.adapter.log.evaluations[evals + k].x_bits == x[k]).all(), f"vector {k} out of order"
            tb.scoreboard.check(codes, act, tmo)
    await tb.regs.modify_fields("CTRL", PACK_CODES=0)
    await tb.configure({"TDC_CODE_MAX": saved_cmax})

    # During a single COMPUTE a result read is refused (0, nothing popped).
    await tb.regs.write_window("X", bits_to_words(np.ones(p.rows, bool), p.row_words))
    await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE))
    assert await tb.regs.read(bo) == 0
    assert (await wait_done(tb.regs)) & FLAG_REFUSED
    tb.scoreboard._next = len(tb.adapter.log.evaluations)

    # A full queue drops a push; a half-received vector makes COMPUTE_BATCH a bad command.
    await push(rng.integers(0, 2, size=(depth, p.rows)).astype(bool))
    await tb.regs.write(bi, 1)
    assert await flags_now() == FLAG_QUEUE
    assert (await tb.regs.read_fields("BATCH_STATUS"))["IN_LEVEL"] == depth
    await tb.regs.write_reg("SOFT_RESET", 1)
    assert await tb.regs.read_reg("BATCH_STATUS") == 0
    if p.row_words > 1:
        await tb.regs.write(bi, 1)
        assert (await tb.regs.read_fields("BATCH_STATUS"))["IN_WORDS"] == 1
        await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE_BATCH))
        assert await flags_now() == FLAG_BAD_CMD
        await tb.regs.write_reg("SOFT_RESET", 1)

    # Soft reset in the middle of a batch: aborted, queues empty, pins idle; then a batch works.
    await push(rng.integers(0, 2, size=(depth, p.rows)).astype(bool))
    evals = len(tb.adapter.log.evaluations)
    await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE_BATCH))
    while len(tb.adapter.log.evaluations) < evals + min(2, depth):
        await ClockCycles(dut.clk, 5)
    await tb.soft_reset()
    assert int(dut.array__evaluate.value) == 0
    assert (await tb.regs.read_reg("STATUS")) & 1 == 0
    assert await tb.regs.read_reg("BATCH_STATUS") == 0
    assert await flags_now() & FLAG_ABORTED
    tb.scoreboard._next = len(tb.adapter.log.evaluations)
    x = rng.integers(0, 2, size=(2, p.rows)).astype(bool)
    await push(x)
    await tb.regs.write_reg("CMD", cmd_word(OP_COMPUTE_BATCH))
    assert (await wait_done(tb.regs)) & FLAG_DONE
    words = await tb.regs.read_fifo(bo, 2 * rw)
    for k in range(2):
        rec = words[k * rw:(k + 1) * rw]
        tb.scoreboard.check(np.array(unpack_codes(rec[:p.code_words], p.code_field_bits, p.cols)),
                            np.array(words_to_bits(rec[p.code_words:p.code_words + p.col_words], p.cols), bool),
                            np.array(words_to_bits(rec[p.code_words + p.col_words:], p.cols), bool))
