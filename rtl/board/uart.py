"""8N1 UART receiver and transmitter with a fixed clock divider."""

from amaranth import Module, Signal, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def check_divisor(divisor) -> int:
    """Clock cycles per bit: an integer of at least 4 (the receiver samples mid-bit).

    Raises
    ------
    TypeError
        If ``divisor`` is not an integer.
    ValueError
        If it is smaller than 4.
    """
    if isinstance(divisor, bool) or not isinstance(divisor, int):
        raise TypeError(f"divisor must be an integer number of clock cycles per bit, not {divisor!r}")
    if divisor < 4:
        raise ValueError(f"divisor must be at least 4 clock cycles per bit, not {divisor}")
    return divisor


class UartRx(wiring.Component):
    """UART receiver, 8 data bits, no parity, one stop bit.

    The line passes a two-flop synchroniser (it is asynchronous to ``clk``). A falling edge
    starts a character; each bit is sampled in the middle of its period. A character whose stop
    bit reads 0 (framing error, or a break) is dropped rather than delivered.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, ``round(clk_hz / baud)``, at least 4.

    Attributes
    ----------
    rx : In(1)
        Serial line (idle high).
    data : Out(8)
        Received byte, valid with ``valid``.
    valid : Out(1)
        One-cycle strobe per received byte.
    """

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        sync0 = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [sync0.eq(self.rx), line.eq(sync0)]

        timer = Signal(range(d + d // 2 + 1))
        bits = Signal(range(10))
        shreg = Signal(8)
        with m.FSM(name="uart_rx"):
            with m.State("IDLE"):
                with m.If(~line):
                    # First sample lands in the middle of data bit 0: one and a half periods on.
                    m.d.sync += [timer.eq(d + d // 2 - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), shreg.eq(Cat(shreg[1:], line)), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(line):
                        m.d.comb += self.valid.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        m.d.comb += self.data.eq(shreg)
        return m


class UartTx(wiring.Component):
    """UART transmitter, 8N1.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Attributes
    ----------
    data : In(8)
        Byte to send, taken when ``valid & ready``.
    valid : In(1)
        A byte is offered.
    ready : Out(1)
        The transmitter is idle and takes the byte offered.
    tx : Out(1)
        Serial line (idle high).
    """

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"data": In(8), "valid": In(1), "ready": Out(1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        # Start bit, 8 data bits, stop bit, shifted out LSB first; the line rests at 1.
        shreg = Signal(10, init=0x3FF)
        left = Signal(range(11))
        m.d.comb += [self.ready.eq(left == 0), self.tx.eq(shreg[0])]
        with m.If(left == 0):
            with m.If(self.valid):
                m.d.sync += [shreg.eq(Cat(0, self.data, 1)), left.eq(10), timer.eq(d - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), left.eq(left - 1), timer.eq(d - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m
