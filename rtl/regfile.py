"""Register file generated from the register map in :mod:`macro_spec.regmap`."""

from amaranth import Module, ResetSignal, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from macro_spec.params import MacroParams
from macro_spec.regmap import ADDR_BITS, REGISTERS, Register

from .axi_lite import RegPortSignature


def _bit_runs(mask: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """Runs ``(start, stop)`` of consecutive set bits of ``mask`` within bits ``lo .. hi - 1``."""
    runs, start = [], None
    for b in range(lo, hi + 1):
        if b < hi and (mask >> b) & 1:
            start = b if start is None else start
        elif start is not None:
            runs.append((start, b))
            start = None
    return runs


def _member(r: Register) -> str:
    return r.name.lower()


def _read_mask(r: Register) -> int:
    """Bits of a register word that its fields cover (the rest read 0)."""
    mask = 0
    for f in r.fields:
        mask |= f.mask
    return mask


class RegFile(wiring.Component):
    """Address decoder and storage for every register of the map.

    The ports are generated from the register map, one per register (an array of ports for a
    window):

    - ``rw_<name>``: Out, the stored value of a read/write register;
    - ``ro_<name>``: In, the value a read-only or write-1-to-clear register reads back;
    - ``wo_<name>``: Out, a one-cycle strobe when a write-only register is written
      (its data is ``wdata``);
    - ``w1c_<name>``: Out, for one cycle the bits a write asks to clear;
    - ``pop_<name>``: Out, a one-cycle strobe when the bus takes a read of a queue register
      (``pops``), the cycle its current value is returned;
    - ``wait_<name>``: In, for a queue register: hold reads of it off (no word yet, one coming);
    - ``ram_addr_<name>`` (In) and ``ram_data_<name>`` (Out): for a window held in a memory
      (``ram``), the hardware's read port. The memory holds ``post_lanes`` registers to a word
      (register ``j`` in lane ``j % post_lanes`` of word ``j // post_lanes``, each lane as wide
      as the register's fields); ``ram_data`` is the word at the ``ram_addr`` of the previous
      cycle (a synchronous block-RAM read).

    Constant registers (ID, VERSION, CAPS) read their reset value and need no port.

    The memory windows are cleared after ``rst`` like every other register, one memory word
    per cycle for ``post_groups`` cycles, during which ``regs.hold`` keeps the bus waiting.

    Reads are registered: the word addressed in the cycle of ``r_stb`` is on ``r_data`` from
    the next cycle until the next ``r_stb`` (a memory window reads its block RAM in that cycle),
    so the wide read multiplexer ends in a register instead of running into the bus slave's.

    A read-only window named in ``indexed`` is read through one port instead, like a memory:
    ``index_<name>`` (Out) is the word index the bus addresses and ``index_stb_<name>`` (Out)
    marks the cycle the bus takes a read of the window; the source then shows that word on
    ``ro_<name>`` (In, 32) from the next cycle until the next strobe. So the source multiplexes
    the window itself (CODE: through the post-processing lanes, which already select a group of
    columns) and the register file's read multiplexer never sees it.

    Parameters
    ----------
    params : MacroParams
        Geometry, which sizes the windows and sets reset values.
    indexed : iterable of str
        Read-only windows read through an index port (see above).

    Attributes
    ----------
    regs : In(RegPortSignature)
        Accesses from the bus slave.
    wdata : Out(32)
        Write data of the current write, byte strobes applied.
    """

    def __init__(self, params: MacroParams, indexed=()):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        self._params = params
        self._indexed = frozenset(indexed)
        for name in self._indexed:
            r = next((r for r in REGISTERS if r.name == name), None)
            if r is None or r.access != "RO" or not r.is_window or r.pops:
                raise ValueError(f"{name!r} is not a read-only window that can be read through an index port")
        members = {"regs": In(RegPortSignature(ADDR_BITS - 2)), "wdata": Out(32)}
        for r in REGISTERS:
            n = r.words(params)
            if r.const:
                continue
            if r.name in self._indexed:
                members["ro_" + _member(r)] = In(32)
                members["index_" + _member(r)] = Out(range(n))
                members["index_stb_" + _member(r)] = Out(1)
                continue
            if r.access == "RW" and r.ram:
                members["ram_addr_" + _member(r)] = In(range(params.post_groups))
                members["ram_data_" + _member(r)] = Out(r.writable_mask.bit_length() * params.post_lanes)
            elif r.access == "RW":
                port = Out(32, init=r.reset_value(params))
                members["rw_" + _member(r)] = port.array(n) if r.is_window else port
            elif r.access == "RO":
                members["ro_" + _member(r)] = In(32).array(n) if r.is_window else In(32)
                if r.pops:
                    members["pop_" + _member(r)] = Out(1)
                    members["wait_" + _member(r)] = In(1)
            elif r.access == "WO":
                members["wo_" + _member(r)] = Out(1)
            elif r.access == "W1C":
                members["ro_" + _member(r)] = In(32)
                members["w1c_" + _member(r)] = Out(32)
        super().__init__(members)

    def _words(self):
        """(word index, register, index in window) for every word that exists."""
        for r in REGISTERS:
            for i in range(r.words(self._params)):
                yield (r.offset >> 2) + i, r, i

    def elaborate(self, platform):
        m = Module()
        p = self._params
        regs = self.regs

        byte_mask = Cat(*(b.replicate(8) for b in regs.w_strb))
        m.d.comb += self.wdata.eq(regs.w_data & byte_mask)

        def port(prefix, r, i):
            sig = getattr(self, prefix + _member(r))
            return sig[i] if r.is_window else sig

        # Memory windows: post_lanes columns to a word (the hardware reads a group of columns
        # per cycle); one write port for the bus, one read port for the bus and one for the
        # hardware (an FPGA tool gives the second read port its own copy of the block RAM).
        lanes = p.post_lanes
        # rst clears the memory windows like every other register, one word per cycle in the
        # post_groups cycles after it (the counter itself ignores rst, so it restarts then);
        # the bus waits meanwhile (regs.hold).
        # At power-up the memories hold their zero initial contents already: nothing to clear.
        # (Both are flip-flops: hold reaches the bus handshake, which should start at a register.)
        clear_word = Signal(range(p.post_groups), reset_less=True)
        clearing = Signal(reset_less=True)
        if any(r.ram for r in REGISTERS):
            m.d.comb += regs.hold.eq(clearing)
            with m.If(ResetSignal()):
                m.d.sync += [clear_word.eq(0), clearing.eq(1)]
            with m.Elif(clearing):
                m.d.sync += clear_word.eq(clear_word + 1)
                with m.If(clear_word == p.post_groups - 1):
                    m.d.sync += clearing.eq(0)
        lane_bits = lanes.bit_length() - 1
        if lanes != 1 << lane_bits:
            raise ValueError(f"post_lanes must be a power of two, not {lanes}")
        # Words that reach r_data a cycle late, through their own path rather than the read
        # multiplexer: (in-window signal for reads, the word, valid from the cycle after r_stb).
        late = []
        ram_written = []

        def in_window(addr, r):
            base = r.offset >> 2
            return (addr >= base) & (addr < base + r.words(p))
        for r in REGISTERS:
            if not r.ram:
                continue
            n, base, width = r.words(p), r.offset >> 2, r.writable_mask.bit_length()
            if width % 8:
                raise ValueError(f"register {r.name}: a memory window needs whole bytes, not {width} bits")
            mem = Memory(shape=width * lanes, depth=-(-n // lanes), init=[])
            m.submodules["ram_" + _member(r)] = mem
            wr = mem.write_port(granularity=8)
            bus_rd = mem.read_port(domain="sync")
            hw_rd = mem.read_port(domain="sync")
            w_in = Signal(name=f"w_in_{_member(r)}")
            r_in = Signal(name=f"r_in_{_member(r)}")
            w_col = Signal(range(n), name=f"w_col_{_member(r)}")
            r_col = Signal(range(n), name=f"r_col_{_member(r)}")
            r_lane = Signal(range(lanes), name=f"r_lane_{_member(r)}")
            bytes_per_lane = width // 8
            lane_strb = regs.w_strb[:bytes_per_lane]
            m.d.comb += [
                w_in.eq(regs.w_stb & in_window(regs.w_addr, r)),
                r_in.eq(in_window(regs.r_addr, r)),
                w_col.eq(regs.w_addr - base),
                r_col.eq(regs.r_addr - base),
                wr.addr.eq(Mux(clearing, clear_word, w_col >> lane_bits)),
                wr.data.eq(Mux(clearing, 0, regs.w_data[:width].replicate(lanes))),
                wr.en.eq(Mux(clearing, (1 << len(wr.en)) - 1,
                             Mux(w_in, lane_strb << (w_col[:lane_bits] * bytes_per_lane), 0))),
                bus_rd.addr.eq(r_col >> lane_bits),
                bus_rd.en.eq(regs.r_stb & r_in),
                hw_rd.addr.eq(getattr(self, "ram_addr_" + _member(r))),
                getattr(self, "ram_data_" + _member(r)).eq(hw_rd.data),
            ]
            with m.If(regs.r_stb):
                m.d.sync += r_lane.eq(r_col[:lane_bits])
            ram_written.append(w_in)
            late.append((r_in, bus_rd.data.word_select(r_lane, width)))

        # Reads: a multiplexer over every word held in registers, registered when the bus
        # takes the read; a memory window's word comes from its read port in the next cycle.
        early = Signal(32)
        in_regs = Signal()
        for r in REGISTERS:
            if r.name in self._indexed:
                r_in = Signal(name=f"r_in_{_member(r)}")
                m.d.comb += [r_in.eq(in_window(regs.r_addr, r)),
                             getattr(self, "index_" + _member(r)).eq(regs.r_addr - (r.offset >> 2)),
                             getattr(self, "index_stb_" + _member(r)).eq(regs.r_stb & r_in)]
                late.append((r_in, getattr(self, "ro_" + _member(r)) & _read_mask(r)))
        with m.Switch(regs.r_addr):
            for word, r, i in self._words():
                if r.ram or r.name in self._indexed:
                    continue
                with m.Case(word):
                    m.d.comb += in_regs.eq(1)
                    if r.const:
                        m.d.comb += early.eq(r.reset_value(p))
                    elif r.access == "RW":
                        m.d.comb += early.eq(port("rw_", r, i))
                    elif r.access in ("RO", "W1C"):
                        m.d.comb += early.eq(port("ro_", r, i) & _read_mask(r))
                    # Write-only registers read as zero.
        m.d.comb += regs.r_err.eq(~in_regs & ~Cat(*(r_in for r_in, _ in late)).any())
        early_q = Signal(32)
        late_sel = [Signal(name=f"r_late_sel{k}") for k in range(len(late))]
        with m.If(regs.r_stb):
            m.d.sync += early_q.eq(early)
            m.d.sync += [sel.eq(r_in) for sel, (r_in, _) in zip(late_sel, late)]
        data = early_q
        for sel, (_, word) in zip(late_sel, late):
            data = data | (word & sel.replicate(len(word)))
        m.d.comb += regs.r_data.eq(data)

        # Queue registers pop when the bus takes the read, and may hold it off.
        waits = []
        for word, r, i in self._words():
            if r.pops:
                m.d.comb += port("pop_", r, i).eq(regs.r_stb & (regs.r_addr == word))
                waits.append((regs.r_addr == word) & port("wait_", r, i))
        m.d.comb += regs.r_wait.eq(Cat(*waits).any() if waits else 0)

        # Writes: merge byte lanes into RW storage; strobe WO; pass W1C clear masks.
        # One address comparison per word, each register updated under its own condition:
        # a single switch over every word would make each register's logic (and every
        # event-driven simulator's evaluation of it) depend on the whole decoder.
        accepted = list(ram_written)
        for word, r, i in self._words():
            if r.const or r.access == "RO" or r.ram:
                continue
            hit = Signal(name=f"w_hit_{r.name.lower()}_{i}")
            m.d.comb += hit.eq(regs.w_stb & (regs.w_addr == word))
            accepted.append(hit)
            if r.access == "RW":
                stored = port("rw_", r, i)
                # Each strobed byte lane loads its writable bits from the bus as they are; the
                # other bits never change (they are zero: a reset value lies within the
                # writable fields). The same gates as masking a merged word, but nothing is
                # computed from the bus data outside the register's update: an event-driven
                # simulator otherwise re-evaluated a 32-bit merge per register on every change
                # of the write data.
                with m.If(hit):
                    for lane, strobe in enumerate(regs.w_strb):
                        runs = _bit_runs(r.writable_mask, 8 * lane, 8 * lane + 8)
                        if runs:
                            with m.If(strobe):
                                m.d.sync += [stored[lo:hi].eq(regs.w_data[lo:hi]) for lo, hi in runs]
            elif r.access == "WO":
                m.d.comb += port("wo_", r, i).eq(hit)
            elif r.access == "W1C":
                with m.If(hit):
                    m.d.comb += port("w1c_", r, i).eq(self.wdata)
        # Anything written that no register took (read-only or unmapped) answers SLVERR.
        m.d.comb += regs.w_err.eq(regs.w_stb & ~Cat(*accepted).any())
        return m
