"""Write sequencer: row programming with read-back verify and retries, and row reads."""

from amaranth import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from macro_spec.params import MacroParams

#: STATUS.STATE codes of the write/read phases (compute uses 0..3).
ACCESS_STATE_CODES = {"IDLE": 0, "PULSE_A": 4, "PULSE_B": 5, "SENSE_A": 6, "SENSE_B": 7,
                      "CHECK": 8, "READ": 9}


class WriteSequencer(wiring.Component):
    """Row-wise programming as the chip did it, with verify and bounded retries.

    WRITE_ROW: one pulse writes side A of the selected columns of the row with ``W``, the next
    writes side B with ``~W``; with verify enabled both sides are sensed and only the columns
    still wrong are pulsed again, at most ``max_retries`` rounds. READ_ROW senses one side of
    one row into ``rdata``. Every phase has a register-bounded length, so nothing the array
    does can stall the sequencer. Pin timing is in docs/timing.md.

    Parameters
    ----------
    params : MacroParams
        Geometry.

    Attributes
    ----------
    start_write, start_read : In(1)
        One-cycle commands; ignored unless idle.
    cmd_row : In(7)
        Row of the command (checked by the caller).
    cmd_side : In(1)
        Side for READ_ROW.
    wdata : In(cols)
        Weights of the row, 1 = +1.
    verify : In(1)
        CTRL.VERIFY_EN.
    pulse_cycles, read_cycles : In(16)
        WRITE_PULSE and READ_PULSE (0 acts as 1).
    max_retries : In(4)
        WRITE_RETRIES.
    row, side, wr_en, wr_cols, wr_data, rd_en : Out
        Array pins.
    rd_data : In(cols)
        Array pin: sensed bits.
    busy : Out(1)
        A command is running.
    done : Out(1)
        One-cycle pulse at the end of a command.
    write_done : Out(1)
        Like ``done``, for WRITE_ROW only (qualifies ``failed``).
    failed : Out(1)
        With ``write_done``: bits left unverified.
    retry : Out(1)
        One-cycle pulse per retry round.
    rdata, fail_mask : Out(cols)
        Last READ_ROW data; failing columns of the last write.
    rounds : Out(4)
        Retry rounds used by the last write.
    state : Out(4)
        Phase code for STATUS.STATE.
    """

    def __init__(self, params: MacroParams):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        self._p = params
        c = params.cols
        super().__init__({
            "start_write": In(1), "start_read": In(1),
            "cmd_row": In(7), "cmd_side": In(1),
            "wdata": In(c), "verify": In(1),
            "pulse_cycles": In(16), "read_cycles": In(16), "max_retries": In(4),
            "row": Out(range(params.rows)), "side": Out(1),
            "wr_en": Out(1), "wr_cols": Out(c), "wr_data": Out(c),
            "rd_en": Out(1), "rd_data": In(c),
            "busy": Out(1), "done": Out(1), "write_done": Out(1), "failed": Out(1),
            "retry": Out(1),
            "rdata": Out(c), "fail_mask": Out(c), "rounds": Out(4),
            "state": Out(4),
        })

    def elaborate(self, platform):
        m = Module()
        p = self._p
        weights = Signal(p.cols)
        pending_a = Signal(p.cols)
        pending_b = Signal(p.cols)
        read_side = Signal()
        count = Signal(16)
        reading = Signal()  # the running command is READ_ROW

        pulse_len = Mux(self.pulse_cycles == 0, 1, self.pulse_cycles)
        read_len = Mux(self.read_cycles == 0, 1, self.read_cycles)

        def phase(name):
            m.d.comb += [self.state.eq(ACCESS_STATE_CODES[name]), self.busy.eq(1)]

        def pulse_states(prefix, side, data, cols, next_state):
            # PREP sets the pins, ARM keeps them stable one cycle and raises wr_en, ON counts
            # the pulse; leaving ON drops wr_en, and the next PREP (one cycle later) is the gap.
            with m.State(prefix + "_PREP"):
                phase("PULSE_A" if side == 0 else "PULSE_B")
                m.d.sync += [self.side.eq(side), self.wr_data.eq(data), self.wr_cols.eq(cols)]
                m.next = prefix + "_ARM"
            with m.State(prefix + "_ARM"):
                phase("PULSE_A" if side == 0 else "PULSE_B")
                m.d.sync += [self.wr_en.eq(1), count.eq(pulse_len - 1)]
                m.next = prefix + "_ON"
            with m.State(prefix + "_ON"):
                phase("PULSE_A" if side == 0 else "PULSE_B")
                with m.If(count == 0):
                    m.d.sync += self.wr_en.eq(0)
                    m.next = next_state
                with m.Else():
                    m.d.sync += count.eq(count - 1)

        def sense_states(prefix, side, code, store, next_state):
            # ``store(bits)``: the statements that keep the sensed bits.
            with m.State(prefix + "_PREP"):
                phase(code)
                m.d.sync += self.side.eq(side)
                m.next = prefix + "_ARM"
            with m.State(prefix + "_ARM"):
                phase(code)
                m.d.sync += [self.rd_en.eq(1), count.eq(read_len - 1)]
                m.next = prefix + "_ON"
            with m.State(prefix + "_ON"):
                phase(code)
                with m.If(count == 0):
                    # Sampled on the edge on which rd_en falls (docs/timing.md).
                    m.d.sync += [self.rd_en.eq(0), *store(self.rd_data)]
                    m.next = next_state
                with m.Else():
                    m.d.sync += count.eq(count - 1)

        with m.FSM(name="access"):
            with m.State("IDLE"):
                with m.If(self.start_write):
                    m.d.sync += [self.row.eq(self.cmd_row), weights.eq(self.wdata),
                                 pending_a.eq(~0), pending_b.eq(~0), self.rounds.eq(0),
                                 self.fail_mask.eq(0), reading.eq(0)]
                    m.next = "A_PREP"
                with m.Elif(self.start_read):
                    m.d.sync += [self.row.eq(self.cmd_row), read_side.eq(self.cmd_side),
                                 reading.eq(1)]
                    m.next = "R_PREP"

            pulse_states("A", 0, weights, pending_a, "B_SKIP")
            # In retry rounds a side with no wrong column gets no pulse.
            with m.State("B_SKIP"):
                phase("PULSE_B")
                with m.If(pending_b.any()):
                    m.next = "B_PREP"
                with m.Else():
                    m.next = "AFTER_B"
            pulse_states("B", 1, ~weights, pending_b, "AFTER_B")
            with m.State("AFTER_B"):
                phase("PULSE_B")
                with m.If(self.verify):
                    m.next = "VA_PREP"
                with m.Else():
                    m.next = "FINISH"
            # A must read low (1) where W = +1; B must read low where W = -1. The columns still
            # wrong go straight into the pending masks (the next pulses need nothing else), so
            # the sensed bits need no registers of their own.
            sense_states("VA", 0, "SENSE_A", lambda bits: [pending_a.eq(bits ^ weights)], "VB_PREP")
            sense_states("VB", 1, "SENSE_B", lambda bits: [pending_b.eq(~(bits ^ weights))], "CHECK")
            with m.State("CHECK"):
                # Nothing left to compute here; the state keeps a row write's cycle count.
                phase("CHECK")
                m.next = "DECIDE"
            with m.State("DECIDE"):
                phase("CHECK")
                with m.If(~(pending_a | pending_b).any()):
                    m.next = "FINISH"
                with m.Elif(self.rounds >= self.max_retries):
                    m.d.sync += self.fail_mask.eq(pending_a | pending_b)
                    m.next = "FINISH"
                with m.Else():
                    m.d.sync += self.rounds.eq(self.rounds + 1)
                    m.d.comb += self.retry.eq(1)
                    m.next = "RETRY_A"
            with m.State("RETRY_A"):
                phase("PULSE_A")
                with m.If(pending_a.any()):
                    m.next = "A_PREP"
                with m.Else():
                    m.next = "B_SKIP"

            sense_states("R", read_side, "READ", lambda bits: [self.rdata.eq(bits)], "FINISH")
            with m.State("FINISH"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1), self.write_done.eq(~reading),
                             self.failed.eq(self.fail_mask.any())]
                m.next = "IDLE"
        return m
