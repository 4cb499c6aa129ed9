"""The register map of the macro, written once as data.

The RTL address decoder (:mod:`rtl.regfile`), the firmware's register constants, the C header
for a real MCU and ``docs/registers.md`` are all generated from :data:`REGISTERS`. Never copy an
offset or a field position anywhere else: import it from here.

Access types
------------
``RW``   read/write storage.
``RO``   read-only; a write answers SLVERR and changes nothing.
``WO``   write-only command/strobe; reads return 0.
``W1C``  read, and write 1 to clear a bit.

A register with ``pops`` set is a queue: every read that the bus accepts removes the word it
returns (BATCH_OUT), so a master reads it repeatedly at the same address.

A window with ``ram`` set is held in a memory (block RAM on an FPGA) instead of flip-flops, read
by the compute sequencer a group of columns per cycle (COL_OFFSET, COL_THRESH). It resets to 0
like the rest, one memory word per cycle after ``rst`` (the bus waits meanwhile).

Register arrays (``count`` not ``None``) occupy ``reserve`` words from their offset; the first
``count(params)`` of them exist for a given geometry, the rest of the window answers SLVERR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .params import BUS_DATA_BITS, MACRO_ID, MACRO_VERSION, MacroParams

ACCESS_TYPES = ("RW", "RO", "WO", "W1C")

#: Operation codes of the CMD register's OP field.
OP_COMPUTE = 1
OP_WRITE_ROW = 2
OP_READ_ROW = 3
OP_COMPUTE_BATCH = 4
OP_NAMES = {OP_COMPUTE: "COMPUTE", OP_WRITE_ROW: "WRITE_ROW", OP_READ_ROW: "READ_ROW",
            OP_COMPUTE_BATCH: "COMPUTE_BATCH"}

#: Bits of FLAGS and IRQ_EN (same layout).
FLAG_DONE = 1 << 0
FLAG_REFUSED = 1 << 1
FLAG_BAD_CMD = 1 << 2
FLAG_WRITE_FAIL = 1 << 3
FLAG_TIMEOUT = 1 << 4
FLAG_ABORTED = 1 << 5
FLAG_QUEUE = 1 << 6


@dataclass(frozen=True)
class Field:
    """One field of a register.

    Parameters
    ----------
    name : str
        Upper-case field name.
    lsb : int
        Position of the least significant bit.
    width : int
        Width in bits.
    doc : str
        One-line description.
    reset : int or callable
        Reset value, or a function of :class:`MacroParams` giving it.
    signed : bool
        Whether software reads the field as two's complement.
    """

    name: str
    lsb: int
    width: int
    doc: str
    reset: int | Callable[[MacroParams], int] = 0
    signed: bool = False

    @property
    def mask(self) -> int:
        """Mask of the field in its register."""
        return ((1 << self.width) - 1) << self.lsb

    def reset_value(self, params: MacroParams) -> int:
        """Reset value of this field for the given geometry."""
        return self.reset(params) if callable(self.reset) else self.reset

    def extract(self, word: int) -> int:
        """The field's value in a register word (sign-extended for signed fields)."""
        v = (word >> self.lsb) & ((1 << self.width) - 1)
        if self.signed and v >> (self.width - 1):
            v -= 1 << self.width
        return v

    def insert(self, value: int) -> int:
        """The register bits that encode ``value`` in this field (others zero)."""
        lo = -(1 << (self.width - 1)) if self.signed else 0
        hi = (1 << (self.width - (1 if self.signed else 0))) - 1
        if not lo <= value <= hi:
            raise ValueError(f"value {value} does not fit field {self.name} ({lo}..{hi})")
        return (value & ((1 << self.width) - 1)) << self.lsb


