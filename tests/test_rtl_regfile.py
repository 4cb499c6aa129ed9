"""Register file generated from the register map: reset values and read/write of every register."""

import pytest

from macro_spec.params import MacroParams
from macro_spec.regmap import REGISTERS, reg
from rtl.mram_cim import MramCim
from tests.rtl_harness import AxiMaster, run


@pytest.mark.parametrize("params", [MacroParams(), MacroParams(rows=24, cols=40, tdc_bits=12, sync_stages=3)])
def test_reset_values_of_every_register(params):
    dut = MramCim(params)
    seen = {}

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        for r in REGISTERS:
            for i in range(r.words(params)):
                data, resp = await bus.read(ctx, r.address(i))
                seen[(r.name, i)] = (data, resp)

    run(dut, bench)
    for r in REGISTERS:
        for i in range(r.words(params)):
            expect = 0 if r.access == "WO" else r.reset_value(params)
            assert seen[(r.name, i)] == (expect, 0), f"{r.name}[{i}]"
    caps = seen[("CAPS", 0)][0]
    assert caps & 0xFF == params.rows and (caps >> 8) & 0xFF == params.cols


def test_every_rw_bit_writable_and_no_aliasing():
    """Write all ones then all zeros to each RW word; no other register changes."""
    params = MacroParams(rows=16, cols=16)
    dut = MramCim(params)
    words = [(r, i) for r in REGISTERS if r.access == "RW" for i in range(r.words(params))]

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        before = {(r.name, i): await bus.read_reg(ctx, r.name, i) for r, i in words}
        for r, i in words:
            await bus.write_reg(ctx, r.name, 0xFFFFFFFF, i)
            assert await bus.read_reg(ctx, r.name, i) == r.writable_mask, r.name
            others = [(q, k) for q, k in words if (q.name, k) != (r.name, i)][:12]
            for q, k in others:
                assert await bus.read_reg(ctx, q.name, k) == before[(q.name, k)], f"{r.name} aliases {q.name}"
            await bus.write_reg(ctx, r.name, 0, i)
            assert await bus.read_reg(ctx, r.name, i) == 0
            await bus.write_reg(ctx, r.name, before[(r.name, i)], i)

    run(dut, bench)


@pytest.mark.parametrize("name", ["COL_OFFSET", "COL_THRESH"])
def test_memory_window_lanes_and_byte_strobes(name):
    """A memory window keeps post_lanes registers to a block-RAM word: each register takes
    only its own bytes (strobes honoured), its neighbours in the same word keep theirs, and
    bits beyond the field read 0."""
    params = MacroParams(rows=16, cols=12)
    dut = MramCim(params)
    r = reg(name)
    got = {}

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        for j in range(params.cols):
            await bus.write(ctx, r.address(j), 0xABCD0000 | (0x101 * j))
        await bus.write(ctx, r.address(5), 0x00003400, strb=0b0010)   # byte 1 of register 5 only
        await bus.write(ctx, r.address(6), 0xFFFF0077, strb=0b1101)   # bytes 2-3 hold no field
        for j in range(params.cols):
            got[j] = (await bus.read(ctx, r.address(j)))[0]

    run(dut, bench)
    expect = {j: 0x101 * j for j in range(params.cols)}
    expect[5] = 0x3405
    expect[6] = 0x0677
    assert got == expect


def test_rst_clears_memory_windows_and_holds_the_bus_meanwhile():
    """COL_OFFSET/COL_THRESH sit in block RAM but reset like every register: after rst the
    controller clears them one memory word per cycle, and the bus waits meanwhile (reads are
    not taken, a write waits in the slave)."""
    from amaranth import ClockDomain, Module
    from amaranth.sim import Simulator

    params = MacroParams(rows=16, cols=24)
    dut = MramCim(params)
    top = Module()
    top.domains.sync = sync = ClockDomain()
    top.submodules.dut = dut
    seen = {}

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        for j in range(params.cols):
            await bus.write_reg(ctx, "COL_OFFSET", 0x100 + j, j)
            await bus.write_reg(ctx, "COL_THRESH", 0x200 + j, j)
        await bus.write_reg(ctx, "TDC_WINDOW", 9)
        ctx.set(sync.rst, 1)
        await ctx.delay(2e-9)
        await ctx.negedge(sync.clk)
        ctx.set(sync.rst, 0)
        held = 0
        while not ctx.get(dut.bus.arready):
            held += 1
            await ctx.tick()
        seen["held"] = held
        # A write issued at once waits in the slave and lands after the clearing.
        await bus.write_reg(ctx, "COL_THRESH", 0x55, 3)
        seen["values"] = [await bus.read_reg(ctx, name, j) for name in ("COL_OFFSET", "COL_THRESH")
                          for j in range(params.cols)] + [await bus.read_reg(ctx, "TDC_WINDOW")]

    sim = Simulator(top)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    expect = [0] * (2 * params.cols + 1)
    expect[params.cols + 3] = 0x55
    assert seen["values"] == expect
    assert seen["held"] == params.post_groups
