"""UART bridge of the FPGA board top (amaranth.sim) and the serial backend's protocol code."""

import pytest
from amaranth.sim import Simulator

from firmware.driver import SyncMacroDriver, run_sync
from firmware.regs import BusError
from firmware.serial_backend import SerialRegisterAccess, SerialTimeoutError
from macro_spec.params import MacroParams
from macro_spec.regmap import reg
from rtl.board.bridge import UartAxiBridge
from rtl.board.protocol import (RESP_DECERR, RESP_OKAY, RESP_SLVERR, ProtocolError, Response, decode_response,
                                encode_read, encode_response, encode_write, uart_frame_bits)
from rtl.board.top import BoardTop, uart_divisor

P = MacroParams(rows=8, cols=8)
DIV = 4


# ---------------------------------------------------------------- protocol

def test_frames():
    assert encode_read(0x123) == bytes([0x52, 0x23, 0x01])
    assert encode_write(0x0C, 0xA1B2C3D4) == bytes([0x57, 0x0C, 0x00, 0xD4, 0xC3, 0xB2, 0xA1])
    r = Response(write=False, resp=RESP_SLVERR, data=0xDEADBEEF)
    assert decode_response(encode_response(r), write=False) == r
    assert decode_response(bytes([0x77, 3]), write=True) == Response(True, RESP_DECERR)
    with pytest.raises(ProtocolError, match="0x77"):
        decode_response(bytes([0x77, 0, 0, 0, 0, 0]), write=False)
    with pytest.raises(ProtocolError, match="2 bytes"):
        decode_response(bytes([0x77]), write=True)
    with pytest.raises(ValueError, match="addr"):
        encode_read(1 << 16)
    with pytest.raises(TypeError, match="value"):
        encode_write(0, "1")
    assert uart_frame_bits(0x01) == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]


class FakeBoard:
    """A pyserial stand-in that answers frames from a dict of words (SLVERR elsewhere)."""

    def __init__(self, words, mute=False):
        self.words = dict(words)
        self.mute = mute
        self.out = b""

    def reset_input_buffer(self):
        self.out = b""

    def write(self, data):
        if self.mute:
            return
        addr = int.from_bytes(data[1:3], "little")
        if data[0] == 0x52:
            ok = addr in self.words
            self.out += encode_response(Response(False, RESP_OKAY if ok else RESP_SLVERR, self.words.get(addr, 0)))
        else:
            self.words[addr] = int.from_bytes(data[3:7], "little")
            self.out += encode_response(Response(True, RESP_OKAY))

    def read(self, n):
        got, self.out = self.out[:n], self.out[n:]
        return got

    def close(self):
        pass


def test_serial_backend_with_sync_driver():
    """The serial backend never suspends, so the synchronous driver runs on it."""
    p = MacroParams()
    board = FakeBoard({reg("ID").address(): reg("ID").reset_value(p), reg("VERSION").address(): reg("VERSION").reset_value(p),
                       reg("CAPS").address(): reg("CAPS").reset_value(p), reg("FLAGS").address(): 0,
                       reg("BATCH_CAPS").address(): reg("BATCH_CAPS").reset_value(p)})
    regs = SerialRegisterAccess(board)
    info = SyncMacroDriver(regs).open()
    assert (info.rows, info.cols) == (64, 64)
    with pytest.raises(BusError) as e:
        run_sync(regs.read(0x0F0))
    assert e.value.resp == RESP_SLVERR


def test_serial_backend_timeout_and_arguments():
    with pytest.raises(SerialTimeoutError, match="0 of 6 bytes"):
        run_sync(SerialRegisterAccess(FakeBoard({}, mute=True)).read(0))
    with pytest.raises(ValueError, match="baud"):
        SerialRegisterAccess(FakeBoard({}), baud=0)


# ---------------------------------------------------------------- RTL

def test_constructor_checks():
    with pytest.raises(ValueError, match="addr_bits"):
        UartAxiBridge(20, 8)
    with pytest.raises(ValueError, match="divisor"):
        UartAxiBridge(12, 2)
    with pytest.raises(ValueError, match="frame_timeout_cycles"):
        UartAxiBridge(12, 8, frame_timeout_cycles=10)
    with pytest.raises(ValueError, match="baud"):
        uart_divisor(12_000_000, 4_000_000)
    with pytest.raises(ValueError, match="off by"):
        uart_divisor(12_000_000, 2_000_000 + 300_000)
    assert uart_divisor(12_000_000, 115200) == 104
    with pytest.raises(TypeError, match="params"):
        BoardTop({"rows": 8})


def _run(bench):
    top = BoardTop(P, clk_hz=4_000_000, baud=1_000_000)
    assert top.divisor == DIV
    sim = Simulator(top)
    sim.add_clock(2.5e-7)

    async def send(ctx, data):
        for byte in data:
            for bit in uart_frame_bits(byte):
                ctx.set(top.uart_rx, bit)
                await ctx.tick().repeat(DIV)

    async def recv(ctx, n):
        out = bytearray()
        for _ in range(n):
            for _ in range(100 * DIV):
                if not ctx.get(top.uart_tx):
                    break
                await ctx.tick()
            else:
                raise AssertionError("no start bit from the bridge")
            await ctx.tick().repeat(DIV + DIV // 2)
            value = 0
            for i in range(8):
                value |= ctx.get(top.uart_tx) << i
                await ctx.tick().repeat(DIV)
            assert ctx.get(top.uart_tx) == 1, "stop bit"
            out.append(value)
        return bytes(out)

    async def read(ctx, addr):
        await send(ctx, encode_read(addr))
        return decode_response(await recv(ctx, 6), write=False)

    async def write(ctx, addr, value):
        await send(ctx, encode_write(addr, value))
        return decode_response(await recv(ctx, 2), write=True)

    async def testbench(ctx):
        ctx.set(top.uart_rx, 1)
        await ctx.tick().repeat(8)
        await bench(ctx, send, read, write)

    sim.add_testbench(testbench)
    sim.run()


def test_bridge_reads_writes_and_errors():
    async def bench(ctx, send, read, write):
        assert await read(ctx, 0) == Response(False, RESP_OKAY, reg("ID").reset_value(P))
        assert await write(ctx, reg("IRQ_EN").address(), 0x21) == Response(True, RESP_OKAY)
        assert (await read(ctx, reg("IRQ_EN").address())).data == 0x21
        assert (await read(ctx, 0x0F0)).resp == RESP_SLVERR                       # unmapped
        assert (await write(ctx, reg("ID").address(), 1)).resp == RESP_SLVERR      # read-only
        assert await read(ctx, 0x1000) == Response(False, RESP_DECERR, 0)          # beyond the bus
        assert (await write(ctx, 0x1020, 5)).resp == RESP_DECERR
        assert (await read(ctx, 0x002)).resp == RESP_DECERR                       # unaligned
        # Garbage between frames is dropped.
        await send(ctx, bytes([0x00, 0xFF, 0x13]))
        assert (await read(ctx, reg("IRQ_EN").address())).data == 0x21
    _run(bench)


def test_bridge_drops_a_partial_frame_after_the_timeout():
    async def bench(ctx, send, read, write):
        await send(ctx, encode_write(reg("IRQ_EN").address(), 0x3F)[:4])   # host gave up mid-frame
        await ctx.tick().repeat(70 * DIV)                                 # > 64 bit periods
        assert (await read(ctx, reg("IRQ_EN").address())).data == 0        # nothing was written
    _run(bench)
