"""Time-to-digital converter: one code per column from its comparator's first rising edge."""

from amaranth import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from macro_spec.params import MacroParams


class Tdc(wiring.Component):
    """Counter-based TDC shared by all columns, with a synchroniser per comparator.

    The comparators are asynchronous to the controller clock, so each passes ``sync_stages``
    flip-flops before it is looked at. While ``run`` is high an ``elapsed`` counter counts
    cycles since evaluate; a code counter starts ``window`` cycles in and advances every
    ``step`` cycles, saturating at ``code_max``. Each column latches the code counter at the
    first cycle its synchronised comparator is high. The exact rules are in docs/timing.md and
    in :func:`rtl.reference.tdc_codes`.

    Parameters
    ----------
    params : MacroParams
        Geometry and counter width.

    Attributes
    ----------
    cmp : In(cols)
        Raw comparator outputs from the array.
    clear : In(1)
        Resets the counters and captures (asserted in the cycle before evaluate).
    run : In(1)
        High during evaluation.
    window, timeout : In(16)
        TDC_WINDOW and TDC_TIMEOUT register values.
    step : In(8)
        TDC_STEP (0 acts as 1).
    code_max : In(16)
        TDC_CODE_MAX (clipped to the counter width).
    finished : Out(1)
        High in the last cycle of evaluation: every column captured, or the timeout reached.
    timed_out : Out(cols)
        Columns not captured (meaningful once evaluation has ended).
    captured_codes : Out(tdc_bits).array(cols)
        The code counter latched when each column was captured; meaningless for a column that
        timed out (the raw code is then ``effective_code_max``: the post-processing, which looks
        at a few columns at a time, applies that, so the TDC needs no multiplexer per column).
        After post-processing, the corrected codes written back (``wb_*``). One port per column
        rather than one packed vector: event-driven simulators then re-evaluate only the column
        that changed, not every reader of a wide net.
    wb_en : In(1)
        Write ``wb_codes`` into the code registers of the columns of group ``wb_group``
        (``post_lanes`` columns; never during ``run``). The post-processing stores each corrected
        code in place of its raw code, so the published codes need no second set of registers.
    wb_group : In(range(post_groups))
        Group of columns ``post_lanes * wb_group ...`` to write.
    wb_codes : In(tdc_bits * post_lanes)
        One code per lane.
    effective_code_max : Out(tdc_bits)
        ``min(code_max, 2**tdc_bits - 1)``.
    """

    def __init__(self, params: MacroParams):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        self._p = params
        super().__init__({
            "cmp": In(params.cols),
            "clear": In(1),
            "run": In(1),
            "window": In(16),
            "timeout": In(16),
            "step": In(8),
            "code_max": In(16),
            "finished": Out(1),
            "timed_out": Out(params.cols),
            "captured_codes": Out(params.tdc_bits).array(params.cols),
            "wb_en": In(1),
            "wb_group": In(range(params.post_groups)),
            "wb_codes": In(params.tdc_bits * params.post_lanes),
            "effective_code_max": Out(params.tdc_bits),
        })

    def elaborate(self, platform):
        m = Module()
        p = self._p
        bits = p.tdc_bits

        # Synchroniser chains, always running: the comparator is asynchronous to clk.
        stages = [Signal(p.cols, name=f"sync{k}") for k in range(p.sync_stages)]
        m.d.sync += stages[0].eq(self.cmp)
        for a, b in zip(stages, stages[1:]):
            m.d.sync += b.eq(a)
        seen = stages[-1]

        # Registered: a function of a register, needed from the first EVAL cycle (at least two
        # cycles after any write), and it keeps a compare chain out of the post-processing path.
        cmax = Signal(bits, init=p.code_max)
        if p.tdc_bits < 16:
            m.d.sync += cmax.eq(Mux(self.code_max > p.code_max, p.code_max, self.code_max))
        else:  # the 16-bit register cannot exceed a 16-bit counter
            m.d.sync += cmax.eq(self.code_max)
        m.d.comb += self.effective_code_max.eq(cmax)
        step = Signal(8)
        m.d.comb += step.eq(Mux(self.step == 0, 1, self.step))

        elapsed = Signal(16)
        code = Signal(bits)
        prescale = Signal(8)
        # One vector for all columns' capture flags: an event-driven simulator then updates one
        # register per cycle instead of one per column (the codes stay one register per column,
        # so that a capture wakes only its own column's update).
        captured = Signal(p.cols)
        newly = Signal(p.cols)      # columns captured at this edge
        codes = [Signal(bits, name=f"code{j}") for j in range(p.cols)]

        with m.If(self.clear):
            m.d.sync += [elapsed.eq(0), code.eq(0), prescale.eq(0), captured.eq(0)]
        with m.Elif(self.run):
            m.d.sync += elapsed.eq(elapsed + 1)
            # The code counter tracks code(e) = clamp((e - window) // step, 0, cmax) for the
            # current elapsed value e; it is updated for e + 1 here.
            with m.If(elapsed >= self.window):
                with m.If(prescale + 1 == step):
                    m.d.sync += prescale.eq(0)
                    with m.If(code < cmax):
                        m.d.sync += code.eq(code + 1)
                with m.Else():
                    m.d.sync += prescale.eq(prescale + 1)
            with m.Else():
                m.d.sync += [code.eq(0), prescale.eq(0)]
            m.d.sync += captured.eq(captured | seen)
        m.d.comb += newly.eq(Mux(self.run & ~self.clear, seen & ~captured, 0))
        # Capture: a column's code register loads the code counter in the cycle its flag in
        # `newly` is set. Written as "while any column of the post-processing group is new,
        # each of them loads Mux(new, code, itself)": the same registers and enables in
        # hardware (synthesis turns the feedback into the enable), but the simulation guard of
        # rtl/verilog_opt.py is then one test of the group's four flags instead of a
        # bit-select per column, re-evaluated at every change of `newly` (3 % of Icarus' work
        # per batch operation).
        for g0 in range(0, p.cols, p.post_lanes):
            lanes = range(g0, min(g0 + p.post_lanes, p.cols))
            with m.If(newly[g0:lanes[-1] + 1].any()):
                for j in lanes:
                    m.d.sync += codes[j].eq(Mux(newly[j], code, codes[j]))

        # One decoded write enable per group, shared by its columns: event-driven simulators
        # then compare wb_group with each group once, not once per column. The compute
        # sequencer decodes the same enables for ACT; taking them from it as 16 ports instead
        # cost Icarus 3 % more per operation (a port is one more net to propagate through).
        wb_hit = [Signal(name=f"wb_hit{g}") for g in range(p.post_groups)]
        for g in range(p.post_groups):
            m.d.comb += wb_hit[g].eq(self.wb_en & (self.wb_group == g))
        for j in range(p.cols):
            with m.If(wb_hit[j // p.post_lanes]):
                m.d.sync += codes[j].eq(self.wb_codes.word_select(j % p.post_lanes, bits))

        m.d.comb += self.finished.eq(self.run & (((captured | seen).all()) | (elapsed == self.timeout)))
        m.d.comb += self.timed_out.eq(~captured)
        for j in range(p.cols):
            m.d.comb += self.captured_codes[j].eq(codes[j])
        return m
