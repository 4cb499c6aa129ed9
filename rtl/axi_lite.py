"""AXI4-Lite slave that turns bus transactions into single-cycle register accesses."""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

RESP_OKAY = 0b00
RESP_SLVERR = 0b10


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite bus, seen from the master.

    Parameters
    ----------
    addr_bits : int
        Byte address width.
    data_bits : int
        Data width, 32 or 64.
    """

    def __init__(self, addr_bits: int, data_bits: int = 32):
        if not isinstance(addr_bits, int) or addr_bits < 3:
            raise ValueError(f"addr_bits must be an integer of at least 3, not {addr_bits!r}")
        if data_bits not in (32, 64):
            raise ValueError(f"AXI4-Lite data width must be 32 or 64, not {data_bits!r}")
        super().__init__({
            "awaddr": Out(addr_bits), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_bits), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_bits), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })


class RegPortSignature(wiring.Signature):
    """Register access port between the bus slave and the register file (master view).

    A write is one cycle of ``w_stb`` with ``w_addr`` (word index), ``w_data`` and ``w_strb``;
    the register file answers ``w_err`` in the same cycle. A read is taken in the cycle of
    ``r_stb`` with ``r_addr`` (a queue register pops then); ``r_err`` answers combinationally in
    that cycle, ``r_data`` from the next cycle until the next ``r_stb`` (the register file
    registers its read multiplexer, and block RAM answers a cycle late anyway). ``r_wait`` asks
    the slave not to take the read yet (a queue register that will have a word shortly); the
    slave then holds ARREADY low. ``hold`` asks for no access at all (the register file is busy
    for a few cycles after reset); the slave then holds AWREADY, WREADY and ARREADY low.
    """

    def __init__(self, word_addr_bits: int, data_bits: int = 32):
        super().__init__({
            "w_stb": Out(1), "w_addr": Out(word_addr_bits), "w_data": Out(data_bits),
            "w_strb": Out(data_bits // 8), "w_err": In(1),
            "r_stb": Out(1), "r_addr": Out(word_addr_bits), "r_data": In(data_bits), "r_err": In(1),
            "r_wait": In(1), "hold": In(1),
        })


class AxiLiteSlave(wiring.Component):
    """AXI4-Lite slave with independent write-address and write-data channels.

    The write address and data are accepted in either order or together into holding
    registers; the register write happens in the cycle after both are held, when the
    write-response slot is free (or being emptied), with BVALID the cycle after. A holding
    register takes its next address or data in the cycle its current one is written, so a
    master that keeps BREADY high can write every cycle, and one that back-pressures B simply
    stalls further writes. A read passes two stages: the cycle its address is accepted (the register
    file registers the word), and the next, when the word moves into RDATA; RVALID rises two
    cycles after ARREADY and holds until ``rready``. With RREADY high a new read is accepted
    every cycle. Every address gets a response (SLVERR where the register file says so), so
    the bus cannot hang.

    Parameters
    ----------
    addr_bits : int
        Byte address width of the bus.

    Attributes
    ----------
    bus : In(AxiLiteSignature)
        The AXI4-Lite slave port.
    regs : Out(RegPortSignature)
        Register accesses towards the register file.
    """

    def __init__(self, addr_bits: int):
        self._addr_bits = addr_bits
        super().__init__({
            "bus": In(AxiLiteSignature(addr_bits)),
            "regs": Out(RegPortSignature(addr_bits - 2)),
        })

    def elaborate(self, platform):
        m = Module()
        bus, regs = self.bus, self.regs

        # A channel's holding register keeps an address or data that arrived before its partner.
        aw_held = Signal()
        aw_addr = Signal(self._addr_bits - 2)
        w_held = Signal()
        w_data = Signal(32)
        w_strb = Signal(4)

        r_pend, r_pend_err = Signal(), Signal()   # read stage 1 (see below)
        take = Signal()
        # Writes go through the holding registers only: the register file decodes an address
        # that comes from a flip-flop, not from the master's handshake (100 MHz on an ECP5).
        # A holding register takes a new address or data in the cycle its current one is
        # written, so a master that keeps BREADY high still writes every cycle.
        b_free = ~bus.bvalid | bus.bready
        do_write = aw_held & w_held & b_free & ~regs.hold
        m.d.comb += [
            bus.awready.eq(~aw_held | do_write),
            bus.wready.eq(~w_held | do_write),
            # A new read is taken whenever read stage 1 is free at the next edge, so a
            # master that keeps RREADY high gets one read per cycle; a register that cannot
            # answer yet (r_wait, bounded by the running command) holds it off.
            bus.arready.eq((~r_pend | ~bus.rvalid | bus.rready) & ~regs.r_wait & ~regs.hold),
        ]
        m.d.comb += [
            regs.w_stb.eq(do_write),
            regs.w_addr.eq(aw_addr),
            regs.w_data.eq(w_data),
            regs.w_strb.eq(w_strb),
        ]
        with m.If(do_write):
            m.d.sync += [aw_held.eq(0), w_held.eq(0), bus.bvalid.eq(1),
                         bus.bresp.eq(regs.w_err.replicate(2) & RESP_SLVERR)]
        with m.Elif(bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_held.eq(1), aw_addr.eq(bus.awaddr[2:])]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_held.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]

        # Read pipeline: stage 1 holds a taken read while the register file produces its word;
        # it moves into the R channel when that slot is free at the next edge.
        r_free = ~bus.rvalid | bus.rready
        advance = r_pend & r_free
        m.d.comb += [
            take.eq(bus.arvalid & bus.arready),
            regs.r_addr.eq(bus.araddr[2:]), regs.r_stb.eq(take),
        ]
        with m.If(advance):
            m.d.sync += [
                bus.rvalid.eq(1),
                bus.rdata.eq(regs.r_data),
                bus.rresp.eq(r_pend_err.replicate(2) & RESP_SLVERR),
            ]
        with m.Elif(bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(take):
            m.d.sync += [r_pend.eq(1), r_pend_err.eq(regs.r_err)]
        with m.Elif(advance):
            m.d.sync += r_pend.eq(0)
        return m
