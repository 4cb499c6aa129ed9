"""The framed serial protocol between a host and the board's UART-to-AXI4-Lite bridge.

Pure Python (no Amaranth), so the firmware's serial backend and the cocotb UART model import it
without pulling in the RTL. The bridge in :mod:`rtl.board.bridge` implements the board side; the
constants below are the single definition both sides use.

Frames (every multi-byte field little-endian, one frame per transaction, no pipelining):

============ ============================================== ===================================
direction    bytes                                          meaning
============ ============================================== ===================================
host → board ``0x52 A0 A1``                                 read the word at byte address A
host → board ``0x57 A0 A1 D0 D1 D2 D3``                     write word D at byte address A
board → host ``0x72 R D0 D1 D2 D3``                         read response: AXI RRESP R, data D
board → host ``0x77 R``                                     write response: AXI BRESP R
============ ============================================== ===================================

``R`` is the AXI4-Lite response code (0 OKAY, 2 SLVERR from the controller). An address that is
not word aligned or does not fit the bus (``A >= 2**addr_bits``) is answered with DECERR (3)
without any bus access, so it can never alias onto a real register; a failed read returns data 0.
A byte that does not start a frame is dropped. If the gap between two bytes of a request exceeds
the bridge's frame timeout, the partial request is discarded; after such a gap the next byte is
parsed as the start of a new frame, which is how a host resynchronises.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Request start bytes ('R', 'W').
CMD_READ = 0x52
CMD_WRITE = 0x57
#: Response start bytes ('r', 'w').
RSP_READ = 0x72
RSP_WRITE = 0x77

#: Bytes of each frame.
READ_REQUEST_BYTES = 3
WRITE_REQUEST_BYTES = 7
READ_RESPONSE_BYTES = 6
WRITE_RESPONSE_BYTES = 2

#: Address field width of the protocol (byte address).
PROTOCOL_ADDR_BITS = 16

#: AXI response codes the bridge can return.
RESP_OKAY = 0
RESP_SLVERR = 2
RESP_DECERR = 3


class ProtocolError(Exception):
    """A response frame that does not match the request (bad start byte or length)."""


def _check_addr(addr) -> int:
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise TypeError(f"addr must be an integer, not {addr!r}")
    if not 0 <= addr < (1 << PROTOCOL_ADDR_BITS):
        raise ValueError(f"addr must be between 0 and {(1 << PROTOCOL_ADDR_BITS) - 1}, not {addr}")
    return addr


def encode_read(addr: int) -> bytes:
    """Request frame reading the word at byte address ``addr``.

    Raises
    ------
    TypeError, ValueError
        If ``addr`` is not an integer that fits the 16-bit address field.
    """
    return bytes([CMD_READ]) + _check_addr(addr).to_bytes(2, "little")


def encode_write(addr: int, value: int) -> bytes:
    """Request frame writing the 32-bit ``value`` at byte address ``addr``.

    Raises
    ------
    TypeError, ValueError
        If ``addr`` or ``value`` is not an integer or does not fit its field.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"value must be an integer, not {value!r}")
    if not 0 <= value <= 0xFFFF_FFFF:
        raise ValueError(f"value must fit 32 unsigned bits, not {value}")
    return bytes([CMD_WRITE]) + _check_addr(addr).to_bytes(2, "little") + value.to_bytes(4, "little")


@dataclass(frozen=True)
class Response:
    """A decoded response frame.

    Attributes
    ----------
    write : bool
        True for a write response.
    resp : int
        AXI response code.
    data : int
        Read data (0 for writes and failed reads).
    """

    write: bool
    resp: int
    data: int = 0


def response_length(write: bool) -> int:
    """Bytes of the response to a read (``write=False``) or write request."""
    return WRITE_RESPONSE_BYTES if write else READ_RESPONSE_BYTES


def decode_response(frame: bytes, write: bool) -> Response:
    """Decode the response to a read or write request.

    Raises
    ------
    ProtocolError
        If the frame has the wrong length or start byte.
    """
    frame = bytes(frame)
    want = response_length(write)
    start = RSP_WRITE if write else RSP_READ
    if len(frame) != want:
        raise ProtocolError(f"{'write' if write else 'read'} response must be {want} bytes, got {len(frame)}: {frame.hex()}")
    if frame[0] != start:
        raise ProtocolError(f"response starts with {frame[0]:#04x}, expected {start:#04x}: {frame.hex()}")
    data = 0 if write else int.from_bytes(frame[2:6], "little")
    return Response(write=write, resp=frame[1] & 3, data=data)


def encode_response(resp: Response) -> bytes:
    """Frame of a response (the board's side; used by tests and software models)."""
    if resp.write:
        return bytes([RSP_WRITE, resp.resp & 3])
    return bytes([RSP_READ, resp.resp & 3]) + (resp.data & 0xFFFF_FFFF).to_bytes(4, "little")


def uart_frame_bits(byte: int) -> list[int]:
    """Line levels of one 8N1 UART character: start bit 0, data LSB first, stop bit 1."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]
