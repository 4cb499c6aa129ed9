"""Batch queue: many input vectors in, one COMPUTE_BATCH, one completion, results out."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from macro_spec.params import BUS_DATA_BITS, PACKED_CODE_BITS, MacroParams


class BatchQueue(wiring.Component):
    """Input-vector queue, the sequencing of one compute per vector, and the result queue.

    The host appends input vectors word by word (BATCH_IN, ``row_words`` words a vector), starts
    COMPUTE_BATCH, waits for the one completion and pops the results word by word (BATCH_OUT,
    ``result_words`` words a vector: CODE, ACT, TMO as the registers of the same names show
    them). Between two computes the queue spends one cycle storing the published result, and
    starts the next compute in that same cycle.

    Results can be read while the batch runs: a BATCH_OUT read that finds no word yet is held
    off (``wait``, the bus slave keeps ARREADY low) until the next result is stored, so a host
    that issues all its reads right after the command streams the results out while the
    remaining vectors compute. The wait is bounded by one compute, which the TDC timeout bounds.

    Both queues are memories (block RAM on an FPGA): the input queue ``batch_depth`` x ``rows``
    bits, the result queue ``batch_depth`` x ``32 * result_words`` bits. A batch consumes the
    whole input queue, so both fill from address 0 and need no wrap-around: starting a batch
    empties the result queue (unread results of the previous batch are discarded) and its end
    empties the input queue.

    The top level keeps pushes and starts away while anything is busy, and pops while another
    command runs (FLAGS.REFUSED), and starts a batch only with at least one complete vector
    queued and no partial one.

    Parameters
    ----------
    params : MacroParams
        Geometry and ``batch_depth`` (at least 1).

    Attributes
    ----------
    push : In(1)
        BATCH_IN write strobe (data ``push_data``).
    pop : In(1)
        BATCH_OUT read taken by the bus.
    wait : Out(1)
        Hold BATCH_OUT reads off: the batch runs and no result word is ready.
    start : In(1)
        Accepted COMPUTE_BATCH.
    comp_done : In(1)
        The compute sequencer published a result (in the registers from the next cycle).
    result : In(32).array(result_words)
        The published result, word by word as BATCH_OUT returns it: CODE words, ACT, TMO. The
        result queue is one memory per word, so no signal ever holds the whole result: an
        event-driven simulator then updates one 32-bit word when a code changes, not a
        640-bit vector.
    pack : In(1)
        Pack the codes of the results of a batch started now (CTRL.PACK_CODES, allowed only
        while the codes cannot exceed 15; the top level checks that).
    packed : Out(1)
        The results in the queue are packed (``pack`` as the batch started): BATCH_OUT then
        returns ``packed_result_words`` words per result, the codes :data:`PACKED_CODE_BITS`
        bits each, then ACT and TMO. The result memories hold the same words either way;
        the packed code words are put together from them as they are read.
    x : Out(rows)
        Input vector for the compute being started.
    comp_start : Out(1)
        Starts one compute.
    active : Out(1)
        A batch is running.
    done : Out(1)
        One-cycle pulse: the last result of the batch is stored.
    out_word : Out(32)
        The word BATCH_OUT returns now (0 when the result queue is empty).
    overflow, underflow : Out(1)
        Events: a push found the input queue full (dropped); a pop found no result.
    can_start : Out(1)
        At least one complete vector queued and no partial one.
    in_level, in_words, out_level, out_word_index : Out
        BATCH_STATUS fields.
    """

    def __init__(self, params: MacroParams):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        if params.batch_depth < 1:
            raise ValueError("a BatchQueue needs batch_depth >= 1")
        self._p = params
        super().__init__({
            "push": In(1), "push_data": In(BUS_DATA_BITS), "pop": In(1), "start": In(1), "pack": In(1),
            "packed": Out(1),
            "comp_done": In(1), "result": In(BUS_DATA_BITS).array(params.result_words),
            "x": Out(params.rows), "comp_start": Out(1), "active": Out(1), "done": Out(1), "wait": Out(1),
            "out_word": Out(BUS_DATA_BITS), "overflow": Out(1), "underflow": Out(1),
            "can_start": Out(1),
            "in_level": Out(8), "in_words": Out(3), "out_level": Out(8), "out_word_index": Out(7),
        })

    def elaborate(self, platform):
        m = Module()
        p = self._p
        depth = p.batch_depth
        m.submodules.in_mem = in_mem = Memory(shape=p.rows, depth=depth, init=[])
        in_wr = in_mem.write_port()
        in_rd = in_mem.read_port(domain="comb")
        out_wr, out_rd = [], []
        for w in range(p.result_words):
            mem = Memory(shape=BUS_DATA_BITS, depth=depth, init=[])
            m.submodules[f"out_mem{w}"] = mem
            out_wr.append(mem.write_port())
            out_rd.append(mem.read_port(domain="comb"))

        in_level = Signal(range(depth + 1))
        in_words = Signal(range(max(p.row_words, 2)))
        partial = [Signal(BUS_DATA_BITS, name=f"partial{w}") for w in range(p.row_words - 1)]
        out_level = Signal(range(depth + 1))   # results stored and not yet read out completely
        stored = Signal(range(depth + 1))      # results stored by this batch (write address)
        out_index = Signal(range(depth))
        out_word_index = Signal(range(max(p.result_words, 2)))
        issue = Signal(range(depth + 1))   # next queued vector to compute

        m.d.comb += [
            self.in_level.eq(in_level), self.in_words.eq(in_words),
            self.out_level.eq(out_level), self.out_word_index.eq(out_word_index),
            self.can_start.eq((in_level != 0) & (in_words == 0)),
        ]

        # Input side: assemble a vector from its words, store it whole.
        m.d.comb += [in_wr.addr.eq(in_level),
                     in_wr.data.eq(Cat(*partial, self.push_data)[:p.rows])]
        with m.If(self.push):
            with m.If(in_level == depth):
                m.d.comb += self.overflow.eq(1)
            with m.Elif(in_words == p.row_words - 1):
                m.d.comb += in_wr.en.eq(1)
                m.d.sync += [in_level.eq(in_level + 1), in_words.eq(0)]
            with m.Else():
                for w, word in enumerate(partial):
                    with m.If(in_words == w):
                        m.d.sync += word.eq(self.push_data)
                m.d.sync += in_words.eq(in_words + 1)

        # Output side: the word under the read pointer; a pop advances it. A store and the pop
        # that finishes a result may fall in the same cycle: the level takes both.
        store, popped = Signal(), Signal()
        m.d.comb += [rd.addr.eq(out_index) for rd in out_rd]
        cw, pcw = p.code_words, p.packed_code_words
        # A packed code word takes the low PACKED_CODE_BITS of every code of `per` CODE words.
        fb, per = p.code_field_bits, BUS_DATA_BITS // (p.codes_per_word * PACKED_CODE_BITS)

        def packed_word(w):
            return Cat(*(out_rd[k].data.word_select(i, fb)[:PACKED_CODE_BITS]
                         for k in range(w * per, min((w + 1) * per, cw)) for i in range(p.codes_per_word)))

        with m.If(out_level != 0):
            with m.If(self.packed):
                with m.Switch(out_word_index):
                    for w in range(p.packed_result_words):
                        with m.Case(w):
                            m.d.comb += self.out_word.eq(packed_word(w) if w < pcw else
                                                         out_rd[w - pcw + cw].data)
            with m.Else():
                with m.Switch(out_word_index):
                    for w, rd in enumerate(out_rd):
                        with m.Case(w):
                            m.d.comb += self.out_word.eq(rd.data)
        last_word = Mux(self.packed, p.packed_result_words - 1, p.result_words - 1)
        with m.If(self.pop):
            with m.If(out_level == 0):
                m.d.comb += self.underflow.eq(1)
            with m.Elif(out_word_index == last_word):
                m.d.comb += popped.eq(1)
                m.d.sync += [out_word_index.eq(0), out_index.eq(out_index + 1)]
            with m.Else():
                m.d.sync += out_word_index.eq(out_word_index + 1)
        with m.If(store & ~popped):
            m.d.sync += out_level.eq(out_level + 1)
        with m.Elif(popped & ~store):
            m.d.sync += out_level.eq(out_level - 1)
        m.d.comb += self.wait.eq(self.active & (out_level == 0))

        # Sequencing: one compute per queued vector.
        m.d.comb += [in_rd.addr.eq(issue), self.x.eq(in_rd.data)]
        for wr, word in zip(out_wr, self.result):
            m.d.comb += [wr.addr.eq(stored), wr.data.eq(word), wr.en.eq(store)]
        with m.FSM(name="batch"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [issue.eq(0), stored.eq(0), out_level.eq(0), out_index.eq(0),
                                 out_word_index.eq(0), self.packed.eq(self.pack)]
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += [self.active.eq(1), self.comp_start.eq(1)]
                m.d.sync += issue.eq(issue + 1)
                m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.active.eq(1)
                with m.If(self.comp_done):
                    m.next = "STORE"
            with m.State("STORE"):
                # The result registers hold this vector's result now; keep it, start the next.
                m.d.comb += [self.active.eq(1), store.eq(1)]
                m.d.sync += stored.eq(stored + 1)
                with m.If(issue == in_level):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += in_level.eq(0)
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.comp_start.eq(1)
                    m.d.sync += issue.eq(issue + 1)
                    m.next = "WAIT"
        return m
