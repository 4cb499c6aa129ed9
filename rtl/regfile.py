"""Register file generated from the register map in :mod:`macro_spec.regmap`."""

from amaranth import Module, Signal, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from macro_spec.params import MacroParams
from macro_spec.regmap import ADDR_BITS, REGISTERS, Register

from .axi_lite import RegPortSignature


def _member(r: Register) -> str:
    return r.name.lower()


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
    - ``wait_<name>``: In, for a queue register: hold reads of it off (no word yet, one coming).

    Constant registers (ID, VERSION, CAPS) read their reset value and need no port.

    Parameters
    ----------
    params : MacroParams
        Geometry, which sizes the windows and sets reset values.

    Attributes
    ----------
    regs : In(RegPortSignature)
        Accesses from the bus slave.
    wdata : Out(32)
        Write data of the current write, byte strobes applied.
    """

    def __init__(self, params: MacroParams):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        self._params = params
        members = {"regs": In(RegPortSignature(ADDR_BITS - 2)), "wdata": Out(32)}
        for r in REGISTERS:
            n = r.words(params)
            if r.const:
                continue
            if r.access == "RW":
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

        # Reads: combinational mux over every existing word; anything else is SLVERR.
        with m.Switch(regs.r_addr):
            for word, r, i in self._words():
                with m.Case(word):
                    if r.const:
                        m.d.comb += regs.r_data.eq(r.reset_value(p))
                    elif r.access == "RW":
                        m.d.comb += regs.r_data.eq(port("rw_", r, i))
                    elif r.access in ("RO", "W1C"):
                        keep = 0
                        for f in r.fields:
                            keep |= f.mask
                        m.d.comb += regs.r_data.eq(port("ro_", r, i) & keep)
                    # Write-only registers read as zero.
            with m.Default():
                m.d.comb += regs.r_err.eq(1)

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
        accepted = []
        for word, r, i in self._words():
            if r.const or r.access == "RO":
                continue
            hit = Signal(name=f"w_hit_{r.name.lower()}_{i}")
            m.d.comb += hit.eq(regs.w_stb & (regs.w_addr == word))
            accepted.append(hit)
            if r.access == "RW":
                stored = port("rw_", r, i)
                with m.If(hit):
                    merged = (stored & ~byte_mask) | (regs.w_data & byte_mask)
                    m.d.sync += stored.eq(merged & r.writable_mask)
            elif r.access == "WO":
                m.d.comb += port("wo_", r, i).eq(hit)
            elif r.access == "W1C":
                with m.If(hit):
                    m.d.comb += port("w1c_", r, i).eq(self.wdata)
        # Anything written that no register took (read-only or unmapped) answers SLVERR.
        m.d.comb += regs.w_err.eq(regs.w_stb & ~Cat(*accepted).any())
        return m
