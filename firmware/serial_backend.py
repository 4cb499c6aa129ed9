"""Register access to an FPGA board over a serial port (the UART bridge of :mod:`rtl.board`).

The frame format is defined once in :mod:`rtl.board.protocol` (docs/fpga.md describes it). The
transaction logic -- encode a request, send it, decode the response, raise :class:`BusError` on
an error response -- lives in :class:`FramedRegisterAccess`; a transport only moves bytes. Two
transports exist: :class:`SerialRegisterAccess` (pyserial, a real board) and the cocotb UART model
in ``tb/test_board.py`` (the simulated board), so the driver runs the same code on both.

pyserial is an optional dependency (the ``fpga`` extra) and is imported only when a port is
opened.
"""

from __future__ import annotations

import abc

from rtl.board.protocol import (RESP_OKAY, ProtocolError, decode_response, encode_read, encode_write,
                                response_length)

from .regs import BusError, RegisterAccess, check_word

__all__ = ["FramedRegisterAccess", "SerialRegisterAccess", "ProtocolError", "SerialTimeoutError"]


class SerialTimeoutError(TimeoutError):
    """The board did not answer a request within the port's timeout."""


class FramedRegisterAccess(RegisterAccess):
    """:class:`RegisterAccess` speaking the bridge protocol over any byte transport.

    Subclasses implement :meth:`transfer`: send a request frame and return exactly ``n`` response
    bytes.

    Attributes
    ----------
    transactions : int
        Requests completed (for cost reports).
    """

    def __init__(self):
        self.transactions = 0

    @abc.abstractmethod
    async def transfer(self, request: bytes, n: int) -> bytes:
        """Send ``request`` and return the ``n``-byte response."""

    async def read(self, addr: int) -> int:
        """Read one word; raises :class:`BusError` on SLVERR/DECERR."""
        rsp = decode_response(await self.transfer(encode_read(addr), response_length(False)), write=False)
        self.transactions += 1
        if rsp.resp != RESP_OKAY:
            raise BusError(addr, rsp.resp, write=False)
        return rsp.data

    async def write(self, addr: int, value: int) -> None:
        """Write one word; raises :class:`BusError` on SLVERR/DECERR."""
        rsp = decode_response(await self.transfer(encode_write(addr, check_word(value)), response_length(True)),
                              write=True)
        self.transactions += 1
        if rsp.resp != RESP_OKAY:
            raise BusError(addr, rsp.resp, write=True)


class SerialRegisterAccess(FramedRegisterAccess):
    """The board behind a serial port (e.g. the iCEBreaker's or ULX3S's FTDI UART).

    The port is used with blocking I/O, so the coroutines never suspend and
    :class:`firmware.driver.SyncMacroDriver` can drive it without an event loop.

    Parameters
    ----------
    port : str or serial.Serial
        Device name (``/dev/ttyUSB1``) or an already open pyserial port (or anything with
        ``write``, ``read``, ``reset_input_buffer`` and ``close``, e.g. a loopback for tests).
    baud : int
        Line rate; must match the bitstream (``BoardTop(baud=...)``, 115200 by default).
    timeout_s : float
        Time allowed for one response before :class:`SerialTimeoutError`.

    Raises
    ------
    ImportError
        If a port name is given and pyserial is not installed (``pip install -e '.[fpga]'``).
    """

    synchronous = True

    def __init__(self, port, baud: int = 115200, timeout_s: float = 1.0):
        super().__init__()
        if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
            raise ValueError(f"baud must be a positive integer, not {baud!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s!r}")
        if isinstance(port, str):
            try:
                import serial  # pyserial, optional: only a real board needs it
            except ImportError:
                raise ImportError("pyserial is needed for a serial port: pip install -e '.[fpga]'") from None
            port = serial.Serial(port, baudrate=baud, timeout=timeout_s)
        self.port = port
        # Bytes left over from a previous session (or a board reset) would shift every frame.
        if hasattr(port, "reset_input_buffer"):
            port.reset_input_buffer()

    async def transfer(self, request: bytes, n: int) -> bytes:
        """Write the request, block until ``n`` bytes arrive or the timeout passes."""
        self.port.write(request)
        got = bytes(self.port.read(n))
        if len(got) != n:
            raise SerialTimeoutError(f"board answered {len(got)} of {n} bytes to request {request.hex()} "
                                     "(wrong port or baud rate, or no bitstream loaded?)")
        return got

    def close(self) -> None:
        """Close the port."""
        self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
