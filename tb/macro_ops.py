"""Register-level operations used by the cocotb tests (through the firmware's register access)."""

from __future__ import annotations

import numpy as np

from firmware.regs import bits_to_words, unpack_codes, words_to_bits
from macro_spec.regmap import FLAG_DONE, OP_COMPUTE, OP_READ_ROW, OP_WRITE_ROW, reg

CMD = reg("CMD")


def cmd_word(op: int, row: int = 0, side: int = 0) -> int:
    """CMD register word."""
    return CMD.field("OP").insert(op) | CMD.field("ROW").insert(row) | CMD.field("SIDE").insert(side)


async def wait_done(regs, max_polls: int = 1000) -> int:
    """Poll FLAGS until DONE, clear the flags seen, return them."""
    for _ in range(max_polls):
        flags = await regs.read_reg("FLAGS")
        if flags & FLAG_DONE:
            await regs.write_reg("FLAGS", flags)
            return flags
    raise AssertionError(f"DONE never came after {max_polls} polls")


async def compute(regs, params, x_bits):
    """One compute: inputs in, start, completion, codes/activations/timeouts out."""
    await regs.write_window("X", bits_to_words(x_bits, params.row_words))
    await regs.write_reg("CMD", cmd_word(OP_COMPUTE))
    flags = await wait_done(regs)
    codes = unpack_codes(await regs.read_window("CODE", params.code_words), params.code_field_bits, params.cols)
    act = words_to_bits(await regs.read_window("ACT", params.col_words), params.cols)
    tmo = words_to_bits(await regs.read_window("TMO", params.col_words), params.cols)
    return np.array(codes), np.array(act, bool), np.array(tmo, bool), flags


async def write_row(regs, params, row: int, w_bits):
    """Program one row (1 = +1) and return (flags, fail mask)."""
    await regs.write_window("WDATA", bits_to_words(w_bits, params.col_words))
    await regs.write_reg("CMD", cmd_word(OP_WRITE_ROW, row))
    flags = await wait_done(regs)
    mask = words_to_bits(await regs.read_window("FAIL_MASK", params.col_words), params.cols)
    return flags, np.array(mask, bool)


async def read_row(regs, params, row: int, side: int):
    """Sense one side of one row; True = low resistance."""
    await regs.write_reg("CMD", cmd_word(OP_READ_ROW, row, side))
    await wait_done(regs)
    return np.array(words_to_bits(await regs.read_window("RDATA", params.col_words), params.cols), bool)
