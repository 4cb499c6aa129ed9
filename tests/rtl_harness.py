"""amaranth.sim helpers for the RTL unit tests: an AXI4-Lite master and a digital array stand-in.

The array stand-in answers the array pins with the exact timing rules of docs/timing.md
(comparator edges at ``fire_ps + 0.5`` ps after evaluate, sensed data after a latency), so the
RTL can be checked against :mod:`rtl.reference` without an external simulator.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from firmware.regs import bits_to_words, words_to_bits  # noqa: F401  (re-exported for the tests)
from macro_spec.regmap import reg
from rtl.mram_cim import MramCim

PS = 1e-12


class AxiMaster:
    """Cycle-level AXI4-Lite master for ``async def testbench(ctx)`` functions.

    Parameters
    ----------
    bus : the ``bus`` port of :class:`rtl.mram_cim.MramCim` (or of the bus slave).
    """

    def __init__(self, bus, max_cycles: int = 200):
        self.bus = bus
        self.max_cycles = max_cycles

    async def _wait(self, ctx, cond, what):
        for _ in range(self.max_cycles):
            if cond():
                return
            await ctx.tick()
        raise AssertionError(f"AXI {what} did not complete in {self.max_cycles} cycles")

    async def write(self, ctx, addr: int, data: int, strb: int = 0xF, order: str = "together",
                    bready_delay: int = 0) -> int:
        """Write one word; returns BRESP.

        ``order`` is ``together``, ``aw_first`` or ``w_first``; ``bready_delay`` holds BREADY
        low for that many cycles after BVALID.
        """
        b = self.bus
        ctx.set(b.bready, 0)
        if order in ("together", "aw_first"):
            ctx.set(b.awaddr, addr)
            ctx.set(b.awvalid, 1)
        if order in ("together", "w_first"):
            ctx.set(b.wdata, data)
            ctx.set(b.wstrb, strb)
            ctx.set(b.wvalid, 1)
        pending_aw = pending_w = True
        for _ in range(self.max_cycles):
            aw_fire = pending_aw and ctx.get(b.awvalid) and ctx.get(b.awready)
            w_fire = pending_w and ctx.get(b.wvalid) and ctx.get(b.wready)
            await ctx.tick()
            if aw_fire:
                ctx.set(b.awvalid, 0)
                pending_aw = False
            if w_fire:
                ctx.set(b.wvalid, 0)
                pending_w = False
            if not pending_aw and not pending_w:
                break
            # Present the second channel only once the first has been accepted.
            if not pending_aw and order == "aw_first" and not ctx.get(b.wvalid) and pending_w:
                ctx.set(b.wdata, data)
                ctx.set(b.wstrb, strb)
                ctx.set(b.wvalid, 1)
            if not pending_w and order == "w_first" and not ctx.get(b.awvalid) and pending_aw:
                ctx.set(b.awaddr, addr)
                ctx.set(b.awvalid, 1)
        else:
            raise AssertionError("AXI write address/data not accepted")
        await self._wait(ctx, lambda: ctx.get(b.bvalid), "write response")
        for _ in range(bready_delay):
            await ctx.tick()
            assert ctx.get(b.bvalid), "BVALID dropped before BREADY"
        resp = ctx.get(b.bresp)
        ctx.set(b.bready, 1)
        await ctx.tick()
        ctx.set(b.bready, 0)
        return resp

    async def read(self, ctx, addr: int, rready_delay: int = 0) -> tuple[int, int]:
        """Read one word; returns (RDATA, RRESP)."""
        b = self.bus
        ctx.set(b.rready, 0)
        ctx.set(b.araddr, addr)
        ctx.set(b.arvalid, 1)
        await self._wait(ctx, lambda: ctx.get(b.arready), "read address")
        await ctx.tick()
        ctx.set(b.arvalid, 0)
        await self._wait(ctx, lambda: ctx.get(b.rvalid), "read data")
        for _ in range(rready_delay):
            await ctx.tick()
            assert ctx.get(b.rvalid), "RVALID dropped before RREADY"
        data, resp = ctx.get(b.rdata), ctx.get(b.rresp)
        ctx.set(b.rready, 1)
        await ctx.tick()
        ctx.set(b.rready, 0)
        return data, resp

    async def write_reg(self, ctx, name: str, value: int, index: int = 0) -> None:
        """Write a register by name; fails on an error response."""
        resp = await self.write(ctx, reg(name).address(index), value)
        assert resp == 0, f"write {name}[{index}] answered {resp}"

    async def read_reg(self, ctx, name: str, index: int = 0) -> int:
        """Read a register by name; fails on an error response."""
        data, resp = await self.read(ctx, reg(name).address(index))
        assert resp == 0, f"read {name}[{index}] answered {resp}"
        return data


class DigitalArray:
    """A digital stand-in for the MRAM array behind the pins, for amaranth.sim.

    Parameters
    ----------
    dut : MramCim
    fire_fn : callable
        ``fire_fn(x_bits, state_a, state_b) -> fire_ps`` per column (int array, sentinels
        -1 = already high, None/huge = never).
    read_latency_ps : int
        Delay from ``rd_en`` rising to ``rd_data``.
    stuck : dict
        ``{(row, side, col): bool}`` devices that never switch (value = their state, True = low).
    """

    NEVER = 2**62

    def __init__(self, dut: MramCim, fire_fn=None, read_latency_ps: int = 500, stuck=None):
        p = dut.params
        self.dut = dut
        self.rows, self.cols = p.rows, p.cols
        self.state_a = np.zeros((p.rows, p.cols), dtype=bool)
        self.state_b = np.zeros((p.rows, p.cols), dtype=bool)
        self.fire_fn = fire_fn or self.mismatch_fire
        self.read_latency_ps = read_latency_ps
        self.stuck = dict(stuck or {})
        for (r, s, c), v in self.stuck.items():
            (self.state_a if s == 0 else self.state_b)[r, c] = v
        self.pulses = []    # (row, side, data, cols)
        self.evaluations = []  # x bits
        self.stuck_high = np.zeros(p.cols, dtype=bool)
        self.period_ps = 250

    @staticmethod
    def mismatch_fire(x, a, b, base_ps=13125, step_ps=250):
        """Ideal timing: fire = base + mismatches * step (the ``ideal`` preset's shape)."""
        low = np.where(x[:, None], a, b)  # branch A when input +1
        mismatches = (~low).sum(axis=0)
        return base_ps + step_ps * mismatches

    def attach(self, sim: Simulator):
        """Add the pin-answering processes to a simulator."""
        arr = self.dut.array

        async def evaluate_proc(ctx):
            while True:
                await ctx.posedge(arr.evaluate)
                x = np.array([(ctx.get(arr.x) >> i) & 1 for i in range(self.rows)], dtype=bool)
                self.evaluations.append(x)
                fire = np.asarray(self.fire_fn(x, self.state_a, self.state_b), dtype=np.int64)
                order = sorted((int(t), j) for j, t in enumerate(fire) if 0 <= t < self.NEVER)
                value = int(sum(1 << j for j in range(self.cols) if self.stuck_high[j] or fire[j] < 0))
                ctx.set(arr.cmp, value)
                now = -0.5
                for t, j in order:
                    # Wake at the fire time, or earlier if precharge starts first.
                    _, precharged = await ctx.delay((t - now) * PS).negedge(arr.evaluate)
                    if precharged:
                        break
                    now = t
                    value |= 1 << j
                    ctx.set(arr.cmp, value)

        async def precharge_proc(ctx):
            while True:
                await ctx.negedge(arr.evaluate)
                ctx.set(arr.cmp, int(sum(1 << j for j in range(self.cols) if self.stuck_high[j])))

        async def write_proc(ctx):
            while True:
                await ctx.posedge(arr.wr_en)
                row, side = ctx.get(arr.row), ctx.get(arr.side)
                data, cols = ctx.get(arr.wr_data), ctx.get(arr.wr_cols)
                await ctx.negedge(arr.wr_en)
                self.pulses.append((row, side, data, cols))
                st = self.state_a if side == 0 else self.state_b
                for j in range(self.cols):
                    if (cols >> j) & 1 and (row, side, j) not in self.stuck:
                        st[row, j] = bool((data >> j) & 1)

        async def read_proc(ctx):
            while True:
                await ctx.posedge(arr.rd_en)
                row, side = ctx.get(arr.row), ctx.get(arr.side)
                st = self.state_a if side == 0 else self.state_b
                value = int(sum(1 << j for j in range(self.cols) if st[row, j]))
                await ctx.delay((self.read_latency_ps + 0.5) * PS)
                ctx.set(arr.rd_data, value)

        for proc in (evaluate_proc, precharge_proc, write_proc, read_proc):
            sim.add_testbench(proc, background=True)

    def program(self, weights):
        """Store a ±1 matrix directly (A low where +1, B the complement)."""
        w = np.asarray(weights) > 0
        self.state_a[:] = w
        self.state_b[:] = ~w


def run(dut, bench, array: DigitalArray | None = None, period_ps: int = 250, vcd: str | None = None):
    """Run ``bench(ctx)`` against ``dut`` with an optional array stand-in."""
    sim = Simulator(dut)
    sim.add_clock(period_ps * PS)
    if array is not None:
        array.period_ps = period_ps
        array.attach(sim)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
