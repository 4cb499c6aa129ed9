"""Register access: the one interface every backend of the driver implements.

A backend (the fast model :class:`firmware.model.FastMacroModel`, the co-simulated RTL behind an
AXI4-Lite master, a real board behind USB) only has to provide word reads and writes. Everything
else here -- block transfers, access by register and field name -- is built on those two, driven
by :mod:`macro_spec.regmap` so that no offset or field position is written down twice.

Bus errors (an AXI4-Lite SLVERR or DECERR response) surface as :class:`BusError`.
"""

from __future__ import annotations

import abc
from typing import Iterable, Sequence

from macro_spec.params import BUS_DATA_BITS
from macro_spec.regmap import Register, reg

#: Largest value of one bus word.
WORD_MASK = (1 << BUS_DATA_BITS) - 1

#: AXI4-Lite response codes (RRESP/BRESP).
RESP_OKAY = 0
RESP_SLVERR = 2
RESP_DECERR = 3
RESP_NAMES = {RESP_OKAY: "OKAY", 1: "EXOKAY", RESP_SLVERR: "SLVERR", RESP_DECERR: "DECERR"}


class BusError(Exception):
    """A register transfer answered with an error response.

    Parameters
    ----------
    addr : int
        Byte address of the transfer.
    resp : int
        AXI4-Lite response code (2 = SLVERR, 3 = DECERR).
    write : bool
        Whether the failed transfer was a write.
    detail : str
        Why the slave refused it, when the backend knows.
    """

    def __init__(self, addr: int, resp: int = RESP_SLVERR, write: bool = False, detail: str = ""):
        self.addr = addr
        self.resp = resp
        self.write = write
        self.detail = detail
        kind = "write" if write else "read"
        msg = f"bus error on {kind} of address {addr:#05x}: {RESP_NAMES.get(resp, resp)}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


def check_word(value: int) -> int:
    """Check that ``value`` is an integer that fits one bus word, and return it as ``int``.

    Raises
    ------
    ValueError
        If the value is not an integer or does not fit in 32 unsigned bits.
    """
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"register value must be an integer, not {value!r}") from None
    if v != value or not 0 <= v <= WORD_MASK:
        raise ValueError(f"register value {value!r} does not fit a {BUS_DATA_BITS}-bit word")
    return v


