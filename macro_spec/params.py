"""Elaboration-time parameters of the macro: the one place they are defined and checked.

The RTL generator, the analog model, the co-simulation, the fast model, the firmware and the
documentation all build from a :class:`MacroParams`. Nothing else hard-codes an array size or a
counter width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Register bus data width (AXI4-Lite, 32-bit data).
BUS_DATA_BITS = 32

#: Inclusive limits of the array geometry the RTL and models support.
ROWS_RANGE = (8, 128)
COLS_RANGE = (8, 128)
#: Inclusive limits of the TDC counter width.
TDC_BITS_RANGE = (4, 16)
#: Inclusive limits of the comparator synchroniser depth.
SYNC_STAGES_RANGE = (2, 4)
#: Inclusive limits of the batch queue depth (input vectors per COMPUTE_BATCH); 0 = no queue.
BATCH_DEPTH_RANGE = (0, 255)

#: Allowed numbers of post-processing lanes: columns post-processed per cycle after an
#: evaluation (offset, clamp, threshold); COL_OFFSET and COL_THRESH sit this many columns to a
#: block-RAM word. A power of two, so that a column's word and lane are bit fields of its index,
#: and at least the four codes of a CODE word, which the bus reads through the lanes'
#: multiplexer.
POST_LANES_CHOICES = (4, 8, 16)

#: Identification word in the ID register ("MCIM" in ASCII).
MACRO_ID = 0x4D43494D
#: Register-map version; bump when a register changes meaning.
MACRO_VERSION = 0x0001_0004
#: Bits per code in packed batch results (CTRL.PACK_CODES; codes up to 15).
PACKED_CODE_BITS = 4


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


@dataclass(frozen=True)
class MacroParams:
    """Elaboration-time parameters of one macro instance.

    Parameters
    ----------
    rows : int
        Cells per column (length of the input vector), 8 to 128.
    cols : int
        Columns (outputs per evaluation), 8 to 128.
    tdc_bits : int
        Width of the TDC code counter, 4 to 16. The programmable ``TDC_CODE_MAX`` register
        can narrow it further at run time (the ``paper`` preset uses 15, a 4-bit counter).
    sync_stages : int
        Flip-flops in each comparator synchroniser, 2 to 4.
    batch_depth : int
        Input vectors the batch queue holds (one COMPUTE_BATCH runs them all and raises one
        completion), 0 to 255; 0 builds no queue (the smallest controller).
    post_lanes : int
        Columns post-processed per cycle after an evaluation (offset, clamp, threshold), one of
        4, 8, 16; COL_OFFSET and COL_THRESH are stored this many columns to a memory word.
        More lanes shorten the precharge phase (``ceil(cols / post_lanes) + 4`` cycles of
        post-processing, 12 for 64 columns with the default 8) at the cost of adders,
        comparators and a wider memory word: the iCE40 builds use 4 (docs/fpga.md).

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of its range.
    """

    rows: int = 64
    cols: int = 64
    tdc_bits: int = 8
    sync_stages: int = 2
    batch_depth: int = 32
    post_lanes: int = 8

    def __post_init__(self):
        _check_int("rows", self.rows, *ROWS_RANGE)
        _check_int("cols", self.cols, *COLS_RANGE)
        _check_int("tdc_bits", self.tdc_bits, *TDC_BITS_RANGE)
        _check_int("sync_stages", self.sync_stages, *SYNC_STAGES_RANGE)
        _check_int("batch_depth", self.batch_depth, *BATCH_DEPTH_RANGE)
        _check_int("post_lanes", self.post_lanes, POST_LANES_CHOICES[0], POST_LANES_CHOICES[-1])
        if self.post_lanes not in POST_LANES_CHOICES:
            raise ValueError(f"post_lanes must be one of {', '.join(map(str, POST_LANES_CHOICES))}, "
                             f"not {self.post_lanes}")

    # ---- derived quantities (derived, never stored, so they cannot drift) ----

    @property
    def code_field_bits(self) -> int:
        """Bits per packed TDC code in the CODE window: 8 when the counter fits, else 16."""
        return 8 if self.tdc_bits <= 8 else 16

    @property
    def codes_per_word(self) -> int:
        """TDC codes packed into one 32-bit CODE word."""
        return BUS_DATA_BITS // self.code_field_bits

    @property
    def code_words(self) -> int:
        """32-bit words of the CODE window in use."""
        return -(-self.cols // self.codes_per_word)

    @property
    def row_words(self) -> int:
        """32-bit words holding one bit per row (input vector)."""
        return -(-self.rows // BUS_DATA_BITS)

    @property
    def col_words(self) -> int:
        """32-bit words holding one bit per column (weights of a row, masks, activations)."""
        return -(-self.cols // BUS_DATA_BITS)

    @property
    def result_words(self) -> int:
        """32-bit words of one batch result in BATCH_OUT: the CODE words, then ACT, then TMO."""
        return self.code_words + 2 * self.col_words

    @property
    def packed_code_words(self) -> int:
        """32-bit words of the codes in a packed batch result (:data:`PACKED_CODE_BITS` each)."""
        return -(-self.cols * PACKED_CODE_BITS // BUS_DATA_BITS)

    @property
    def packed_result_words(self) -> int:
        """32-bit words of one packed batch result in BATCH_OUT (CTRL.PACK_CODES in force): the
        codes :data:`PACKED_CODE_BITS` bits each, then ACT, then TMO."""
        return self.packed_code_words + 2 * self.col_words

    def batch_result_layout(self, packed: bool) -> tuple[int, int, int]:
        """(code words, bits per code, words per result) of one BATCH_OUT result, packed
        (BATCH_STATUS.PACKED) or not."""
        if packed:
            return self.packed_code_words, PACKED_CODE_BITS, self.packed_result_words
        return self.code_words, self.code_field_bits, self.result_words

    def packs_codes(self, tdc_code_max: int) -> bool:
        """Whether CTRL.PACK_CODES packs a batch's results under this TDC_CODE_MAX: no code can
        exceed what :data:`PACKED_CODE_BITS` hold (the counter clips TDC_CODE_MAX to its width)."""
        return min(int(tdc_code_max), self.code_max) < (1 << PACKED_CODE_BITS)

    @property
    def post_groups(self) -> int:
        """Memory words of COL_OFFSET (and of COL_THRESH), and cycles of post-processing."""
        return -(-self.cols // self.post_lanes)

    @property
    def code_max(self) -> int:
        """Largest code the counter can hold."""
        return (1 << self.tdc_bits) - 1

    def to_dict(self) -> dict:
        """Plain-dict form, for JSON and build-cache keys."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MacroParams":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(d) - {"rows", "cols", "tdc_bits", "sync_stages", "batch_depth", "post_lanes"}
        if unknown:
            raise ValueError(f"unknown macro parameter(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def key(self) -> str:
        """Short stable string naming this parameter set (build directories, caches)."""
        return (f"r{self.rows}_c{self.cols}_t{self.tdc_bits}_s{self.sync_stages}_b{self.batch_depth}"
                f"_l{self.post_lanes}")