@dataclass(frozen=True)
class Register:
    """One register, or one window of identical registers.

    Parameters
    ----------
    name : str
        Upper-case register name.
    offset : int
        Byte offset from the base address (word aligned).
    access : str
        One of :data:`ACCESS_TYPES`.
    doc : str
        One-line description.
    fields : tuple of Field
        The fields; bits outside them read 0 and ignore writes.
    count : callable or None
        For a window: number of words in use, as a function of the parameters.
    reserve : int
        For a window: words of address space reserved (its maximum size).
    const : bool
        A read-only register whose value is its reset value for ever (ID, CAPS).
    pops : bool
        A read-only queue register: each accepted read removes the word it returned.
    ram : bool
        A read/write window held in a memory rather than flip-flops, read by the hardware a
        memory word per cycle; reset to 0 over a few cycles after ``rst``.
    """

    name: str
    offset: int
    access: str
    doc: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    count: Callable[[MacroParams], int] | None = None
    reserve: int = 1
    const: bool = False
    pops: bool = False
    ram: bool = False

    def __post_init__(self):
        if self.access not in ACCESS_TYPES:
            raise ValueError(f"register {self.name}: access {self.access!r} not in {ACCESS_TYPES}")
        if self.ram and (self.access != "RW" or self.count is None):
            raise ValueError(f"register {self.name}: only a read/write window can be held in a memory")
        if self.ram and any(f.reset for f in self.fields):
            raise ValueError(f"register {self.name}: a memory window is cleared to 0, its fields cannot reset to another value")
        if self.offset % 4:
            raise ValueError(f"register {self.name}: offset {self.offset:#x} not word aligned")
        used = 0
        for f in self.fields:
            if f.lsb + f.width > BUS_DATA_BITS:
                raise ValueError(f"register {self.name}: field {f.name} beyond bit 31")
            if used & f.mask:
                raise ValueError(f"register {self.name}: field {f.name} overlaps another")
            used |= f.mask

    @property
    def is_window(self) -> bool:
        """Whether this entry describes an array of registers."""
        return self.count is not None

    def words(self, params: MacroParams) -> int:
        """Words of this register in use for the given geometry."""
        return self.count(params) if self.count else 1

    def address(self, index: int = 0) -> int:
        """Byte offset of word ``index`` of this register."""
        if not 0 <= index < self.reserve:
            raise IndexError(f"{self.name}[{index}] outside its window of {self.reserve} words")
        return self.offset + 4 * index

    def reset_value(self, params: MacroParams) -> int:
        """Reset value of the whole word."""
        v = 0
        for f in self.fields:
            v |= (f.reset_value(params) << f.lsb) & f.mask
        return v

    def field(self, name: str) -> Field:
        """Field by name."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name}")

    @property
    def writable_mask(self) -> int:
        """Bits that hold state written by the host (RW registers only)."""
        if self.access != "RW":
            return 0
        m = 0
        for f in self.fields:
            m |= f.mask
        return m


def _flag_fields(kind: str) -> tuple[Field, ...]:
    what = "set" if kind == "flag" else "raise the interrupt on"
    return (
        Field("DONE", 0, 1, f"{what}: a command finished"),
        Field("REFUSED", 1, 1, f"{what}: a command was written while busy and was ignored"),
        Field("BAD_CMD", 2, 1, f"{what}: a command had an unknown OP or a row out of range"),
        Field("WRITE_FAIL", 3, 1, f"{what}: a row write left bits unverified after all retries"),
        Field("TIMEOUT", 4, 1, f"{what}: a compute had columns that never fired before the timeout"),
        Field("ABORTED", 5, 1, f"{what}: a soft reset aborted a running command"),
        Field("QUEUE", 6, 1, f"{what}: a BATCH_IN write found the input queue full, or a BATCH_OUT "
                             "read found no result"),
    )


def _u16(name: str, doc: str, reset=0) -> tuple[Field, ...]:
    return (Field(name, 0, 16, doc, reset),)


REGISTERS: tuple[Register, ...] = (
    Register("ID", 0x000, "RO", "Identification word, reads 0x4D43494D ('MCIM')",
             (Field("ID", 0, 32, "constant identification word", MACRO_ID),), const=True),
    Register("VERSION", 0x004, "RO", "Register-map version (major.minor in the two halves)",
             (Field("VERSION", 0, 32, "register-map version", MACRO_VERSION),), const=True),
    Register("CAPS", 0x008, "RO", "Elaboration parameters of this instance; firmware sizes everything from it",
             (Field("ROWS", 0, 8, "cells per column (input vector length)", lambda p: p.rows),
              Field("COLS", 8, 8, "columns (outputs)", lambda p: p.cols),
              Field("TDC_BITS", 16, 5, "TDC counter width in bits", lambda p: p.tdc_bits),
              Field("SYNC_STAGES", 21, 3, "flip-flops in each comparator synchroniser", lambda p: p.sync_stages),
              Field("CODE_FIELD_BITS", 24, 5, "bits per packed code in the CODE window", lambda p: p.code_field_bits),
              Field("POST_LANES_LOG2", 29, 3, "log2 of the columns post-processed per cycle (0 before register map 1.3, "
                    "which had 4)", lambda p: p.post_lanes.bit_length() - 1)),
             const=True),
    Register("CTRL", 0x00C, "RW", "Control bits",
             (Field("VERIFY_EN", 0, 1, "read back and retry after each row write", 1),
              Field("PACK_CODES", 1, 1, "COMPUTE_BATCH results carry the codes 4 bits each, 8 per word, when "
                    "min(TDC_CODE_MAX, 2**TDC_BITS-1) <= 15 as the batch starts (see BATCH_STATUS.PACKED; "
                    "register map 1.4)"))),
    Register("CMD", 0x010, "WO", "Command: writing starts an operation (refused while busy)",
             (Field("OP", 0, 3, "1 COMPUTE, 2 WRITE_ROW (from WDATA), 3 READ_ROW (into RDATA), "
                                "4 COMPUTE_BATCH (every vector of the input queue)"),
              Field("ROW", 8, 7, "row to write or read"),
              Field("SIDE", 16, 1, "READ_ROW: 0 reads the A MTJs, 1 the B MTJs"))),
    Register("SOFT_RESET", 0x014, "WO", "Writing 1 aborts any command and returns the array pins to idle",
             (Field("RESET", 0, 1, "abort and reset the sequencers (configuration is kept)"),)),
    Register("STATUS", 0x018, "RO", "Live status",
             (Field("BUSY", 0, 1, "a command is running"),
              Field("STATE", 4, 4, "sequencer state code (see docs/timing.md)"),
              Field("LAST_OP", 8, 3, "OP of the last accepted command"))),
    Register("FLAGS", 0x01C, "W1C", "Sticky event flags; write 1 to clear", _flag_fields("flag")),
    Register("IRQ_EN", 0x020, "RW", "Interrupt enables, one per FLAGS bit; irq = OR(FLAGS & IRQ_EN)",
             _flag_fields("irq")),
    Register("OP_COUNT", 0x024, "RO", "Compute operations completed since reset",
             (Field("COUNT", 0, 32, "completed compute operations (wraps)"),)),
    Register("TDC_WINDOW", 0x028, "RW", "Cycles after evaluate before the code counter starts",
             _u16("START_CYCLES", "window start in controller cycles")),
    Register("TDC_TIMEOUT", 0x02C, "RW", "Cycles after evaluate after which unfired columns are flagged",
             _u16("CYCLES", "timeout in controller cycles", 255)),
    Register("TDC_STEP", 0x030, "RW", "Controller cycles per TDC code (resolution); 0 acts as 1",
             (Field("CYCLES", 0, 8, "cycles per code", 1),)),
    Register("TDC_CODE_MAX", 0x034, "RW", "Saturation value of the code counter (clipped to 2**TDC_BITS-1)",
             _u16("MAX", "largest code", lambda p: p.code_max)),
    Register("PRECHARGE", 0x038, "RW", "Precharge recovery time after each evaluation",
             _u16("CYCLES", "precharge cycles (the synchroniser flush is added)", 4)),
    Register("WRITE_PULSE", 0x03C, "RW", "Width of one write pulse; 0 acts as 1",
             _u16("CYCLES", "write pulse width in controller cycles", 40)),
    Register("READ_PULSE", 0x040, "RW", "Sense time of one read: rd_en high this long, data sampled at its end; 0 acts as 1",
             _u16("CYCLES", "read pulse width in controller cycles", 8)),
    Register("WRITE_RETRIES", 0x044, "RW", "Maximum verify-and-retry rounds per row write",
             (Field("MAX", 0, 4, "retry rounds", 3),)),
    Register("WRITE_STATUS", 0x048, "RO", "Outcome of the last row write",
             (Field("ROUNDS", 0, 4, "retry rounds used"),
              Field("ROW", 8, 7, "row written"),
              Field("FAILED", 16, 1, "bits left unverified (see FAIL_MASK)"))),
    Register("RETRY_TOTAL", 0x04C, "RO", "Retry rounds since reset, all rows",
             (Field("COUNT", 0, 32, "retry rounds (wraps)"),)),
    Register("BATCH_IN", 0x050, "WO",
             "Input queue: each write appends one word of an input vector (X layout, ROW_WORDS words a vector); "
             "refused (FLAGS.REFUSED) while busy, dropped with FLAGS.QUEUE when full",
             (Field("BITS", 0, 32, "32 rows per word"),)),
    Register("BATCH_OUT", 0x054, "RO",
             "Result queue of the last COMPUTE_BATCH: each read pops the next word (per vector: CODE words, "
             "or the packed codes when BATCH_STATUS.PACKED, ACT words, TMO words); while the batch runs a read waits for its word; reads 0 with FLAGS.QUEUE "
             "when empty, 0 with FLAGS.REFUSED during another command",
             (Field("WORD", 0, 32, "next result word"),), pops=True),
    Register("BATCH_STATUS", 0x058, "RO", "Fill levels of the batch queues",
             (Field("IN_LEVEL", 0, 8, "complete input vectors queued"),
              Field("IN_WORDS", 8, 3, "words of the next input vector received so far"),
              Field("OUT_LEVEL", 16, 8, "results not yet read out completely"),
              Field("OUT_WORD", 24, 7, "words of the current result already read"),
              Field("PACKED", 31, 1, "the results of the last COMPUTE_BATCH are packed (CTRL.PACK_CODES "
                    "applied; register map 1.4)"))),
    Register("BATCH_CAPS", 0x05C, "RO", "Batch queue geometry of this instance",
             (Field("DEPTH", 0, 8, "input vectors the queue holds (0: no batch mode)", lambda p: p.batch_depth),
              Field("RESULT_WORDS", 8, 8, "BATCH_OUT words per result", lambda p: p.result_words),
              Field("PACKED_WORDS", 16, 8, "BATCH_OUT words per packed result (register map 1.4)",
                    lambda p: p.packed_result_words)),
             const=True),
    Register("X", 0x100, "RW", "Input vector, bit i = row i, 1 means +1",
             (Field("BITS", 0, 32, "32 rows per word"),), count=lambda p: p.row_words, reserve=4),
    Register("WDATA", 0x140, "RW", "Weights of the row to write, bit j = column j, 1 means +1",
             (Field("BITS", 0, 32, "32 columns per word"),), count=lambda p: p.col_words, reserve=4),
    Register("RDATA", 0x180, "RO", "Sensed bits of the last READ_ROW, 1 means low resistance (P)",
             (Field("BITS", 0, 32, "32 columns per word"),), count=lambda p: p.col_words, reserve=4),
    Register("FAIL_MASK", 0x1C0, "RO", "Columns of the last written row still wrong after all retries",
             (Field("BITS", 0, 32, "32 columns per word"),), count=lambda p: p.col_words, reserve=4),
    Register("ACT", 0x200, "RO", "Activations of the last compute: 1 when the corrected code <= threshold",
             (Field("BITS", 0, 32, "32 columns per word"),), count=lambda p: p.col_words, reserve=4),
    Register("TMO", 0x240, "RO", "Columns that had not fired by the timeout in the last compute",
             (Field("BITS", 0, 32, "32 columns per word"),), count=lambda p: p.col_words, reserve=4),
    Register("CODE", 0x400, "RO", "Corrected TDC codes of the last compute, CODE_FIELD_BITS each, column 0 lowest",
             (Field("CODES", 0, 32, "packed codes"),), count=lambda p: p.code_words, reserve=64),
    Register("COL_OFFSET", 0x800, "RW", "Per-column signed offset added to the raw code (block RAM)",
             (Field("VALUE", 0, 16, "two's complement offset in codes", signed=True),),
             count=lambda p: p.cols, reserve=128, ram=True),
    Register("COL_THRESH", 0xA00, "RW", "Per-column activation threshold on the corrected code (block RAM)",
             (Field("VALUE", 0, 16, "activation = corrected code <= VALUE"),),
             count=lambda p: p.cols, reserve=128, ram=True),
)

#: Registers by name.
BY_NAME: dict[str, Register] = {r.name: r for r in REGISTERS}

#: Address bits the decoder looks at (byte address space of 4 KiB).
ADDR_BITS = 12


def _check_layout():
    spans = sorted((r.offset, r.offset + 4 * r.reserve, r.name) for r in REGISTERS)
    for (a0, a1, n0), (b0, _b1, n1) in zip(spans, spans[1:]):
        if b0 < a1:
            raise ValueError(f"register {n1} overlaps {n0}")
    if spans[-1][1] > 1 << ADDR_BITS:
        raise ValueError("register map exceeds the decoded address space")


_check_layout()


def reg(name: str) -> Register:
    """Register by name, with a clear error for a wrong one."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no register named {name!r}") from None