class RegisterAccess(abc.ABC):
    """Word access to the macro's register space, plus helpers by name.

    Subclasses implement :meth:`read` and :meth:`write` (both ``async``, because a co-simulated or
    remote bus takes time); the block and by-name helpers are built on them and may be overridden
    by a backend with a faster path.

    A backend that never suspends inside :meth:`read`/:meth:`write` (the fast model) sets
    :attr:`synchronous` to ``True``; :class:`firmware.driver.SyncMacroDriver` then runs driver
    coroutines without an event loop.
    """

    #: True when the coroutines of this backend complete without ever suspending.
    synchronous: bool = False

    @abc.abstractmethod
    async def read(self, addr: int) -> int:
        """Read the 32-bit word at byte address ``addr``.

        Raises
        ------
        BusError
            If the slave answers with an error response.
        """

    @abc.abstractmethod
    async def write(self, addr: int, value: int) -> None:
        """Write the 32-bit word ``value`` at byte address ``addr``.

        Raises
        ------
        BusError
            If the slave answers with an error response.
        """

    # ---- blocks ----

    async def read_block(self, addr: int, n: int) -> list[int]:
        """Read ``n`` consecutive words starting at ``addr``."""
        return [await self.read(addr + 4 * i) for i in range(n)]

    async def write_block(self, addr: int, values: Iterable[int]) -> None:
        """Write consecutive words starting at ``addr``."""
        for i, v in enumerate(values):
            await self.write(addr + 4 * i, v)

    async def read_fifo(self, addr: int, n: int) -> list[int]:
        """Read the word at ``addr`` ``n`` times (a queue register that pops on every read)."""
        return [await self.read(addr) for _ in range(n)]

    async def write_fifo(self, addr: int, values: Iterable[int]) -> None:
        """Write every value to the same address ``addr``, in order (a queue register)."""
        for v in values:
            await self.write(addr, v)

    # ---- by name ----

    async def read_reg(self, name: str, index: int = 0) -> int:
        """Read register ``name`` (word ``index`` of a window) as a raw word."""
        return await self.read(reg(name).address(index))

    async def write_reg(self, name: str, value: int, index: int = 0) -> None:
        """Write register ``name`` (word ``index`` of a window) as a raw word."""
        await self.write(reg(name).address(index), check_word(value))

    async def read_field(self, name: str, field: str, index: int = 0) -> int:
        """Read one field of a register (sign-extended when the field is signed)."""
        r = reg(name)
        return r.field(field).extract(await self.read(r.address(index)))

    async def read_fields(self, name: str, index: int = 0) -> dict[str, int]:
        """Read a register and split it into its fields, ``{field name: value}``."""
        r = reg(name)
        word = await self.read(r.address(index))
        return {f.name: f.extract(word) for f in r.fields}

    async def write_fields(self, name: str, index: int = 0, **fields: int) -> None:
        """Write a register from field values; fields not named are written as 0.

        Use :meth:`modify_fields` to keep the other fields of an RW register.
        """
        r = reg(name)
        await self.write(r.address(index), encode_fields(r, fields))

    async def modify_fields(self, name: str, index: int = 0, **fields: int) -> None:
        """Read-modify-write: change the named fields of a register, keep the others."""
        r = reg(name)
        word = await self.read(r.address(index))
        for fname, value in fields.items():
            f = r.field(fname)
            word = (word & ~f.mask) | f.insert(int(value))
        await self.write(r.address(index), word & WORD_MASK)

    async def read_window(self, name: str, n: int) -> list[int]:
        """Read the first ``n`` words of a register window."""
        r = reg(name)
        if n > r.reserve:
            raise IndexError(f"{name} has {r.reserve} words, {n} requested")
        return await self.read_block(r.offset, n)

    async def write_window(self, name: str, values: Sequence[int]) -> None:
        """Write the first ``len(values)`` words of a register window."""
        r = reg(name)
        if len(values) > r.reserve:
            raise IndexError(f"{name} has {r.reserve} words, {len(values)} given")
        await self.write_block(r.offset, [check_word(v) for v in values])


def encode_fields(register: Register, fields: dict[str, int]) -> int:
    """The word that holds the given field values of ``register`` (other bits zero).

    Raises
    ------
    KeyError
        If a field name does not exist in the register.
    ValueError
        If a value does not fit its field.
    """
    word = 0
    for fname, value in fields.items():
        word |= register.field(fname).insert(int(value))
    return word


# ---- bit vectors <-> words (X, WDATA, RDATA, ACT, TMO, FAIL_MASK, CODE) ----

def bits_to_words(bits, n_words: int) -> list[int]:
    """Pack a 1-D boolean vector into 32-bit words, element 0 in bit 0 of word 0."""
    words = [0] * n_words
    for i, b in enumerate(bits):
        if b:
            words[i // BUS_DATA_BITS] |= 1 << (i % BUS_DATA_BITS)
    return words


def words_to_bits(words: Sequence[int], n_bits: int) -> list[bool]:
    """Unpack 32-bit words into ``n_bits`` booleans (inverse of :func:`bits_to_words`)."""
    return [bool((words[i // BUS_DATA_BITS] >> (i % BUS_DATA_BITS)) & 1) for i in range(n_bits)]


def pack_codes(codes: Sequence[int], field_bits: int, n_words: int) -> list[int]:
    """Pack codes ``field_bits`` each into words, column 0 in the lowest bits of word 0."""
    per_word = BUS_DATA_BITS // field_bits
    mask = (1 << field_bits) - 1
    words = [0] * n_words
    for j, c in enumerate(codes):
        words[j // per_word] |= (int(c) & mask) << (field_bits * (j % per_word))
    return words


def unpack_codes(words: Sequence[int], field_bits: int, n_codes: int) -> list[int]:
    """Inverse of :func:`pack_codes`."""
    per_word = BUS_DATA_BITS // field_bits
    mask = (1 << field_bits) - 1
    return [(words[j // per_word] >> (field_bits * (j % per_word))) & mask for j in range(n_codes)]
