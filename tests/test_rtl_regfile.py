"""Register file generated from the register map: reset values and read/write of every register."""

import pytest

from macro_spec.params import MacroParams
from macro_spec.regmap import REGISTERS
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
