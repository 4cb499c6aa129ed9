"""UART to AXI4-Lite bridge: the host's register access over a serial line.

Speaks the framed protocol of :mod:`rtl.board.protocol` (docs/fpga.md): one read or write word
per frame, answered with the AXI response code.
"""

from amaranth import Module, Signal, Cat, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.axi_lite import AxiLiteSignature

from .protocol import (CMD_READ, CMD_WRITE, PROTOCOL_ADDR_BITS, RESP_DECERR, RSP_READ, RSP_WRITE)
from .uart import UartRx, UartTx, check_divisor


class UartAxiBridge(wiring.Component):
    """AXI4-Lite master driven by request frames from a UART; answers with response frames.

    Transactions are strictly one at a time: the response to a request is sent before the next
    request is parsed, and the UART receiver has no FIFO, so a host must wait for each response
    (the protocol has no pipelining). The AXI master holds AWVALID/WVALID/ARVALID until the slave
    accepts them and waits for B or R, so any compliant slave works; the controller answers every
    address, so the bridge never waits forever.

    Parameters
    ----------
    addr_bits : int
        Byte address width of the AXI4-Lite bus (12 for ``mram_cim``), 3 to 16.
    divisor : int
        Clock cycles per UART bit, ``round(clk_hz / baud)``, at least 4.
    frame_timeout_cycles : int
        Largest gap between two bytes of one request, in clock cycles; after a longer gap the
        partial request is dropped. Default: 64 bit periods (well above any gap a USB-serial
        adapter inserts inside a short frame, far below a human's patience).

    Attributes
    ----------
    rx : In(1)
        UART line from the host.
    tx : Out(1)
        UART line to the host.
    bus : Out(AxiLiteSignature)
        AXI4-Lite master port.
    """

    def __init__(self, addr_bits: int, divisor: int, frame_timeout_cycles: int | None = None):
        if isinstance(addr_bits, bool) or not isinstance(addr_bits, int):
            raise TypeError(f"addr_bits must be an integer, not {addr_bits!r}")
        if not 3 <= addr_bits <= PROTOCOL_ADDR_BITS:
            raise ValueError(f"addr_bits must be between 3 and {PROTOCOL_ADDR_BITS}, not {addr_bits}")
        self.divisor = check_divisor(divisor)
        if frame_timeout_cycles is None:
            frame_timeout_cycles = 64 * divisor
        if isinstance(frame_timeout_cycles, bool) or not isinstance(frame_timeout_cycles, int):
            raise TypeError(f"frame_timeout_cycles must be an integer, not {frame_timeout_cycles!r}")
        if frame_timeout_cycles < 11 * divisor:
            # Shorter than one character: every request would time out between its bytes.
            raise ValueError(f"frame_timeout_cycles must be at least one character (11 * divisor = "
                             f"{11 * divisor}), not {frame_timeout_cycles}")
        self.addr_bits = addr_bits
        self.frame_timeout_cycles = frame_timeout_cycles
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "bus": Out(AxiLiteSignature(addr_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.urx = urx = UartRx(self.divisor)
        m.submodules.utx = utx = UartTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        bus = self.bus

        cmd_write = Signal()
        addr = Signal(PROTOCOL_ADDR_BITS)
        wdata = Signal(32)
        count = Signal(range(8))        # bytes of the current request received so far
        resp = Signal(2)
        rdata = Signal(32)
        out = Signal(range(8))          # response bytes sent so far
        gap = Signal(range(self.frame_timeout_cycles + 1))

        # Address checks: unaligned or beyond the bus is DECERR without a bus access.
        addr_ok = Signal()
        m.d.comb += addr_ok.eq((addr[:2] == 0) & (addr[self.addr_bits:] == 0))
        m.d.comb += [
            bus.awaddr.eq(addr[:self.addr_bits]), bus.araddr.eq(addr[:self.addr_bits]),
            bus.wdata.eq(wdata), bus.wstrb.eq(0xF),
            bus.awprot.eq(0), bus.arprot.eq(0),
        ]
        aw_done = Signal()
        w_done = Signal()

        # Response frame, one byte per index; its length follows the request kind.
        frame = [Const(RSP_READ, 8), Cat(resp, Const(0, 6))] + [rdata[8 * k:8 * k + 8] for k in range(4)]
        resp_len = Signal(range(8))
        m.d.comb += resp_len.eq(2 + (~cmd_write) * 4)

        with m.FSM(name="bridge"):
            with m.State("CMD"):
                with m.If(urx.valid):
                    with m.If(urx.data == CMD_READ):
                        m.d.sync += [cmd_write.eq(0), count.eq(1), gap.eq(0)]
                        m.next = "ARGS"
                    with m.Elif(urx.data == CMD_WRITE):
                        m.d.sync += [cmd_write.eq(1), count.eq(1), gap.eq(0)]
                        m.next = "ARGS"
                    # Any other byte is dropped: the host is resynchronising.
            with m.State("ARGS"):
                with m.If(urx.valid):
                    m.d.sync += [count.eq(count + 1), gap.eq(0)]
                    with m.Switch(count):
                        for k in range(1, 7):
                            with m.Case(k):
                                field = addr.word_select(k - 1, 8) if k <= 2 else wdata.word_select(k - 3, 8)
                                m.d.sync += field.eq(urx.data)
                    # The last byte: index 2 of a read request, 6 of a write request.
                    with m.If((cmd_write & (count == 6)) | (~cmd_write & (count == 2))):
                        m.next = "CHECK"
                with m.Elif(gap == self.frame_timeout_cycles):
                    m.next = "CMD"
                with m.Else():
                    m.d.sync += gap.eq(gap + 1)
            with m.State("CHECK"):
                m.d.sync += [rdata.eq(0), aw_done.eq(0), w_done.eq(0)]
                with m.If(~addr_ok):
                    m.d.sync += resp.eq(RESP_DECERR)
                    m.next = "RESPOND"
                with m.Elif(cmd_write):
                    m.next = "WRITE"
                with m.Else():
                    m.next = "READ"
            with m.State("WRITE"):
                m.d.comb += [bus.awvalid.eq(~aw_done), bus.wvalid.eq(~w_done), bus.bready.eq(aw_done & w_done)]
                with m.If(bus.awvalid & bus.awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(bus.wvalid & bus.wready):
                    m.d.sync += w_done.eq(1)
                with m.If(aw_done & w_done & bus.bvalid):
                    m.d.sync += resp.eq(bus.bresp)
                    m.next = "RESPOND"
            with m.State("READ"):
                m.d.comb += [bus.arvalid.eq(~aw_done), bus.rready.eq(aw_done)]
                with m.If(bus.arvalid & bus.arready):
                    m.d.sync += aw_done.eq(1)
                with m.If(aw_done & bus.rvalid):
                    m.d.sync += [resp.eq(bus.rresp), rdata.eq(bus.rdata)]
                    m.next = "RESPOND"
            with m.State("RESPOND"):
                m.d.sync += out.eq(0)
                m.next = "SEND"
            with m.State("SEND"):
                byte = Signal(8)
                with m.Switch(out):
                    for k, value in enumerate(frame):
                        with m.Case(k):
                            m.d.comb += byte.eq(value)
                with m.If(cmd_write & (out == 0)):
                    m.d.comb += byte.eq(RSP_WRITE)
                m.d.comb += [utx.data.eq(byte), utx.valid.eq(1)]
                with m.If(utx.ready):
                    m.d.sync += out.eq(out + 1)
                    with m.If(out + 1 == resp_len):
                        m.next = "CMD"
        return m
