"""The digital array stand-in of the FPGA board top (amaranth.sim): storage, delays, jitter."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator

from macro_spec.params import MacroParams
from macro_spec.regmap import ADDR_BITS, OP_COMPUTE, OP_READ_ROW, OP_WRITE_ROW
from rtl.axi_lite import AxiLiteSignature
from rtl.board.array_model import ArrayStandIn
from rtl.mram_cim import MramCim
from tests.rtl_harness import AxiMaster, bits_to_words, words_to_bits

P = MacroParams(rows=16, cols=12)


def test_constructor_checks():
    with pytest.raises(TypeError, match="params"):
        ArrayStandIn("64x64")
    with pytest.raises(ValueError, match="base_cycles"):
        ArrayStandIn(P, base_cycles=P.rows + 2)      # the row scan needs rows + 3
    with pytest.raises(TypeError, match="cycles_per_mismatch"):
        ArrayStandIn(P, cycles_per_mismatch=1.5)
    with pytest.raises(ValueError, match="jitter_bits"):
        ArrayStandIn(P, cycles_per_mismatch=2, jitter_bits=2)   # up to 3 cycles of jitter > one step
    with pytest.raises(ValueError, match="lfsr_seed"):
        ArrayStandIn(P, lfsr_seed=0)


def _pins_sim(standin, bench):
    sim = Simulator(standin)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("step,jitter_bits", [(1, 0), (4, 2)])
def test_fire_edges_follow_mismatches(step, jitter_bits):
    """Written rows are stored; cmp[j] rises at edge base + mismatches*step + jitter (jitter < step)."""
    dut = ArrayStandIn(P, base_cycles=P.rows + 5, cycles_per_mismatch=step, jitter_bits=jitter_bits)
    arr = dut.array
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2, (P.rows, P.cols)).astype(bool)
    b = rng.integers(0, 2, (P.rows, P.cols)).astype(bool)
    seen_jitter = set()

    def word(bits):
        return int(sum(1 << j for j, v in enumerate(bits) if v))

    async def bench(ctx):
        # Write both sides of every row: first all ones on every column, then the data on a
        # subset of columns only (a partial write keeps the others).
        for side, st in ((0, a), (1, b)):
            for r in range(P.rows):
                for data, cols in ((~0 & ((1 << P.cols) - 1), (1 << P.cols) - 1), (word(st[r]), (1 << P.cols) - 1)):
                    ctx.set(arr.row, r)
                    ctx.set(arr.side, side)
                    ctx.set(arr.wr_data, data)
                    ctx.set(arr.wr_cols, cols)
                    await ctx.tick()
                    ctx.set(arr.wr_en, 1)
                    await ctx.tick().repeat(2)
                    ctx.set(arr.wr_en, 0)
                    await ctx.tick().repeat(2)
        # Read back.
        for side, st in ((0, a), (1, b)):
            for r in range(P.rows):
                ctx.set(arr.row, r)
                ctx.set(arr.side, side)
                await ctx.tick().repeat(2)
                assert ctx.get(arr.rd_data) == word(st[r]), f"row {r} side {side}"
        for trial in range(6):
            x = rng.integers(0, 2, P.rows).astype(bool)
            mism = (~np.where(x[:, None], a, b)).sum(axis=0)
            ctx.set(arr.x, word(x))
            await ctx.tick()
            ctx.set(arr.evaluate, 1)               # as a register would after edge 0
            fired = {}
            for k in range(1, dut.base_cycles + (P.rows + 2) * step):
                await ctx.tick()                   # edge k
                cmp = ctx.get(arr.cmp)
                for j in range(P.cols):
                    if (cmp >> j) & 1 and j not in fired:
                        fired[j] = k
            for j in range(P.cols):
                extra = fired[j] - dut.base_cycles - mism[j] * step
                assert 0 <= extra < max(1, 1 << jitter_bits), f"col {j}: fired at {fired[j]}, mismatches {mism[j]}"
                seen_jitter.add(extra)
            ctx.set(arr.evaluate, 0)
            await ctx.tick().repeat(2)
            assert ctx.get(arr.cmp) == 0, "precharge clears the comparators"

    _pins_sim(dut, bench)
    if jitter_bits:
        assert len(seen_jitter) > 1, "the LFSR jitter never varied"


class _Pair(wiring.Component):
    """Controller and stand-in, with the controller's bus outside."""

    def __init__(self, params, **kw):
        self.params = params
        self.standin = ArrayStandIn(params, **kw)
        super().__init__({"bus": In(AxiLiteSignature(ADDR_BITS))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.ctrl = ctrl = MramCim(self.params)
        m.submodules.standin = self.standin
        wiring.connect(m, wiring.flipped(self.bus), ctrl.bus)
        wiring.connect(m, ctrl.array, self.standin.array)
        return m


def test_controller_programs_and_computes_through_standin():
    """WRITE_ROW with verify, READ_ROW and COMPUTE on the real controller: codes are mismatch counts."""
    dut = _Pair(P, cycles_per_mismatch=2, jitter_bits=1)
    settings = dut.standin.tdc_settings()
    axi = AxiMaster(dut.bus, max_cycles=2000)
    rng = np.random.default_rng(9)
    w = rng.choice([-1, 1], size=(P.rows, P.cols))

    async def wait_done(ctx):
        for _ in range(200):
            flags = await axi.read_reg(ctx, "FLAGS")
            if flags & 1:
                await axi.write_reg(ctx, "FLAGS", flags)
                return flags
        raise AssertionError("command did not finish")

    async def bench(ctx):
        for name, value in {**settings, "WRITE_PULSE": 1, "READ_PULSE": 2}.items():
            await axi.write_reg(ctx, name, value)
        for r in range(P.rows):
            for i, v in enumerate(bits_to_words(w[r] > 0, P.col_words)):
                await axi.write_reg(ctx, "WDATA", v, i)
            await axi.write_reg(ctx, "CMD", OP_WRITE_ROW | (r << 8))
            flags = await wait_done(ctx)
            assert not flags & 0x8, f"row {r}: WRITE_FAIL"
            assert await axi.read_reg(ctx, "WRITE_STATUS") & 0xF == 0, "no retry needed"
        for side in (0, 1):   # READ_PULSE = 2 reads the new data (block RAM, then a register)
            await axi.write_reg(ctx, "CMD", OP_READ_ROW | (3 << 8) | (side << 16))
            await wait_done(ctx)
            got = words_to_bits([await axi.read_reg(ctx, "RDATA", i) for i in range(P.col_words)], P.cols)
            assert list(got) == list((w[3] > 0) ^ bool(side))
        for _ in range(4):
            x = rng.integers(0, 2, P.rows).astype(bool)
            for i, v in enumerate(bits_to_words(x, P.row_words)):
                await axi.write_reg(ctx, "X", v, i)
            await axi.write_reg(ctx, "CMD", OP_COMPUTE)
            flags = await wait_done(ctx)
            assert not flags & 0x10, "no column may time out"
            words = [await axi.read_reg(ctx, "CODE", i) for i in range(P.code_words)]
            codes = [(words[j // 4] >> (8 * (j % 4))) & 0xFF for j in range(P.cols)]
            dots = np.where(x, 1, -1) @ w
            assert codes == list((P.rows - dots) // 2)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
