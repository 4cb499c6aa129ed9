"""Compute sequencer and TDC inside the whole controller, against rtl.reference (amaranth.sim)."""

import numpy as np
import pytest

from macro_spec.params import MacroParams
from macro_spec.regmap import FLAG_DONE, FLAG_TIMEOUT, OP_COMPUTE, reg
from rtl.mram_cim import MramCim
from rtl.reference import FIRE_ALREADY, FIRE_NEVER, tdc_codes
from tests.rtl_harness import AxiMaster, DigitalArray, bits_to_words, run, words_to_bits

T_PS = 250


def unpack_codes(words, params):
    f = params.code_field_bits
    per = 32 // f
    return np.array([(words[j // per] >> ((j % per) * f)) & ((1 << f) - 1) for j in range(params.cols)])


async def compute(ctx, bus, params, x_bits):
    for w, v in enumerate(bits_to_words(x_bits, params.row_words)):
        await bus.write_reg(ctx, "X", v, w)
    await bus.write_reg(ctx, "CMD", OP_COMPUTE)
    for _ in range(400):
        flags = await bus.read_reg(ctx, "FLAGS")
        if flags & FLAG_DONE:
            break
    else:
        raise AssertionError("compute never finished")
    await bus.write_reg(ctx, "FLAGS", flags)
    codes = unpack_codes([await bus.read_reg(ctx, "CODE", w) for w in range(params.code_words)], params)
    act = words_to_bits([await bus.read_reg(ctx, "ACT", w) for w in range(params.col_words)], params.cols)
    tmo = words_to_bits([await bus.read_reg(ctx, "TMO", w) for w in range(params.col_words)], params.cols)
    return codes, act, tmo, flags


def check_against_reference(params, fire_sets, settings, offsets=None, thresholds=None):
    """Run one compute per fire-time vector and compare with the reference."""
    dut = MramCim(params)
    cols = params.cols
    offsets = np.zeros(cols, int) if offsets is None else np.asarray(offsets)
    thresholds = np.zeros(cols, int) if thresholds is None else np.asarray(thresholds)
    queue = list(fire_sets)
    array = DigitalArray(dut, fire_fn=lambda x, a, b: queue.pop(0))
    results = []

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        for name, value in settings.items():
            await bus.write_reg(ctx, name, value)
        for j in range(cols):
            await bus.write_reg(ctx, "COL_OFFSET", int(offsets[j]) & 0xFFFF, j)
            await bus.write_reg(ctx, "COL_THRESH", int(thresholds[j]), j)
        for _ in fire_sets:
            results.append(await compute(ctx, bus, params, np.ones(params.rows, bool)))

    run(dut, bench, array, period_ps=T_PS)
    for fire, (codes, act, tmo, flags) in zip(fire_sets, results):
        ref_codes, ref_act, ref_tmo = tdc_codes(
            fire, clock_period_ps=T_PS, sync_stages=params.sync_stages, tdc_bits=params.tdc_bits,
            window_start_cycles=settings.get("TDC_WINDOW", 0), timeout_cycles=settings.get("TDC_TIMEOUT", 255),
            step_cycles=settings.get("TDC_STEP", 1), code_max=settings.get("TDC_CODE_MAX", params.code_max),
            offsets=offsets, thresholds=thresholds)
        assert list(codes) == list(ref_codes), f"fire {list(fire)}"
        assert list(act) == list(ref_act)
        assert list(tmo) == list(ref_tmo)
        assert bool(flags & FLAG_TIMEOUT) == bool(ref_tmo.any())
    return results


def test_codes_at_and_next_to_clock_edges():
    """Fire times exactly on, just before and just after edges land in the bins the rules say."""
    p = MacroParams(rows=8, cols=8)
    fire = np.array([0, 249, 250, 251, 499, 500, 1000, 1249])
    res = check_against_reference(p, [fire], {"TDC_WINDOW": 0, "TDC_TIMEOUT": 100})
    codes = res[0][0]
    # d = floor(fire/T) + 2 with window 0: 2,2,3,3,3,4,6,6
    assert list(codes) == [2, 2, 3, 3, 3, 4, 6, 6]


def test_window_step_saturation_and_timeout():
    p = MacroParams(rows=8, cols=8, tdc_bits=4)
    fire = np.array([1000, 3000, 5100, 7400, 9000, 20000, FIRE_NEVER, FIRE_ALREADY])
    settings = {"TDC_WINDOW": 10, "TDC_STEP": 3, "TDC_TIMEOUT": 60, "TDC_CODE_MAX": 9}
    res = check_against_reference(p, [fire], settings)
    codes, act, tmo, _ = res[0]
    assert codes[0] == 0            # before the window
    assert codes[4] == 9 and codes[5] == 9  # saturated / timed out at code_max
    assert list(tmo) == [False] * 5 + [True, True, False]


def test_offsets_thresholds_and_activation():
    p = MacroParams(rows=8, cols=8)
    fire = np.array([250 * k + 125 for k in range(0, 16, 2)])
    offsets = [0, -3, 5, -100, 100, 0, 1, -1]
    thresholds = [3, 3, 3, 3, 3, 8, 8, 8]
    check_against_reference(p, [fire], {"TDC_WINDOW": 2, "TDC_TIMEOUT": 200}, offsets, thresholds)


@pytest.mark.parametrize("params", [MacroParams(rows=64, cols=64), MacroParams(rows=24, cols=40, sync_stages=3, post_lanes=4),
                                    MacroParams(rows=16, cols=42, tdc_bits=10, post_lanes=16),
                                    MacroParams(rows=8, cols=12, post_lanes=16)])
def test_random_fire_times_match_reference(params):
    """Random fire times, offsets and thresholds, with 4 to 16 post-processing lanes; 42 columns
    leave the last group of 16 lanes partly empty, 12 columns fill less than one group."""
    rng = np.random.default_rng(params.cols + params.tdc_bits)
    fire_sets = [rng.integers(0, 40000, params.cols) for _ in range(3)]
    offsets = rng.integers(-40, 41, params.cols)
    thresholds = rng.integers(0, 60, params.cols)
    check_against_reference(params, fire_sets, {"TDC_WINDOW": 40, "TDC_TIMEOUT": 150, "TDC_STEP": 2},
                            offsets, thresholds)


@pytest.mark.parametrize("precharge,lanes", [(0, 8), (3, 8), (40, 8), (0, 4), (6, 4)])
def test_precharge_lasts_recovery_or_post_processing(precharge, lanes):
    """docs/timing.md: PRECHARGE lasts max(PRECHARGE + S + 1, post_groups + 4) cycles: from the
    edge that drops evaluate, that many edges until the one that sets FLAGS.DONE."""
    p = MacroParams(rows=16, cols=64, post_lanes=lanes)
    dut = MramCim(p)
    array = DigitalArray(dut, fire_fn=lambda x, a, b: np.full(p.cols, 2000))
    spans = []

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        await bus.write_reg(ctx, "PRECHARGE", precharge)
        await bus.write_reg(ctx, "IRQ_EN", FLAG_DONE)
        await bus.write_reg(ctx, "CMD", OP_COMPUTE)
        await ctx.negedge(dut.array.evaluate)
        n = 0
        while not ctx.get(dut.irq):
            await ctx.tick()
            n += 1
            assert n < 500, "compute never finished"
        spans.append(n)

    run(dut, bench, array, period_ps=T_PS)
    assert spans == [max(precharge + p.sync_stages + 1, p.post_groups + 4)]


def test_ideal_array_gives_exact_mismatch_counts():
    """With 250 ps per mismatch and the window at the all-match bin, code = mismatches."""
    p = MacroParams(rows=16, cols=8)
    dut = MramCim(p)
    array = DigitalArray(dut)
    rng = np.random.default_rng(3)
    w = rng.choice([-1, 1], size=(p.rows, p.cols))
    array.program(w)
    xs = [rng.integers(0, 2, p.rows).astype(bool) for _ in range(3)]
    out = []

    async def bench(ctx):
        bus = AxiMaster(dut.bus)
        await bus.write_reg(ctx, "TDC_WINDOW", 13125 // T_PS + p.sync_stages)
        await bus.write_reg(ctx, "TDC_TIMEOUT", 200)
        for x in xs:
            out.append(await compute(ctx, bus, p, x))
        out.append(await bus.read_reg(ctx, "OP_COUNT"))

    run(dut, bench, array, period_ps=T_PS)
    for x, (codes, *_rest) in zip(xs, out):
        xpm = np.where(x, 1, -1)
        dots = xpm @ w
        assert list(codes) == list((p.rows - dots) // 2)
    assert out[-1] == len(xs)
