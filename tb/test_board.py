"""cocotb test of the FPGA board top: the firmware's driver end to end through a UART model.

The DUT is ``mram_cim_board`` (:class:`rtl.board.top.BoardTop`: controller, digital array
stand-in, UART-to-AXI4-Lite bridge). The host side is :class:`UartRegisterAccess`, a
:class:`firmware.serial_backend.FramedRegisterAccess` whose transport is a bit-level UART model
on the DUT's pins, so the frames are encoded and decoded by the same code the real serial
backend uses. Run through pytest (tests/test_board_cosim.py) with :func:`rtl.board.sim.run`.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, Timer, with_timeout

from firmware.driver import MacroDriver
from firmware.regs import BusError
from firmware.serial_backend import FramedRegisterAccess
from macro_spec.regmap import reg
from rtl.board.protocol import RESP_DECERR, RESP_SLVERR, uart_frame_bits
from rtl.board.sim import BoardSimOptions

from .env import load_config


class UartHost:
    """Bit-level 8N1 UART on the DUT's ``uart_rx`` (driven) and ``uart_tx`` (monitored).

    Parameters
    ----------
    dut : cocotb handle
    bit_ps : int
        Bit period in picoseconds (clock period times the bridge's divisor).
    """

    def __init__(self, dut, bit_ps: int):
        self.dut = dut
        self.bit_ps = bit_ps
        self.received: Queue[int] = Queue()
        dut.uart_rx.value = 1
        self._task = cocotb.start_soon(self._monitor())

    async def _monitor(self):
        tx = self.dut.uart_tx
        while True:
            await FallingEdge(tx)
            await Timer(self.bit_ps * 3 // 2, unit="ps")   # middle of data bit 0
            value = 0
            for i in range(8):
                value |= int(tx.value) << i
                await Timer(self.bit_ps, unit="ps")
            assert int(tx.value) == 1, "UART framing error: stop bit from the board is 0"
            self.received.put_nowait(value)

    async def send(self, data: bytes):
        """Drive the bytes onto ``uart_rx``, back to back."""
        for byte in data:
            for level in uart_frame_bits(byte):
                self.dut.uart_rx.value = level
                await Timer(self.bit_ps, unit="ps")

    async def recv(self, n: int, timeout_bits: int = 2000) -> bytes:
        """The next ``n`` bytes from the board (fails after ``timeout_bits`` bit periods each)."""
        out = bytearray()
        for _ in range(n):
            out.append(await with_timeout(self.received.get(), timeout_bits * self.bit_ps, "ps"))
        return bytes(out)


class UartRegisterAccess(FramedRegisterAccess):
    """The serial backend's protocol over the simulated UART."""

    def __init__(self, host: UartHost):
        super().__init__()
        self.host = host

    async def transfer(self, request: bytes, n: int) -> bytes:
        await self.host.send(request)
        return await self.host.recv(n)


async def _start(dut) -> tuple[BoardSimOptions, UartRegisterAccess]:
    opts = BoardSimOptions.from_dict(load_config()["board"])
    period_ps = round(1e12 / opts.clk_hz)
    Clock(dut.clk, period_ps, unit="ps").start()
    host = UartHost(dut, period_ps * (opts.clk_hz // opts.baud))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    return opts, UartRegisterAccess(host)


@cocotb.test()
async def bridge_protocol(dut):
    """ID over the UART; SLVERR from the controller and DECERR from the bridge come back as BusError."""
    opts, regs = await _start(dut)
    assert await regs.read_reg("ID") == reg("ID").reset_value(opts.params)
    await regs.write_reg("IRQ_EN", 0x15)
    assert await regs.read_reg("IRQ_EN") == 0x15
    for addr, write, resp in ((0x0F0, False, RESP_SLVERR), (reg("ID").address(), True, RESP_SLVERR),
                              (0x1000, False, RESP_DECERR), (0x0C + 2, True, RESP_DECERR)):
        try:
            await (regs.write(addr, 1) if write else regs.read(addr))
        except BusError as e:
            assert e.resp == resp, f"{addr:#x}: answered {e.resp}, expected {resp}"
        else:
            raise AssertionError(f"{'write' if write else 'read'} of {addr:#x} did not fail")
    # A partial frame followed by a gap longer than the frame timeout is dropped.
    await regs.host.send(bytes([0x57, 0x0C]))
    await Timer(70 * regs.host.bit_ps, unit="ps")
    assert await regs.read_reg("IRQ_EN") == 0x15


@cocotb.test()
async def firmware_end_to_end(dut):
    """MacroDriver open, configure, program_weights (with verify), read back, matvec: exact dots."""
    opts, regs = await _start(dut)
    cfg = load_config()
    p = opts.params
    drv = MacroDriver(regs)
    info = await drv.open()
    assert (info.rows, info.cols) == (p.rows, p.cols)
    settings = dict(opts.top().tdc_settings())
    settings.update({"PRECHARGE": 2, "WRITE_PULSE": 4, "READ_PULSE": 2, "WRITE_RETRIES": 3})
    await drv.configure(settings)
    rng = np.random.default_rng(int(cfg.get("seed", 1)))
    rows_used, cols_used = int(cfg.get("rows_used", p.rows)), int(cfg.get("cols_used", p.cols))
    w = rng.choice([-1, 1], size=(rows_used, cols_used)).astype(np.int8)
    report = await drv.program_weights(w, verify=True)
    assert report.ok and report.total_retries == 0, f"stand-in writes always succeed: {report}"
    for r in (0, rows_used - 1):   # sensing both sides of a row reads its weights back
        a, b = await drv.read_row(r, 0), await drv.read_row(r, 1)
        assert (a == ~b).all(), f"row {r}: side B is not the complement of side A"
        assert np.array_equal(np.where(a[:cols_used], 1, -1), w[r]), f"row {r} reads back wrong"
    x = rng.choice([-1, 1], size=(int(cfg.get("n_vectors", 3)), rows_used)).astype(np.int8)
    res = await drv.matvec(x)
    want = x.astype(np.int64) @ w.astype(np.int64)
    assert np.array_equal(res.dot, want), f"dot products differ:\n{res.dot}\n{want}"
    assert not res.timeouts.any()
    dut._log.info("board: %d rows programmed, %d matvecs exact, %d UART transactions",
                  rows_used, x.shape[0], regs.transactions)