def render_markdown(params: MacroParams | None = None) -> str:
    """``docs/registers.md``: the register map as a Markdown page."""
    p = params or MacroParams()
    out = [
        "# Register map",
        "",
        "Generated from `macro_spec/regmap.py` by `make docs`; do not edit by hand "
        "(a test fails when this page is out of date).",
        "",
        f"AXI4-Lite, {BUS_DATA_BITS}-bit data, {1 << ADDR_BITS} bytes of address space. "
        "An unmapped address, or a write to a read-only register, answers SLVERR. "
        "A register marked *pops* is a queue: each read the bus accepts removes the word it returns. "
        "A window marked *memory* is held in block RAM; after `rst` the controller clears it "
        f"one memory word per cycle ({p.post_groups} cycles for {p.cols} columns), and the bus waits meanwhile. "
        f"Reset values and window sizes are shown for the default geometry "
        f"({p.rows} rows × {p.cols} columns, {p.tdc_bits}-bit TDC, {p.sync_stages}-stage synchroniser).",
        "",
        "| offset | name | access | words | reset | description |",
        "|---|---|---|---|---|---|",
    ]
    for r in REGISTERS:
        words = f"{r.words(p)} of {r.reserve}" if r.is_window else "1"
        access = r.access + (", pops" if r.pops else "") + (", memory" if r.ram else "")
        out.append(f"| `{r.offset:#05x}` | {r.name} | {access} | {words} | "
                   f"`{r.reset_value(p):#010x}` | {r.doc} |")
    out += ["", "## Fields", ""]
    for r in REGISTERS:
        out.append(f"### {r.name} (`{r.offset:#05x}`, {r.access})")
        out.append("")
        out.append(r.doc + ".")
        out.append("")
        out.append("| bits | field | reset | description |")
        out.append("|---|---|---|---|")
        for f in r.fields:
            bits = f"{f.lsb + f.width - 1}:{f.lsb}" if f.width > 1 else f"{f.lsb}"
            sign = " (signed)" if f.signed else ""
            out.append(f"| {bits} | {f.name} | `{f.reset_value(p):#x}` | {f.doc}{sign} |")
        out.append("")
    return "\n".join(out)


def render_c_header(params: MacroParams | None = None) -> str:
    """A C header with the offsets and field masks, for firmware on a real MCU."""
    p = params or MacroParams()
    lines = [
        "/* Generated from macro_spec/regmap.py; do not edit. */",
        "#ifndef MRAM_CIM_REGS_H",
        "#define MRAM_CIM_REGS_H",
        "",
        f"#define MRAM_CIM_ROWS {p.rows}u",
        f"#define MRAM_CIM_COLS {p.cols}u",
        "",
    ]
    for r in REGISTERS:
        lines.append(f"#define MRAM_CIM_{r.name}_OFFSET 0x{r.offset:03X}u")
        if r.is_window:
            lines.append(f"#define MRAM_CIM_{r.name}_WORDS {r.words(p)}u")
        for f in r.fields:
            lines.append(f"#define MRAM_CIM_{r.name}_{f.name}_SHIFT {f.lsb}u")
            lines.append(f"#define MRAM_CIM_{r.name}_{f.name}_MASK 0x{f.mask:08X}u")
    lines += ["", "#endif", ""]
    return "\n".join(lines)
