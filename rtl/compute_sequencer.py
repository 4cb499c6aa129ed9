"""Compute sequencer: one evaluation of the array and the per-column post-processing."""

from amaranth import Module, Signal, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from macro_spec.params import MacroParams

from .tdc import Tdc

#: STATUS.STATE codes of the compute phases.
COMPUTE_STATE_CODES = {"IDLE": 0, "SETUP": 1, "EVAL": 2, "PRECHARGE": 3}


class ComputeSequencer(wiring.Component):
    """Apply an input vector, evaluate, time every column, precharge, publish.

    Sequence (docs/timing.md): SETUP drives ``x`` for one cycle with the array precharged;
    EVAL raises ``evaluate`` and runs the TDC until every column has fired or the timeout;
    PRECHARGE drops ``evaluate`` for ``max(precharge_cycles + sync_stages + 1, post_groups + 2)``
    cycles: the recovery time plus a synchroniser flush, during which the columns are
    post-processed ``post_lanes`` per cycle (read COL_OFFSET and COL_THRESH from block RAM, add,
    clamp, compare, in a two-stage pipeline). ``codes`` and ``act`` are written a group of
    columns at a time during PRECHARGE; in its last cycle the timeout mask is published and
    ``done`` pulses.

    Parameters
    ----------
    params : MacroParams
        Geometry and counter width.

    Attributes
    ----------
    start : In(1)
        One-cycle command; ignored unless idle.
    x_in : In(rows)
        Input vector from the X registers (1 = +1).
    window, timeout, code_max, precharge_cycles : In(16)
        Register values.
    step : In(8)
        TDC_STEP.
    coef_group : Out(range(post_groups))
        Group of ``post_lanes`` columns whose COL_OFFSET and COL_THRESH words to read (a
        synchronous memory read; column ``j`` is lane ``j % post_lanes`` of group
        ``j // post_lanes``).
    offsets : In(16 * post_lanes)
        COL_OFFSET word (16-bit two's complement lanes) of the group named in the previous cycle.
    thresholds : In(16 * post_lanes)
        COL_THRESH word of that group.
    x : Out(rows)
        Array pin: input vector.
    evaluate : Out(1)
        Array pin: 1 = evaluate, 0 = precharge.
    cmp : In(cols)
        Array pin: comparator outputs.
    busy : Out(1)
        A compute is running.
    done : Out(1)
        One-cycle pulse when results are published.
    codes : Out(tdc_bits).array(cols)
        Published corrected codes (rewritten a group per cycle during PRECHARGE).
    act : Out(cols)
        Published activation bits (rewritten a group per cycle during PRECHARGE).
    tmo : Out(cols)
        Published timeout mask (with ``done``).
    any_timeout : Out(1)
        With ``done``: some column of this compute timed out.
    state : Out(4)
        Phase code for STATUS.STATE.
    """

    def __init__(self, params: MacroParams):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        self._p = params
        c = params.cols
        super().__init__({
            "start": In(1),
            "x_in": In(params.rows),
            "window": In(16), "timeout": In(16), "code_max": In(16), "precharge_cycles": In(16),
            "step": In(8),
            "coef_group": Out(range(params.post_groups)),
            "offsets": In(16 * params.post_lanes),
            "thresholds": In(16 * params.post_lanes),
            "x": Out(params.rows),
            "evaluate": Out(1),
            "cmp": In(c),
            "busy": Out(1),
            "done": Out(1),
            "codes": Out(params.tdc_bits).array(c),
            "act": Out(c),
            "tmo": Out(c),
            "any_timeout": Out(1),
            "state": Out(4),
        })

    def elaborate(self, platform):
        m = Module()
        p = self._p
        m.submodules.tdc = tdc = Tdc(p)
        m.d.comb += [
            tdc.cmp.eq(self.cmp),
            tdc.window.eq(self.window), tdc.timeout.eq(self.timeout),
            tdc.step.eq(self.step), tdc.code_max.eq(self.code_max),
        ]

        # Post-processing of the captured codes, post_lanes columns per cycle during PRECHARGE:
        # stage 0 names a group of columns (their COL_OFFSET/COL_THRESH words are read from
        # block RAM), stage 1 adds the offsets to the group's raw codes, stage 2 clamps,
        # compares and writes the group's CODE and ACT. post_lanes adders and comparators serve
        # every column, which is what lets the 64-column controller fit a small FPGA
        # (docs/fpga.md).
        lanes, groups = p.post_lanes, p.post_groups
        cmax = tdc.effective_code_max
        group = Signal(range(groups + 1))       # next group to name; groups = all named
        group1, group2 = Signal(range(groups)), Signal(range(groups))
        valid1, valid2 = Signal(), Signal()
        m.d.sync += [valid1.eq(0), valid2.eq(valid1), group1.eq(group[:len(group1)]), group2.eq(group1)]
        m.d.comb += self.coef_group.eq(group[:len(self.coef_group)])
        for lane in range(lanes):
            cols = [g * lanes + lane for g in range(groups)]   # this lane's column in each group
            code1, tmo1 = Signal(p.tdc_bits, name=f"code1_{lane}"), Signal(name=f"tmo1_{lane}")
            with m.Switch(group1):
                for g, j in enumerate(cols):
                    if j < p.cols:
                        with m.Case(g):
                            m.d.comb += [code1.eq(tdc.captured_codes[j]), tmo1.eq(tdc.timed_out[j])]
            raw1 = Mux(tmo1, cmax, code1)   # a column that timed out reads code_max
            sum2 = Signal(signed(18), name=f"sum2_{lane}")
            thresh2, tmo2 = Signal(16, name=f"thresh2_{lane}"), Signal(name=f"tmo2_{lane}")
            with m.If(valid1):
                m.d.sync += [sum2.eq(raw1 + self.offsets.word_select(lane, 16).as_signed()),
                             thresh2.eq(self.thresholds.word_select(lane, 16)), tmo2.eq(tmo1)]
            corrected2, act2 = Signal(p.tdc_bits, name=f"corrected2_{lane}"), Signal(name=f"act2_{lane}")
            m.d.comb += [
                corrected2.eq(Mux(sum2 < 0, 0, Mux(sum2 > cmax, cmax, sum2))),
                act2.eq((corrected2 <= thresh2) & ~tmo2),
            ]
            with m.If(valid2):
                for g, j in enumerate(cols):
                    if j < p.cols:
                        with m.If(group2 == g):
                            m.d.sync += [self.codes[j].eq(corrected2), self.act[j].eq(act2)]
        post_done = Signal()
        m.d.comb += post_done.eq((group == groups) & ~valid1)

        m.d.comb += self.any_timeout.eq(tdc.timed_out.any())
        recovery = Signal(17)
        with m.FSM(name="compute"):
            with m.State("IDLE"):
                m.d.comb += self.state.eq(COMPUTE_STATE_CODES["IDLE"])
                with m.If(self.start):
                    m.d.sync += self.x.eq(self.x_in)
                    m.next = "SETUP"
            with m.State("SETUP"):
                m.d.comb += [self.state.eq(COMPUTE_STATE_CODES["SETUP"]), self.busy.eq(1),
                             tdc.clear.eq(1)]
                m.d.sync += self.evaluate.eq(1)
                m.next = "EVAL"
            with m.State("EVAL"):
                m.d.comb += [self.state.eq(COMPUTE_STATE_CODES["EVAL"]), self.busy.eq(1),
                             tdc.run.eq(1)]
                with m.If(tdc.finished):
                    m.d.sync += [self.evaluate.eq(0), group.eq(0),
                                 recovery.eq(self.precharge_cycles + p.sync_stages)]
                    m.next = "PRECHARGE"
            with m.State("PRECHARGE"):
                m.d.comb += [self.state.eq(COMPUTE_STATE_CODES["PRECHARGE"]), self.busy.eq(1)]
                with m.If(group != groups):
                    m.d.sync += [group.eq(group + 1), valid1.eq(1)]
                with m.If(recovery != 0):
                    m.d.sync += recovery.eq(recovery - 1)
                with m.Elif(post_done):
                    m.d.sync += self.tmo.eq(tdc.timed_out)
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        return m
