"""AXI4-Lite slave: every handshake order, back-pressure and error responses (amaranth.sim)."""

import pytest

from macro_spec.params import MacroParams
from macro_spec.regmap import reg
from rtl.axi_lite import RESP_OKAY, RESP_SLVERR
from rtl.mram_cim import MramCim
from tests.rtl_harness import AxiMaster, run

P = MacroParams(rows=16, cols=16)


def _run(bench):
    dut = MramCim(P)

    async def testbench(ctx):
        await bench(ctx, AxiMaster(dut.bus), dut)

    run(dut, testbench)


@pytest.mark.parametrize("order", ["together", "aw_first", "w_first"])
@pytest.mark.parametrize("bready_delay", [0, 3])
def test_write_orders_and_backpressure(order, bready_delay):
    addr = reg("TDC_WINDOW").address()

    async def bench(ctx, bus, dut):
        resp = await bus.write(ctx, addr, 0x1234, order=order, bready_delay=bready_delay)
        assert resp == RESP_OKAY
        data, resp = await bus.read(ctx, addr, rready_delay=bready_delay)
        assert (data, resp) == (0x1234, RESP_OKAY)

    _run(bench)


def test_address_and_data_a_long_time_apart():
    """The slave holds an early address until its data comes, and vice versa."""
    addr = reg("TDC_TIMEOUT").address()

    async def bench(ctx, bus, dut):
        b = dut.bus
        ctx.set(b.awaddr, addr)
        ctx.set(b.awvalid, 1)
        await ctx.tick()
        assert ctx.get(b.awready) == 0  # address held, waiting for data
        ctx.set(b.awvalid, 0)
        for _ in range(5):
            await ctx.tick()
            assert not ctx.get(b.bvalid)
        ctx.set(b.wdata, 77)
        ctx.set(b.wstrb, 0xF)
        ctx.set(b.wvalid, 1)
        await ctx.tick()
        ctx.set(b.wvalid, 0)
        while not ctx.get(b.bvalid):
            await ctx.tick()
        assert ctx.get(b.bresp) == RESP_OKAY
        ctx.set(b.bready, 1)
        await ctx.tick()
        ctx.set(b.bready, 0)
        assert await bus.read_reg(ctx, "TDC_TIMEOUT") == 77

    _run(bench)


def test_byte_strobes_merge():
    async def bench(ctx, bus, dut):
        addr = reg("COL_THRESH").address(3)
        assert await bus.write(ctx, addr, 0xAABB) == RESP_OKAY
        assert await bus.write(ctx, addr, 0x1100, strb=0b0010) == RESP_OKAY
        assert (await bus.read(ctx, addr))[0] == 0x11BB

    _run(bench)


def test_error_responses():
    async def bench(ctx, bus, dut):
        # Unmapped address: reads and writes answer SLVERR.
        assert (await bus.read(ctx, 0x0F0))[1] == RESP_SLVERR
        assert await bus.write(ctx, 0x0F0, 1) == RESP_SLVERR
        # Beyond the words of a window that exist for this geometry (16 columns).
        assert (await bus.read(ctx, reg("COL_OFFSET").address(16)))[1] == RESP_SLVERR
        # Read-only register: the write is refused and changes nothing.
        assert await bus.write(ctx, reg("ID").address(), 0) == RESP_SLVERR
        assert await bus.read_reg(ctx, "ID") == 0x4D43494D
        assert await bus.write(ctx, reg("OP_COUNT").address(), 5) == RESP_SLVERR
        assert await bus.read_reg(ctx, "OP_COUNT") == 0
        # Write-only registers read as zero, OKAY.
        assert await bus.read(ctx, reg("CMD").address()) == (0, RESP_OKAY)
        # The bus still works after errors.
        await bus.write_reg(ctx, "TDC_STEP", 3)
        assert await bus.read_reg(ctx, "TDC_STEP") == 3

    _run(bench)


def test_back_to_back_reads_and_writes():
    async def bench(ctx, bus, dut):
        for j in range(P.cols):
            await bus.write_reg(ctx, "COL_THRESH", 100 + j, j)
        for j in range(P.cols):
            assert await bus.read_reg(ctx, "COL_THRESH", j) == 100 + j

    _run(bench)
