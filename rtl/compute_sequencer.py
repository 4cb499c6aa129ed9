"""Compute sequencer: one evaluation of the array and the per-column post-processing."""

from amaranth import Cat, Module, Signal, Mux, signed
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
    PRECHARGE drops ``evaluate`` for ``precharge_cycles + sync_stages + 1`` cycles (the recovery
    time plus a synchroniser flush); then the corrected codes, activation bits and timeout mask
    are published and ``done`` pulses.

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
    offsets : In(signed(16)).array(cols)
        Per-column code offsets.
    thresholds : In(16).array(cols)
        Per-column activation thresholds.
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
        Published corrected codes.
    act, tmo : Out(cols)
        Published activation bits and timeout mask.
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
            "offsets": In(signed(16)).array(c),
            "thresholds": In(16).array(c),
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

        # Post-processing of the captured codes (combinational, registered on publish).
        cmax = tdc.effective_code_max
        # Per-column signals, not packed vectors (see Tdc.raw_codes).
        corrected = [Signal(p.tdc_bits, name=f"corrected{j}") for j in range(p.cols)]
        act = [Signal(name=f"act{j}") for j in range(p.cols)]
        for j in range(p.cols):
            total = Signal(signed(18), name=f"sum{j}")
            m.d.comb += total.eq(tdc.raw_codes[j] + self.offsets[j])
            m.d.comb += corrected[j].eq(Mux(total < 0, 0, Mux(total > cmax, cmax, total)))
            m.d.comb += act[j].eq((corrected[j] <= self.thresholds[j]) & ~tdc.timed_out[j])

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
                    m.d.sync += [self.evaluate.eq(0),
                                 recovery.eq(self.precharge_cycles + p.sync_stages)]
                    m.next = "PRECHARGE"
            with m.State("PRECHARGE"):
                m.d.comb += [self.state.eq(COMPUTE_STATE_CODES["PRECHARGE"]), self.busy.eq(1)]
                with m.If(recovery == 0):
                    m.d.sync += [self.act.eq(Cat(*act)), self.tmo.eq(tdc.timed_out)]
                    m.d.sync += [self.codes[j].eq(corrected[j]) for j in range(p.cols)]
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += recovery.eq(recovery - 1)
        return m
