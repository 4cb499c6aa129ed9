"""cocotb tests of the in-simulator AXI4-Lite bus engine (:mod:`tb.bus_engine`, :mod:`tb.shim`).

Run through pytest (tests/test_bus_engine.py) on a ``shim=True`` build. Every check compares
with something the engine does not produce itself: the register map (:mod:`macro_spec.regmap`),
a monitor that records the handshakes the slave really sees, or the lean Python master.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from firmware.regs import RESP_OKAY, RESP_SLVERR, BusError
from macro_spec.regmap import ADDR_BITS, FLAG_DONE, FLAG_TIMEOUT, OP_COMPUTE, REGISTERS, reg

from .axil import LeanAxiLiteMaster, LeanRegisterAccess
from .bus_engine import EngineRegisterAccess
from .env import MacroTB
from .macro_ops import cmd_word, compute
from .shim import ENGINE_MAX_WORDS, ENGINE_TIMEOUT_CYCLES

#: Words in the decoded address space.
SPACE_WORDS = (1 << ADDR_BITS) // 4


def expected_space(params, written: dict[int, int] | None = None) -> list[tuple[int, int]]:
    """(data, resp) of a read of every word address, from the register map.

    ``written`` maps byte addresses of RW words to the value last written there (the word
    then reads it through the register's writable mask); other words read their reset value,
    write-only ones 0, and words no register uses answer SLVERR.
    """
    out = [(None, RESP_SLVERR)] * SPACE_WORDS
    for r in REGISTERS:
        for i in range(r.words(params)):
            a = r.address(i)
            if written and a in written:
                data = written[a] & r.writable_mask
            else:
                data = 0 if r.access == "WO" else r.reset_value(params)
            out[a // 4] = (data, RESP_OKAY)
    return out


def check_space(got: list[tuple[int, int]], want: list[tuple[int, int]], what: str) -> None:
    """Every word's response, and the data of every word that answered OKAY, as expected."""
    assert len(got) == len(want), f"{what}: {len(got)} words read, {len(want)} expected"
    for i, ((d, r), (wd, wr)) in enumerate(zip(got, want)):
        assert r == wr, f"{what}: word {4 * i:#05x} answered {r}, expected {wr}"
        if wd is not None:
            assert d == wd, f"{what}: word {4 * i:#05x} reads {d:#x}, expected {wd:#x}"


def first_gap(params) -> int:
    """Byte address of the first unmapped word that follows a mapped one without read side effects
    and is followed by another unmapped word."""
    space = expected_space(params)
    pops = {r.address(i) for r in REGISTERS if getattr(r, "pops", False) for i in range(r.words(params))}
    for i in range(1, SPACE_WORDS - 1):
        if (space[i - 1][1] == RESP_OKAY and 4 * (i - 1) not in pops
                and space[i][1] == RESP_SLVERR and space[i + 1][1] == RESP_SLVERR):
            return 4 * i
    raise AssertionError("the register map has no unmapped gap")


async def clear_flags(regs) -> None:
    """Clear FLAGS: reading a queue register (``pops``) that is empty sets a flag."""
    await regs.write_reg("FLAGS", 0xFFFFFFFF)


def pattern(addr: int, salt: int) -> int:
    """A 32-bit value that differs from word to word and from salt to salt."""
    return (0x9E3779B9 * (addr + 1) + 0x7F4A7C15 * salt) & 0xFFFFFFFF


class BusMonitor:
    """Records every handshake at the ``mram_cim`` bus ports (whichever master drives them).

    An observer independent of the engine: it samples the DUT's own inputs and outputs in the
    read-only phase of each cycle, i.e. what the slave takes at the next clock edge. It samples
    the time step it is started in too: the engine presents a job's first transfer in the same
    step as Python starts the job.
    """

    def __init__(self, dut):
        self.dut = dut
        self.clear()
        self._task = cocotb.start_soon(self._run())

    def clear(self) -> None:
        """Forget what was seen so far."""
        self.ar, self.aw, self.w = [], [], []
        #: Cycles in which only one of AW and W was taken.
        self.aw_alone = self.w_alone = 0

    def stop(self) -> None:
        """Stop watching."""
        self._task.cancel()

    async def _run(self):
        d = self.dut
        edge, ro = RisingEdge(d.clk), ReadOnly()
        while True:
            await ro
            if d.m_bus__arvalid.value == 1 and d.bus__arready.value == 1:
                self.ar.append(int(d.m_bus__araddr.value))
            aw = d.m_bus__awvalid.value == 1 and d.bus__awready.value == 1
            w = d.m_bus__wvalid.value == 1 and d.bus__wready.value == 1
            if aw:
                self.aw.append(int(d.m_bus__awaddr.value))
            if w:
                self.w.append(int(d.m_bus__wdata.value))
            self.aw_alone += aw and not w
            self.w_alone += w and not aw
            await edge


async def _engine_tb(dut) -> MacroTB:
    dut.eng_stall.value = 0  # in case a failed test left the stall injection on
    tb = MacroTB.from_env(dut, bus="engine")
    await tb.start()
    return tb


@cocotb.test()
async def engine_register_map(dut):
    """Reset values of the whole address space, then distinct values in every RW word, via the engine."""
    tb = await _engine_tb(dut)
    p, regs = tb.params, tb.regs
    # The whole space in one block: several engine jobs, every page position, SLVERR words too.
    check_space(await regs.transfer_reads(0, SPACE_WORDS), expected_space(p), "reset")
    await clear_flags(regs)
    for r in REGISTERS:
        want = [0 if r.access == "WO" else r.reset_value(p)] * r.words(p)
        assert await regs.read_block(r.offset, r.words(p)) == want, f"{r.name}: block read"
        assert await regs.read(r.address(r.words(p) - 1)) == want[-1], f"{r.name}: single read"
    for salt in (1, 2):
        written = {}
        for r in REGISTERS:
            if r.access != "RW":
                continue
            values = [pattern(r.address(i), salt) for i in range(r.words(p))]
            if r.is_window:
                await regs.write_block(r.offset, values)
            else:
                await regs.write(r.offset, values[0])
            written.update({r.address(i): v for i, v in enumerate(values)})
        await clear_flags(regs)
        check_space(await regs.transfer_reads(0, SPACE_WORDS), expected_space(p, written), f"pattern {salt}")
    assert regs.transactions > 3 * SPACE_WORDS


@cocotb.test()
async def engine_bus_errors(dut):
    """A block that mixes valid and unmapped or read-only words raises BusError at the first bad one."""
    tb = await _engine_tb(dut)
    regs = tb.regs
    small = EngineRegisterAccess(dut, max_words=24)  # the same block split into several jobs
    co = reg("COL_OFFSET").offset
    col_offset_end = reg("COL_OFFSET").address(tb.params.cols)  # first unused word of the window
    gap = first_gap(tb.params)
    rw0 = reg("READ_PULSE").offset
    assert (reg("WRITE_RETRIES").offset, reg("WRITE_STATUS").offset) == (rw0 + 4, rw0 + 8)
    cases = [
        (regs, "read", gap - 4, 3, gap),            # a register, then two unmapped words
        (regs, "write", rw0, [5, 2, 7], rw0 + 8),   # READ_PULSE, WRITE_RETRIES, then RO WRITE_STATUS
        (regs, "read", co, 100, col_offset_end),
        (small, "read", co, 100, col_offset_end),  # the error sits in the third job
        (small, "write", co, list(range(100)), col_offset_end),
        (regs, "read_fifo", gap, 3, gap),
        (regs, "write_fifo", gap, [1, 2], gap),
    ]
    for bus, kind, addr, arg, bad in cases:
        n0 = bus.transactions
        try:
            if kind == "read":
                await bus.read_block(addr, arg)
            elif kind == "write":
                await bus.write_block(addr, arg)
            elif kind == "read_fifo":
                await bus.read_fifo(addr, arg)
            else:
                await bus.write_fifo(addr, arg)
        except BusError as e:
            assert (e.addr, e.resp, e.write) == (bad, RESP_SLVERR, kind.startswith("write")), \
                f"{kind} at {addr:#05x}: {e}"
        else:
            raise AssertionError(f"{kind} block at {addr:#05x} raised no BusError")
        n = arg if isinstance(arg, int) else len(arg)
        assert bus.transactions - n0 == n, f"{kind} at {addr:#05x}: {bus.transactions - n0} transfers counted, not {n}"
    # The valid words of the failing write blocks were written.
    assert await regs.read_reg("READ_PULSE") == 5 and await regs.read_reg("WRITE_RETRIES") == 2
    assert await regs.read_block(co, 4) == [0, 1, 2, 3]
    # The raw responses, and a single bad word.
    assert [r for _, r in await regs.transfer_reads(gap - 4, 3)] == [RESP_OKAY, RESP_SLVERR, RESP_SLVERR]
    assert await regs.transfer_writes(rw0 + 4, [3, 9]) == [RESP_OKAY, RESP_SLVERR]
    for addr, write in ((gap, False), (reg("ID").address(), True)):
        try:
            await (regs.write(addr, 1) if write else regs.read(addr))
        except BusError as e:
            assert e.addr == addr and e.write == write
        else:
            raise AssertionError(f"{'write' if write else 'read'} of {addr:#05x} raised no BusError")
    assert await regs.read_reg("ID") == reg("ID").reset_value(tb.params)
    # Bad requests are refused in Python, before the bus.
    for call in (lambda: regs.read_block(4 * SPACE_WORDS - 4, 2), lambda: regs.write(reg("CTRL").offset, 1 << 32)):
        try:
            await call()
        except ValueError:
            pass
        else:
            raise AssertionError("a bad request was not refused")


@cocotb.test()
async def engine_long_blocks(dut):
    """Blocks longer than a job are split with the right addresses and data at every boundary."""
    tb = await _engine_tb(dut)
    p = tb.params
    mon = BusMonitor(dut)
    window = reg("COL_OFFSET")
    mask = window.writable_mask
    for max_words in (1, 24, ENGINE_MAX_WORDS):
        bus = EngineRegisterAccess(dut, max_words=max_words)
        values = [pattern(window.address(i), max_words) for i in range(p.cols)]
        mon.clear()
        await bus.write_block(window.offset, values)
        assert mon.aw == [window.address(i) for i in range(p.cols)], f"max_words={max_words}: write addresses"
        assert mon.w == values, f"max_words={max_words}: write data"
        for reader in (bus, tb.regs):
            assert await reader.read_block(window.offset, p.cols) == [v & mask for v in values], \
                f"max_words={max_words}: read back"
    # Beyond the engine maximum: the whole space read in several jobs.
    await clear_flags(tb.regs)
    mon.clear()
    got = await tb.regs.transfer_reads(0, SPACE_WORDS)
    assert mon.ar == [4 * i for i in range(SPACE_WORDS)]
    check_space(got, expected_space(p, {window.address(i): v for i, v in enumerate(values)}), "whole space")
    mon.stop()


@cocotb.test()
async def engine_queue_transfers(dut):
    """Queue (fixed-address) reads and writes issue exactly the transfers asked for, in order."""
    tb = await _engine_tb(dut)
    regs = tb.regs
    mon = BusMonitor(dut)
    ident = reg("ID").reset_value(tb.params)
    target = reg("TDC_WINDOW")
    for n in (1, 2, 17, ENGINE_MAX_WORDS, ENGINE_MAX_WORDS + 1, 600):
        mon.clear()
        t0 = regs.transactions
        assert await regs.read_fifo(reg("ID").offset, n) == [ident] * n
        assert mon.ar == [reg("ID").offset] * n and not mon.aw, f"read_fifo({n}): {len(mon.ar)} reads seen"
        values = [(7 * i + n) & 0xFFFF for i in range(n)]
        mon.clear()
        await regs.write_fifo(target.offset, values)
        assert mon.aw == [target.offset] * n and mon.w == values and not mon.ar, \
            f"write_fifo({n}): {len(mon.aw)} addresses and {len(mon.w)} data seen"
        assert await regs.read_reg("TDC_WINDOW") == values[-1]
        assert regs.transactions - t0 == 2 * n + 1
    # One transfer per cycle: a job of n ends n + 2 cycles after it starts (the last response;
    # the slave registers each write and each read once before answering, docs/timing.md).
    for write in (False, True):
        t0 = get_sim_time("ps")
        if write:
            await regs.write_fifo(target.offset, range(ENGINE_MAX_WORDS))
        else:
            await regs.read_fifo(target.offset, ENGINE_MAX_WORDS)
        cycles = (get_sim_time("ps") - t0) / tb.period_ps
        kind = "writes" if write else "reads"
        assert cycles <= ENGINE_MAX_WORDS + 2, f"{ENGINE_MAX_WORDS} {kind} took {cycles} cycles"
    mon.stop()


@cocotb.test()
async def engine_and_lean_interleave(dut):
    """The engine and the lean Python master take turns on the same DUT and see each other's writes."""
    tb = await _engine_tb(dut)
    p = tb.params
    engine = tb.regs
    lean = LeanRegisterAccess(LeanAxiLiteMaster(dut, dut.clk))
    thresh, offset = reg("COL_THRESH"), reg("COL_OFFSET")
    for k in range(4):
        a = [pattern(thresh.address(i), k) & thresh.writable_mask for i in range(p.cols)]
        await engine.write_block(thresh.offset, a)
        engine.release()
        assert await lean.read_block(thresh.offset, p.cols) == a, f"round {k}: lean reads the engine's writes"
        b = [pattern(offset.address(i), k + 9) & offset.writable_mask for i in range(p.cols)]
        await lean.write_block(offset.offset, b)
        await lean.write(reg("TDC_WINDOW").offset, k + 1)
        assert await engine.read_block(offset.offset, p.cols) == b, f"round {k}: engine reads the lean master's writes"
        assert await engine.read_reg("TDC_WINDOW") == k + 1
    # Both masters read the whole space alike, responses included.
    await clear_flags(engine)
    via_engine = await engine.transfer_reads(0, SPACE_WORDS)
    await clear_flags(engine)
    engine.release()
    via_lean = await lean.master.read_block([4 * i for i in range(SPACE_WORDS)])
    assert via_engine == via_lean


@cocotb.test()
async def engine_timeout_irq_and_compute(dut):
    """A slave that never answers ends the job with TimeoutError; wait_irq and a compute work."""
    tb = await _engine_tb(dut)
    regs, period = tb.regs, tb.period_ps
    # In reset the slave takes addresses but never answers: the engine must give up.
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    for write in (False, True):
        t0 = get_sim_time("ps")
        try:
            await (regs.write_block(reg("TDC_WINDOW").offset, [1, 2, 3]) if write else regs.read_block(0, 3))
        except TimeoutError:
            cycles = (get_sim_time("ps") - t0) // period
            assert ENGINE_TIMEOUT_CYCLES <= cycles <= ENGINE_TIMEOUT_CYCLES + 10, f"gave up after {cycles} cycles"
        else:
            raise AssertionError(f"{'write' if write else 'read'} during reset did not time out")
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    assert await regs.read_reg("ID") == reg("ID").reset_value(tb.params)
    # Interrupt wait: none pending returns False after the bound; a command's DONE returns True.
    await tb.configure(tb.config.register_settings(tb.params))
    await regs.write_reg("IRQ_EN", FLAG_DONE)
    t0 = get_sim_time("ps")
    assert not await regs.wait_irq(5000)
    assert (get_sim_time("ps") - t0) // period >= 5000
    await regs.write_reg("CMD", cmd_word(OP_COMPUTE))
    assert await regs.wait_irq(100_000)
    flags = await regs.read_reg("FLAGS")
    assert flags & FLAG_DONE
    await regs.write_reg("FLAGS", flags)
    await regs.write_reg("IRQ_EN", 0)
    # The driver's path end to end, checked by the scoreboard.
    rng = np.random.default_rng(3)
    p = tb.params
    tb.program_ideal(rng.choice([-1, 1], size=(p.rows, p.cols)))
    tb.scoreboard._next = len(tb.adapter.log.evaluations)  # the IRQ test's compute is not scored
    for _ in range(3):
        codes, act, tmo, flags = await compute(regs, p, rng.integers(0, 2, p.rows).astype(bool))
        tb.scoreboard.check(codes, act, tmo, flags & FLAG_TIMEOUT)


@cocotb.test()
async def engine_random_stalls(dut):
    """With every channel cut at random (AW and W taken in different cycles, responses waiting)
    blocks, queues and errors still come out right."""
    tb = await _engine_tb(dut)
    p, regs = tb.params, tb.regs
    mon = BusMonitor(dut)
    dut.eng_stall.value = 1
    written = {}
    for r in REGISTERS:
        if r.access == "RW":
            values = [pattern(r.address(i), 5) for i in range(r.words(p))]
            await regs.write_block(r.offset, values)
            written.update({r.address(i): v for i, v in enumerate(values)})
    await clear_flags(regs)
    check_space(await regs.transfer_reads(0, SPACE_WORDS), expected_space(p, written), "under stalls")
    await clear_flags(regs)
    gap = first_gap(p)
    for kind, call, bad in (("read", lambda: regs.read_block(gap - 4, 3), gap),
                            ("write", lambda: regs.write_block(reg("READ_PULSE").offset, [5, 2, 7]),
                             reg("WRITE_STATUS").offset)):
        try:
            await call()
        except BusError as e:
            assert (e.addr, e.write) == (bad, kind == "write"), f"{kind}: {e}"
        else:
            raise AssertionError(f"{kind} block raised no BusError under stalls")
    n = ENGINE_MAX_WORDS + 44
    values = [(11 * i + 3) & 0xFFFF for i in range(n)]
    mon.clear()
    await regs.write_fifo(reg("TDC_WINDOW").offset, values)
    assert mon.aw == [reg("TDC_WINDOW").offset] * n and mon.w == values
    assert mon.aw_alone and mon.w_alone, "the stalls never split AW from W: this test proves nothing"
    mon.clear()
    assert await regs.read_fifo(reg("ID").offset, n) == [reg("ID").reset_value(p)] * n
    assert mon.ar == [reg("ID").offset] * n
    dut.eng_stall.value = 0
    mon.stop()
