"""Compute sequencer: one evaluation of the array and the per-column post-processing."""

from amaranth import Cat, Const, Module, Signal, Mux, signed
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
    PRECHARGE drops ``evaluate`` for ``max(precharge_cycles + sync_stages + 1, post_groups + 4)``
    cycles: the recovery time plus a synchroniser flush, during which the columns are
    post-processed ``post_lanes`` per cycle (read COL_OFFSET and COL_THRESH from block RAM, add,
    clamp, compare, in a four-stage pipeline). ``codes`` and ``act`` are written a group of
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
    code_rd_word : In(range(code_words))
        CODE word the bus reads (taken with ``code_rd_stb``).
    code_rd_stb : In(1)
        The bus takes a read of ``code_rd_word``.
    code_rd_data : Out(32)
        That word, from the cycle after the strobe until the next, while the sequencer is idle:
        the post-processing lanes' group multiplexer serves the bus then, so the register file
        needs no multiplexer over the CODE window (during a compute the word is meaningless;
        CODE is valid from ``done`` on).
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
        Published corrected codes: the TDC's code registers, which hold raw codes while a
        compute evaluates and are rewritten with the corrected codes, a group per cycle, during
        PRECHARGE. Valid from ``done`` until the next compute's EVAL.
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
            "code_rd_word": In(range(params.code_words)),
            "code_rd_stb": In(1),
            "code_rd_data": Out(32),
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

        # Post-processing of the captured codes, post_lanes columns per cycle during PRECHARGE,
        # a pipeline with at most one carry chain or one wide multiplexer per stage (100 MHz on
        # an ECP5):
        #   stage 0  group: names a group of columns;
        #   stage 1  group1: the lanes' multiplexer picks the group's captured codes and timeout
        #            bits (registered), and COL_OFFSET/COL_THRESH of the group are read from
        #            block RAM;
        #   stage 2  adds each offset to its raw code;
        #   stage 3  clamps to [0, code_max];
        #   stage 4  compares with the threshold, writes ACT and writes the corrected code back
        #            into the TDC register it came from.
        # post_lanes adders and comparators serve every column, which is what lets the
        # 64-column controller fit a small FPGA (docs/fpga.md).
        lanes, groups = p.post_lanes, p.post_groups
        cmax = tdc.effective_code_max
        group = Signal(range(groups + 1))       # next group to name; groups = all named
        group1, group2, group3, group4 = (Signal(range(groups), name=f"group{k}") for k in (1, 2, 3, 4))
        valid1, valid2, valid3, valid4 = (Signal(name=f"valid{k}") for k in (1, 2, 3, 4))
        m.d.sync += [valid1.eq(0), valid2.eq(valid1), valid3.eq(valid2), valid4.eq(valid3),
                     group2.eq(group1), group3.eq(group2), group4.eq(group3)]
        m.d.comb += self.coef_group.eq(group1)
        # The lanes' group multiplexer serves stage 1 while busy and the bus's CODE reads while
        # idle: its select group1 is the next group while busy, the group of the last CODE word
        # read while idle (loaded when the bus takes the read, held until the next).
        cpw = p.codes_per_word
        if cpw % lanes and lanes % cpw:
            raise ValueError(f"{cpw} codes per CODE word do not tile {lanes} post-processing lanes")
        rd_col = Signal(range(p.code_words * cpw))
        rd_lane = Signal(range(lanes))      # first lane of the word read
        m.d.comb += rd_col.eq(self.code_rd_word * cpw)
        with m.If(self.busy):
            m.d.sync += group1.eq(group[:len(group1)])
        with m.Elif(self.code_rd_stb):
            m.d.sync += [group1.eq(rd_col // lanes), rd_lane.eq(rd_col % lanes)]
        # Stage 4 writes the ACT bits of group4: one decoded enable per group, shared by its
        # lanes (event-driven simulators then compare group4 with each group once).
        act_hit = [Signal(name=f"act_hit{g}") for g in range(groups)]
        for g in range(groups):
            m.d.comb += act_hit[g].eq(valid4 & (group4 == g))
        lane_codes, lane_acts = [], []
        for lane in range(lanes):
            cols = [g * lanes + lane for g in range(groups)]   # this lane's column in each group
            code1, tmo1 = Signal(p.tdc_bits, name=f"code1_{lane}"), Signal(name=f"tmo1_{lane}")
            lane_codes.append(code1)
            with m.Switch(group1):
                for g, j in enumerate(cols):
                    if j < p.cols:
                        with m.Case(g):
                            m.d.comb += [code1.eq(tdc.captured_codes[j]), tmo1.eq(tdc.timed_out[j])]
            raw2, tmo2 = Signal(p.tdc_bits, name=f"raw2_{lane}"), Signal(name=f"tmo2_{lane}")
            with m.If(valid1):
                # A column that timed out reads code_max.
                m.d.sync += [raw2.eq(Mux(tmo1, cmax, code1)), tmo2.eq(tmo1)]
            sum3 = Signal(signed(18), name=f"sum3_{lane}")
            thresh3, tmo3 = Signal(16, name=f"thresh3_{lane}"), Signal(name=f"tmo3_{lane}")
            with m.If(valid2):
                m.d.sync += [sum3.eq(raw2 + self.offsets.word_select(lane, 16).as_signed()),
                             thresh3.eq(self.thresholds.word_select(lane, 16)), tmo3.eq(tmo2)]
            corrected4 = Signal(p.tdc_bits, name=f"corrected4_{lane}")
            thresh4, tmo4 = Signal(16, name=f"thresh4_{lane}"), Signal(name=f"tmo4_{lane}")
            with m.If(valid3):
                m.d.sync += [corrected4.eq(Mux(sum3 < 0, 0, Mux(sum3 > cmax, cmax, sum3))),
                             thresh4.eq(thresh3), tmo4.eq(tmo3)]
            act4 = Signal(name=f"act4_{lane}")
            m.d.comb += act4.eq((corrected4 <= thresh4) & ~tmo4)
            m.d.comb += tdc.wb_codes.word_select(lane, p.tdc_bits).eq(corrected4)
            lane_acts.append(act4)
        for g in range(groups):
            with m.If(act_hit[g]):
                for lane in range(lanes):
                    if g * lanes + lane < p.cols:
                        m.d.sync += self.act[g * lanes + lane].eq(lane_acts[lane])
        # A CODE word from the lanes: all of them (4 codes of 8 bits), or half (2 of 16 bits).
        pad = p.code_field_bits - p.tdc_bits
        fields = [Cat(c, Const(0, pad)) for c in lane_codes]
        if cpw >= lanes:
            m.d.comb += self.code_rd_data.eq(Cat(*fields))
        else:
            with m.Switch(rd_lane):
                for off in range(0, lanes, cpw):
                    with m.Case(off):
                        m.d.comb += self.code_rd_data.eq(Cat(*fields[off:off + cpw]))
        # The corrected codes replace the raw ones in the TDC's registers, which are the
        # published codes.
        m.d.comb += [tdc.wb_en.eq(valid4), tdc.wb_group.eq(group4)]
        m.d.comb += [self.codes[j].eq(tdc.captured_codes[j]) for j in range(p.cols)]
        post_done = Signal()
        m.d.comb += post_done.eq((group == groups) & ~valid1 & ~valid2 & ~valid3)

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
