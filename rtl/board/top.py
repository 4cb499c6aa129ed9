"""Board-level top: controller + digital array stand-in + UART bridge, and FPGA platform wrappers."""

from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from macro_spec.params import MacroParams
from macro_spec.regmap import ADDR_BITS

from rtl.mram_cim import MramCim

from .array_model import ArrayStandIn
from .bridge import UartAxiBridge

#: Largest relative baud-rate error accepted (8N1 tolerates about 4 % end to end).
MAX_BAUD_ERROR = 0.02


def uart_divisor(clk_hz: int, baud: int) -> int:
    """Clock cycles per UART bit for ``clk_hz`` and ``baud``.

    Raises
    ------
    TypeError
        If either is not an integer.
    ValueError
        If the divisor is below 4 or the rate error exceeds :data:`MAX_BAUD_ERROR`.
    """
    for name, v in (("clk_hz", clk_hz), ("baud", baud)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an integer, not {v!r}")
        if v <= 0:
            raise ValueError(f"{name} must be positive, not {v}")
    div = round(clk_hz / baud)
    if div < 4:
        raise ValueError(f"baud={baud} is too fast for clk_hz={clk_hz}: needs at least 4 clock cycles per bit")
    err = abs(clk_hz / div - baud) / baud
    if err > MAX_BAUD_ERROR:
        raise ValueError(f"baud={baud} from clk_hz={clk_hz} is off by {100 * err:.1f} % "
                         f"(limit {100 * MAX_BAUD_ERROR:.0f} %)")
    return div


class BoardTop(wiring.Component):
    """The macro on an FPGA: controller, array stand-in and UART bridge in one clock domain.

    The host reaches the register map through the UART with the framed protocol of
    :mod:`rtl.board.protocol`; :class:`firmware.serial_backend.SerialRegisterAccess` speaks it.

    Parameters
    ----------
    params : MacroParams, optional
        Controller geometry (default 64 x 64).
    clk_hz : int
        Clock frequency, for the UART divider.
    baud : int
        UART line rate.
    base_cycles, cycles_per_mismatch, jitter_bits : int
        Timing of the array stand-in (:class:`rtl.board.array_model.ArrayStandIn`).

    Attributes
    ----------
    uart_rx : In(1)
        From the host (idle high).
    uart_tx : Out(1)
        To the host.
    irq : Out(1)
        The controller's interrupt (FLAGS & IRQ_EN), e.g. on an LED.
    activity : Out(1)
        High while the array is evaluating, writing or reading, e.g. on an LED.
    """

    def __init__(self, params: MacroParams | None = None, *, clk_hz: int = 12_000_000, baud: int = 115200,
                 base_cycles: int | None = None, cycles_per_mismatch: int = 1, jitter_bits: int = 0):
        if params is None:
            params = MacroParams(batch_depth=0)  # see rtl.board.fpga.BUILDS
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        self.params = params
        self.clk_hz = clk_hz
        self.baud = baud
        self.divisor = uart_divisor(clk_hz, baud)
        # Built here so the stand-in's arguments are checked at construction time.
        self.standin = ArrayStandIn(params, base_cycles=base_cycles, cycles_per_mismatch=cycles_per_mismatch,
                                    jitter_bits=jitter_bits)
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "irq": Out(1), "activity": Out(1)})

    def tdc_settings(self) -> dict[str, int]:
        """TDC register values for exact mismatch codes from the stand-in."""
        return self.standin.tdc_settings()

    def elaborate(self, platform):
        m = Module()
        m.submodules.ctrl = ctrl = MramCim(self.params)
        m.submodules.standin = standin = self.standin
        m.submodules.bridge = bridge = UartAxiBridge(ADDR_BITS, self.divisor)
        wiring.connect(m, bridge.bus, ctrl.bus)
        wiring.connect(m, ctrl.array, standin.array)
        m.d.comb += [
            bridge.rx.eq(self.uart_rx), self.uart_tx.eq(bridge.tx),
            self.irq.eq(ctrl.irq),
            self.activity.eq(ctrl.array.evaluate | ctrl.array.wr_en | ctrl.array.rd_en),
        ]
        return m


#: Name of the generated board top module (simulation).
BOARD_TOP_NAME = "mram_cim_board"


class PlatformTop(Elaboratable):
    """:class:`BoardTop` on an amaranth-boards platform: clock, UART pins and two LEDs.

    On ECP5 an EHXPLLL multiplies the board clock to ``clk_mhz`` (the timing target); on iCE40
    the board clock is used directly (``clk_mhz`` must then be ``None``).

    Parameters
    ----------
    params : MacroParams
    baud : int
    clk_mhz : int, optional
        ECP5 only: PLL output frequency, 25 MHz input to 100 MHz output is what is tabulated.
    """

    #: EHXPLLL settings (from ecppll) per (input MHz, output MHz).
    ECP5_PLL = {(25, 100): dict(CLKI_DIV=1, CLKFB_DIV=4, CLKOP_DIV=6, CLKOP_CPHASE=2)}

    def __init__(self, params: MacroParams, baud: int = 115200, clk_mhz: int | None = None):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        self.params = params
        self.baud = baud
        self.clk_mhz = clk_mhz

    def elaborate(self, platform):
        m = Module()
        in_hz = int(platform.default_clk_frequency)
        if self.clk_mhz is not None:
            key = (in_hz // 1_000_000, self.clk_mhz)
            if getattr(platform, "family", None) != "ecp5" or key not in self.ECP5_PLL:
                raise ValueError(f"no PLL setting for {key[0]} MHz -> {self.clk_mhz} MHz on {platform.device}; "
                                 f"known: {sorted(self.ECP5_PLL)} on ECP5")
            clk_in = platform.request(platform.default_clk, dir="-")
            m.domains.sync = ClockDomain("sync")
            locked = Signal()
            pll_out = Signal()
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                **{f"p_{k}": v for k, v in self.ECP5_PLL[key].items()},
                a_FREQUENCY_PIN_CLKI=str(in_hz // 1_000_000), a_FREQUENCY_PIN_CLKOP=str(self.clk_mhz),
                i_RST=0, i_STDBY=0, i_CLKI=clk_in.io, o_CLKOP=pll_out, i_CLKFB=pll_out,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
            m.d.comb += ClockSignal("sync").eq(pll_out)
            m.submodules.rst_sync = ResetSynchronizer(~locked, domain="sync")
            clk_hz = self.clk_mhz * 1_000_000
        else:
            clk_hz = in_hz   # the platform's default domain on its board clock
        m.submodules.board = board = BoardTop(self.params, clk_hz=clk_hz, baud=self.baud)
        uart = platform.request("uart", 0)
        m.d.comb += [board.uart_rx.eq(uart.rx.i), uart.tx.o.eq(board.uart_tx)]
        try:   # ULX3S: the FTDI's TX line to the FPGA needs its buffer enabled
            m.d.comb += platform.request("uart_tx_enable", 0).o.eq(1)
        except Exception:
            pass
        for i, sig in enumerate((board.activity, board.irq)):
            try:
                m.d.comb += platform.request("led", i).o.eq(sig)
            except Exception:
                pass  # a board with fewer LEDs
        return m
