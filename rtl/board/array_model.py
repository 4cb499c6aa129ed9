"""A synthesisable digital stand-in for the MRAM array, for FPGA boards without the analog die."""

from amaranth import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from macro_spec.params import MacroParams

from rtl.array_port import ArraySignature


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        span = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ValueError(f"{name} must be {span}, not {value}")
    return value


#: Taps of the 32-bit Galois LFSR (x^32 + x^22 + x^2 + x + 1, maximal length).
LFSR_TAPS = 0x8020_0003


class ArrayStandIn(wiring.Component):
    """Digital array model answering the controller's array pins on an FPGA.

    Storage: one memory per MTJ side (``rows`` words of ``cols`` bits, block RAM on the FPGA),
    a bit 1 meaning low resistance (P), reset to all 0 (AP) like an unprogrammed die.

    Compute: when ``evaluate`` rises the model reads the array row by row (``rows`` cycles) and
    counts, per column, the mismatches ``sum_i not(x_i ? A_ij : B_ij)`` (the conducting MTJ of each
    cell is in its high state) -- the quantity the paper's series column turns into a delay.
    Column ``j`` then raises ``cmp[j]`` at clock edge

        k_j = base_cycles + mismatches_j * cycles_per_mismatch + jitter_j

    after the edge on which ``evaluate`` rose (edge 0), with ``jitter_j`` a pseudo-random integer
    in ``[0, 2**jitter_bits)`` drawn per column and evaluation from a 32-bit LFSR. The
    controller, whose comparator synchroniser has ``S`` stages, then measures
    ``d_j = k_j + S`` (docs/timing.md with ``fire_ps = k_j * T``), so with ``TDC_WINDOW =
    base_cycles + S`` and ``TDC_STEP = cycles_per_mismatch`` the code is exactly the mismatch
    count whatever the jitter (it never reaches the next step), and ``TDC_TIMEOUT`` must be at
    least ``base_cycles + S + rows * cycles_per_mismatch``. ``cmp`` clears when ``evaluate``
    falls (precharge).

    Write: a pulse (``wr_en`` high) writes ``wr_data`` into the columns selected by ``wr_cols``
    of (``row``, ``side``) when it ends; every write succeeds (no switching failures).

    Read: ``rd_data`` shows the stored bits of (``row``, ``side``) two clock cycles after ``row``
    and ``side`` settle (block-RAM read, then a register), so any READ_PULSE >= 2 samples the
    new data.

    Parameters
    ----------
    params : MacroParams
        Geometry of the controller it answers.
    base_cycles : int
        Delay of a column with no mismatch, in clock cycles; at least ``rows + 3`` because the
        row-by-row count (block-RAM read, registered row, count) must finish first. Default
        ``rows + 3``.
    cycles_per_mismatch : int
        Extra delay per mismatching cell, in clock cycles, 1 to 16.
    jitter_bits : int
        Per-column jitter of ``0 .. 2**jitter_bits - 1`` cycles; ``2**jitter_bits`` must not
        exceed ``cycles_per_mismatch`` (the code would change, and a larger jitter can never
        fire in this counter structure). 0 turns jitter off.
    lfsr_seed : int
        Non-zero initial state of the LFSR.

    Attributes
    ----------
    array : In(ArraySignature)
        The array pins, seen from the array (``x``, ``evaluate``, ... are inputs here).
    evaluations : Out(16)
        Evaluations seen since reset (wraps), for debugging on a board.
    """

    def __init__(self, params: MacroParams, base_cycles: int | None = None, cycles_per_mismatch: int = 1,
                 jitter_bits: int = 0, lfsr_seed: int = 0xACE1_2468):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        if base_cycles is None:
            base_cycles = params.rows + 3
        self.params = params
        self.base_cycles = _check_int("base_cycles", base_cycles, params.rows + 3, 60000)
        self.cycles_per_mismatch = _check_int("cycles_per_mismatch", cycles_per_mismatch, 1, 16)
        self.jitter_bits = _check_int("jitter_bits", jitter_bits, 0, 4)
        if (1 << self.jitter_bits) > self.cycles_per_mismatch and self.jitter_bits:
            raise ValueError(f"jitter_bits={jitter_bits} gives up to {(1 << jitter_bits) - 1} cycles of jitter, "
                             f"which needs cycles_per_mismatch >= {1 << jitter_bits}, not {cycles_per_mismatch}")
        self.lfsr_seed = _check_int("lfsr_seed", lfsr_seed, 1, 0xFFFF_FFFF)
        super().__init__({"array": In(ArraySignature(params)), "evaluations": Out(16)})

    def tdc_settings(self, sync_stages: int | None = None) -> dict[str, int]:
        """Register values that turn this model's delays into exact mismatch counts.

        Returns
        -------
        dict
            TDC_WINDOW, TDC_STEP, TDC_TIMEOUT and TDC_CODE_MAX.
        """
        s = self.params.sync_stages if sync_stages is None else sync_stages
        window = self.base_cycles + s
        return {"TDC_WINDOW": window, "TDC_STEP": self.cycles_per_mismatch,
                "TDC_TIMEOUT": window + (self.params.rows + 1) * self.cycles_per_mismatch,
                "TDC_CODE_MAX": min(self.params.rows, self.params.code_max)}

    def elaborate(self, platform):
        m = Module()
        p = self.params
        arr = self.array
        step = self.cycles_per_mismatch

        m.submodules.mem_a = mem_a = Memory(shape=p.cols, depth=p.rows, init=[])
        m.submodules.mem_b = mem_b = Memory(shape=p.cols, depth=p.rows, init=[])
        wp_a, wp_b = mem_a.write_port(), mem_b.write_port()
        # Transparent, so a read right after a write already sees the new bits.
        rp_a = mem_a.read_port(transparent_for=(wp_a,))
        rp_b = mem_b.read_port(transparent_for=(wp_b,))
        # Every use of the stored bits starts from these registers: a block RAM's output (about
        # 6 ns on an ECP5 without its output register) then feeds flip-flops only.
        a_q, b_q = Signal(p.cols), Signal(p.cols)
        m.d.sync += [a_q.eq(rp_a.data), b_q.eq(rp_b.data)]

        lfsr = Signal(32, init=self.lfsr_seed)
        m.d.sync += lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ LFSR_TAPS, lfsr >> 1))

        # ---- compute ----
        ev_prev = Signal()
        m.d.sync += ev_prev.eq(arr.evaluate)
        ev_rise = Signal()
        m.d.comb += ev_rise.eq(arr.evaluate & ~ev_prev)

        count_bits = (p.rows + 1).bit_length()
        counts = [Signal(count_bits, name=f"mismatches{j}") for j in range(p.cols)]
        jb = self.jitter_bits
        jitter = [Signal(max(jb, 1), name=f"jitter{j}") for j in range(p.cols)]
        scan_row = Signal(range(p.rows + 1))      # address being read
        acc_row = Signal(range(p.rows))           # row whose data the read ports show
        acc_en = Signal()
        x_bit_q = Signal()      # input bit of the row in a_q/b_q
        count_en = Signal()     # a_q/b_q hold a row to count
        t = Signal(range(self.base_cycles + 1))   # edges since evaluate rose
        sub = Signal(range(step))                 # position inside the current mismatch step
        n_step = Signal(range(p.rows + 2))        # mismatch steps elapsed in FIRE
        cmp = Signal(p.cols)
        m.d.comb += arr.cmp.eq(cmp)

        scanning = Signal()
        m.d.comb += [rp_a.addr.eq(Mux(scanning | ev_rise, scan_row, arr.row)),
                     rp_b.addr.eq(Mux(scanning | ev_rise, scan_row, arr.row))]

        with m.FSM(name="standin"):
            with m.State("IDLE"):
                m.d.sync += [scan_row.eq(0), cmp.eq(0)]
                with m.If(ev_rise):
                    m.d.sync += [scan_row.eq(1), acc_row.eq(0), acc_en.eq(1), count_en.eq(0), t.eq(1),
                                 self.evaluations.eq(self.evaluations + 1)]
                    m.d.sync += [c.eq(0) for c in counts]
                    if jb:
                        # Jitter bits of column j: a window of the LFSR state (columns more than
                        # 32 / jitter_bits apart share bits; a stand-in needs no more).
                        for j in range(p.cols):
                            m.d.sync += jitter[j].eq(lfsr.rotate_right(j * jb)[:jb])
                    m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += scanning.eq(1)
                m.d.sync += t.eq(t + 1)
                with m.If(scan_row != p.rows):
                    m.d.sync += scan_row.eq(scan_row + 1)
                m.d.sync += acc_row.eq(acc_row + 1)
                with m.If(acc_row == p.rows - 1):
                    m.d.sync += acc_en.eq(0)
                # The row the read ports show moves into a_q/b_q with its input bit; there the
                # MTJ that conducts for that input is counted.
                m.d.sync += [x_bit_q.eq(arr.x.bit_select(acc_row, 1)), count_en.eq(acc_en)]
                low = Mux(x_bit_q, a_q, b_q)
                with m.If(count_en):
                    for j in range(p.cols):
                        m.d.sync += counts[j].eq(counts[j] + ~low[j])
                # The first FIRE cycle follows edge base - 1, so a column with no mismatch and
                # no jitter fires on edge base; the counts are final by then (base >= rows + 3).
                with m.If(t == self.base_cycles - 2):
                    m.d.sync += [sub.eq(0), n_step.eq(0)]
                    m.next = "FIRE"
                with m.If(~arr.evaluate):   # precharge or abort before the count finished
                    m.next = "IDLE"
            with m.State("FIRE"):
                # In this cycle the edge index is t = base - 1 + n * step + sub; column j fires
                # on the next edge when n has reached its mismatch count and sub its jitter.
                # (One shared step counter and an equality per column: far fewer LUTs than a
                # down-counter per column.)
                wrap = Signal()
                m.d.comb += wrap.eq(sub == step - 1)
                m.d.sync += sub.eq(Mux(wrap, 0, sub + 1))
                with m.If(wrap & (n_step != p.rows + 1)):
                    m.d.sync += n_step.eq(n_step + 1)
                for j in range(p.cols):
                    hit = (counts[j] == n_step) & ((sub == jitter[j]) if jb else (sub == 0))
                    with m.If(hit):
                        m.d.sync += cmp[j].eq(1)
                # Precharge (or an abort) ends the evaluation; IDLE clears the comparators.
                with m.If(~arr.evaluate):
                    m.next = "IDLE"
        # ---- write: read-modify-write of the addressed side when the pulse ends ----
        # (row and side are stable from one cycle before the pulse, so when it ends a_q/b_q
        # hold that row's stored bits.)
        wr_prev = Signal()
        w_row = Signal(range(p.rows))
        w_side = Signal()
        w_data, w_cols = Signal(p.cols), Signal(p.cols)
        m.d.sync += wr_prev.eq(arr.wr_en)
        with m.If(arr.wr_en):
            m.d.sync += [w_row.eq(arr.row), w_side.eq(arr.side), w_data.eq(arr.wr_data), w_cols.eq(arr.wr_cols)]
        commit = wr_prev & ~arr.wr_en
        old = Mux(w_side, b_q, a_q)
        w_bits = (old & ~w_cols) | (w_data & w_cols)
        m.d.comb += [wp_a.addr.eq(w_row), wp_b.addr.eq(w_row), wp_a.data.eq(w_bits), wp_b.data.eq(w_bits),
                     wp_a.en.eq(commit & ~w_side), wp_b.en.eq(commit & w_side)]

        # ---- read: the stored bits two cycles after row and side settle ----
        m.d.comb += arr.rd_data.eq(Mux(arr.side, b_q, a_q))
        return m
