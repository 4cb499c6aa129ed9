"""The evaluation board's driver: program weights, run matrix-vector products, calibrate.

:class:`MacroDriver` talks to one macro through any :class:`firmware.regs.RegisterAccess`
backend (the fast model, the co-simulated RTL, a board). Every size comes from the CAPS register
read by :meth:`MacroDriver.open`; every offset and field from :mod:`macro_spec.regmap`.

The API is ``async`` because a co-simulated bus takes simulated time. With the fast model nothing
ever waits, and :class:`SyncMacroDriver` runs the same coroutines without an event loop.

Errors
------
All hardware errors derive from :class:`MacroError` and carry ``row``, ``columns`` and ``flags``
where they apply. Wrong arguments raise :class:`UsageError`, which is both a ``MacroError`` and
a ``ValueError``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from macro_spec.params import BUS_DATA_BITS, MACRO_ID, MACRO_VERSION, MacroParams
from macro_spec.regmap import (
    FLAG_ABORTED, FLAG_BAD_CMD, FLAG_DONE, FLAG_REFUSED, FLAG_TIMEOUT, FLAG_WRITE_FAIL,
    OP_COMPUTE, OP_COMPUTE_BATCH, OP_READ_ROW, OP_WRITE_ROW, reg,
)

from .regs import RegisterAccess, encode_fields

__all__ = [
    "MacroError", "UsageError", "IdentificationError", "MacroTimeoutError", "VerifyError",
    "BadCommandError", "CommandRefusedError", "AbortedError", "ColumnTimeoutError",
    "CalibrationError", "MacroInfo", "ProgramReport", "MatvecResult", "CalibrationReport",
    "MacroDriver", "SyncMacroDriver", "run_sync", "all_pm1", "as_pm1",
]


# ============================================================================ errors

class MacroError(Exception):
    """Base class of every error the macro or the driver reports.

    Parameters
    ----------
    message : str
        What went wrong.
    row : int, optional
        Row concerned.
    columns : sequence of int, optional
        Columns concerned.
    flags : int, optional
        FLAGS word seen when the error was detected.
    """

    def __init__(self, message: str, *, row: int | None = None,
                 columns: Sequence[int] | None = None, flags: int | None = None):
        super().__init__(message)
        self.row = row
        self.columns = list(columns) if columns is not None else []
        self.flags = flags


class UsageError(MacroError, ValueError):
    """Wrong argument: shape, dtype, values, or an operation out of order."""


class IdentificationError(MacroError):
    """ID or VERSION do not name a macro this driver supports."""


class MacroTimeoutError(MacroError):
    """A command did not finish within the allowed number of FLAGS polls."""


class VerifyError(MacroError):
    """Row writes left bits wrong after all retries. ``report`` holds the full outcome."""

    def __init__(self, message: str, *, report: "ProgramReport", **kw):
        super().__init__(message, **kw)
        self.report = report


class BadCommandError(MacroError):
    """The controller flagged BAD_CMD (unknown OP or row out of range)."""


class CommandRefusedError(MacroError):
    """The controller flagged REFUSED (a command was written while it was busy)."""


class AbortedError(MacroError):
    """A command was aborted by a soft reset."""


class ColumnTimeoutError(MacroError):
    """Columns did not fire before TDC_TIMEOUT. ``result`` holds the matvec result anyway."""

    def __init__(self, message: str, *, result: "MatvecResult", **kw):
        super().__init__(message, **kw)
        self.result = result


class CalibrationError(MacroError):
    """Calibration could not fit the code-versus-mismatch line."""


# ====================================================================== data classes

@dataclass(frozen=True)
class MacroInfo:
    """What :meth:`MacroDriver.open` learnt from ID, VERSION and CAPS.

    The geometry is a :class:`~macro_spec.params.MacroParams`; its attributes (``rows``,
    ``cols``, ``tdc_bits``, ``code_max``, ``col_words``, ...) read through this object.
    """

    id: int
    version: int
    params: MacroParams
    #: The batch queue can return packed results (CTRL.PACK_CODES, register map 1.4).
    can_pack: bool = False

    def __getattr__(self, name: str):
        # Only reached for names not defined here: the geometry's fields and derived sizes.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.params, name)


@dataclass
class ProgramReport:
    """Outcome of :meth:`MacroDriver.program_weights`.

    Attributes
    ----------
    retry_rounds : numpy.ndarray of int, shape (rows,)
        Retry rounds each row write used (WRITE_STATUS.ROUNDS).
    fail_mask : numpy.ndarray of bool, shape (rows, cols)
        Bits still wrong after all retries (whole array, padding included).
    row_writes : int
        WRITE_ROW commands issued.
    verify : bool
        Whether read-back verify was on.
    cols_used : int
        Columns holding the caller's weights; failures beyond them are harmless.
    """

    retry_rounds: np.ndarray
    fail_mask: np.ndarray
    row_writes: int
    verify: bool
    cols_used: int

    @property
    def failed_rows(self) -> list[int]:
        """Rows with a wrong bit in a used column."""
        return [int(r) for r in np.flatnonzero(self.fail_mask[:, : self.cols_used].any(axis=1))]

    @property
    def ok(self) -> bool:
        """True when every bit that matters verified."""
        return not self.failed_rows

    @property
    def total_retries(self) -> int:
        """Retry rounds over all rows."""
        return int(self.retry_rounds.sum())


@dataclass
class MatvecResult:
    """Outcome of :meth:`MacroDriver.matvec` for a batch.

    Attributes
    ----------
    codes : numpy.ndarray of int64, shape (batch, cols_used)
        Corrected TDC codes as the CODE window reported them.
    activations : numpy.ndarray of bool, shape (batch, cols_used)
        ACT bits (corrected code <= COL_THRESH and not timed out).
    timeouts : numpy.ndarray of bool, shape (batch, cols_used)
        Columns that had not fired by TDC_TIMEOUT.
    dot : numpy.ndarray of float64, shape (batch, cols_used)
        Estimated dot product of the caller's inputs and weights (padding removed), from the
        codes through the calibration. Integer-valued and exact under the ``ideal`` preset.
    """

    codes: np.ndarray
    activations: np.ndarray
    timeouts: np.ndarray
    dot: np.ndarray


@dataclass
class CalibrationReport:
    """Outcome of :meth:`MacroDriver.calibrate`.

    Attributes
    ----------
    intercept, gain : numpy.ndarray of float, shape (cols,)
        Fitted raw code = intercept + gain * mismatches, per column.
    offsets : numpy.ndarray of int, shape (cols,)
        COL_OFFSET values loaded.
    rms_error_codes : float
        RMS residual of the fit over the samples used, in codes.
    samples : int
        Compute operations spent.
    """

    intercept: np.ndarray
    gain: np.ndarray
    offsets: np.ndarray
    rms_error_codes: float
    samples: int


# ========================================================================== helpers

def all_pm1(arr: np.ndarray) -> bool:
    """``np.isin(arr, (-1, 1)).all()``, cheaper: for integers three reductions (within
    [-1, 1] and no 0), for other numbers two comparisons (the same test: isin compares with
    ==), each at a fraction of isin's cost on a batch of digits."""
    if arr.dtype.kind in "iu":
        return bool(arr.min() >= -1 and arr.max() <= 1 and np.count_nonzero(arr) == arr.size)
    if arr.dtype.kind in "biufc":
        return bool(((arr == 1) | (arr == -1)).all())
    return bool(np.isin(arr, (-1, 1)).all())


def as_pm1(a, name: str, ndim: int) -> np.ndarray:
    """Check that ``a`` is a ``ndim``-dimensional array of ±1 numbers; return it as int8.

    Raises
    ------
    UsageError
        Naming ``name`` and the problem: not an array of numbers, wrong number of dimensions,
        empty, NaN, or a value other than -1 and +1.
    """
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise UsageError(f"{name} is not an array: {exc}") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise UsageError(f"{name} must hold numbers -1/+1, not dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise UsageError(f"{name} must be {ndim}-D, not shape {arr.shape}")
    if arr.size == 0:
        raise UsageError(f"{name} is empty (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        raise UsageError(f"{name} contains NaN (first at index {idx})")
    if not all_pm1(arr):
        # all_pm1 failed, so some element is neither: name the first.
        idx = tuple(int(i) for i in np.argwhere((arr != 1) & (arr != -1))[0])
        raise UsageError(f"{name} values must be -1 or +1; found {arr[idx]!r} at index {idx}")
    return arr.astype(np.int8)


def run_sync(coro):
    """Run a driver coroutine to completion without an event loop.

    Works when the backend never suspends (``RegisterAccess.synchronous``): the coroutine then
    finishes on its first step, which costs no more than a function call.

    Raises
    ------
    RuntimeError
        If the coroutine does suspend (the backend needs a real event loop).
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the register backend suspended; run the driver with asyncio instead")


def _fields_word(name: str, **fields: int) -> int:
    return encode_fields(reg(name), fields)


def _words_to_bool(words: Sequence[int], n: int) -> np.ndarray:
    """32-bit words (bit 0 of word 0 first) to ``n`` bools: one row of :func:`_words_to_bool_rows`."""
    return _words_to_bool_rows(np.asarray(words, dtype="<u4")[None, :], n)[0]


def _bool_to_words(bits: np.ndarray, n_words: int) -> list[int]:
    """A bool vector packed into ``n_words`` words: one row of :func:`_rows_to_words`."""
    return _rows_to_words(np.asarray(bits, dtype=bool)[None, :], n_words)[0].tolist()


def _rows_to_words(bits: np.ndarray, n_words: int) -> np.ndarray:
    """Each row of a (n, bits) bool array packed into ``n_words`` 32-bit words, bit 0 first."""
    padded = np.zeros((bits.shape[0], n_words * BUS_DATA_BITS), dtype=bool)
    padded[:, : bits.shape[1]] = bits
    packed = np.packbits(padded, axis=1, bitorder="little")
    return packed.view("<u4").astype(np.int64)


def _words_to_bool_rows(words: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`_rows_to_words`: (n_rows, n_words) words to (n_rows, n) bools."""
    raw = np.ascontiguousarray(words, dtype="<u4").view(np.uint8)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :n].astype(bool)


def _unpack_code_rows(words: np.ndarray, field_bits: int, n_codes: int) -> np.ndarray:
    """CODE words of several results, (n_rows, code_words), to codes (n_rows, n_codes)."""
    per_word = BUS_DATA_BITS // field_bits
    shifts = np.arange(per_word, dtype=np.uint64) * np.uint64(field_bits)
    fields = (words.astype(np.uint64)[:, :, None] >> shifts) & np.uint64((1 << field_bits) - 1)
    return fields.reshape(words.shape[0], -1)[:, :n_codes].astype(np.int64)


#: Elements of a band of :meth:`MacroDriver._dot_from_codes` (a few hundred kB, so that the band
#: stays in the cache from its first operation to its last).
_DOT_BAND_ELEMENTS = 1 << 15


def _pad_pattern(n: int) -> np.ndarray:
    """Weights of padding rows: +1, -1, +1, ... so pairs of rows cancel in the dot product."""
    return np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8)


#: Register names :meth:`MacroDriver.configure` accepts (the keys of cfg.register_settings()).
SETTING_REGISTERS = ("TDC_WINDOW", "TDC_TIMEOUT", "TDC_STEP", "TDC_CODE_MAX", "PRECHARGE",
                     "WRITE_PULSE", "READ_PULSE", "WRITE_RETRIES")


# =========================================================================== driver

class MacroDriver:
    """Driver of one macro behind a register backend.

    Parameters
    ----------
    regs : RegisterAccess
        The backend. If it has a ``compute_batch`` method (the fast model), batches of computes
        go through it; otherwise the driver issues one COMPUTE per input vector. Likewise a
        ``write_rows`` method runs the WRITE_ROW commands of a programming.
    max_polls : int
        FLAGS reads allowed while waiting for a command before :class:`MacroTimeoutError`.
    max_wait_cycles : int
        With a backend that can wait for the interrupt (``regs.wait_irq``), the longest
        interrupt wait before falling back to polling.

    Notes
    -----
    Call :meth:`open` first, then :meth:`configure`, :meth:`program_weights` and :meth:`matvec`.
    Weights smaller than the array are padded (see :meth:`program_weights`); the padding is
    removed from the dot estimates, so callers only ever see their own rows and columns.
    """

    def __init__(self, regs: RegisterAccess, max_polls: int = 100_000, max_wait_cycles: int = 1 << 22,
                 use_batch: bool = True, pack_codes: bool = True):
        if max_polls < 1:
            raise UsageError(f"max_polls must be at least 1, not {max_polls}")
        self.regs = regs
        #: Run input batches through the hardware queue (COMPUTE_BATCH) when the macro has one.
        self.use_batch = bool(use_batch)
        #: Let COMPUTE_BATCH return the codes 4 bits each (CTRL.PACK_CODES) whenever the
        #: configured TDC_CODE_MAX keeps them below 16: 12 instead of 20 result words per vector
        #: for a 64-column macro, the same values.
        self.pack_codes = bool(pack_codes)
        self._ctrl_pack: bool | None = None        # CTRL.PACK_CODES as last written (None: unknown)
        self.max_polls = int(max_polls)
        self.max_wait_cycles = int(max_wait_cycles)
        # A backend that can sleep on the interrupt pin saves the FLAGS polling.
        self._wait_irq = getattr(regs, "wait_irq", None)
        self.info: MacroInfo | None = None
        self.settings: dict[str, int] = {}
        self._weights: np.ndarray | None = None   # caller's weights (rows_used, cols_used)
        self._pad_dot = 0                          # dot contribution of the padding rows
        self._intercept: np.ndarray | None = None  # raw code = intercept + gain * mismatches
        self._gain: np.ndarray | None = None
        self._offsets: np.ndarray | None = None    # loaded COL_OFFSET values
        #: Running totals, for cost reports.
        self.stats = {"computes": 0, "row_writes": 0, "row_reads": 0, "programmings": 0}

    # ------------------------------------------------------------------ set-up

    async def open(self) -> MacroInfo:
        """Identify the macro and learn its geometry from CAPS; clear stale flags.

        Returns
        -------
        MacroInfo

        Raises
        ------
        IdentificationError
            If ID is not the macro's identification word or the major version differs.
        """
        ident = await self.regs.read_reg("ID")
        if ident != MACRO_ID:
            raise IdentificationError(f"ID register reads {ident:#010x}, expected {MACRO_ID:#010x}"
                                      " (not an MRAM CIM macro, or the bus is miswired)")
        version = await self.regs.read_reg("VERSION")
        if version >> 16 != MACRO_VERSION >> 16:
            raise IdentificationError(f"register-map version {version:#010x} is not supported "
                                      f"(driver speaks {MACRO_VERSION:#010x})")
        caps = await self.regs.read_fields("CAPS")
        # Register map 1.0 had no batch queue (and no BATCH_CAPS register).
        batch_caps = (await self.regs.read_fields("BATCH_CAPS") if version >= 0x0001_0001
                      else {"DEPTH": 0, "RESULT_WORDS": 0})
        # Register maps before 1.3 had four post-processing lanes and no field for them.
        lanes = 1 << caps["POST_LANES_LOG2"] if version >= 0x0001_0003 else 4
        try:
            params = MacroParams(rows=caps["ROWS"], cols=caps["COLS"], tdc_bits=caps["TDC_BITS"],
                                 sync_stages=caps["SYNC_STAGES"], batch_depth=batch_caps["DEPTH"],
                                 post_lanes=lanes)
        except (TypeError, ValueError) as exc:
            raise IdentificationError(f"implausible CAPS {caps}: {exc}") from None
        if params.code_field_bits != caps["CODE_FIELD_BITS"]:
            raise IdentificationError(f"implausible CAPS {caps}: code field of {caps['CODE_FIELD_BITS']} bits "
                                      f"for a {params.tdc_bits}-bit counter")
        if params.batch_depth and params.result_words != batch_caps["RESULT_WORDS"]:
            raise IdentificationError(f"implausible BATCH_CAPS {batch_caps}: {batch_caps['RESULT_WORDS']} "
                                      f"result words where the geometry needs {params.result_words}")
        # Register map 1.4 added packed batch results.
        can_pack = bool(params.batch_depth) and version >= 0x0001_0004
        if can_pack and params.packed_result_words != batch_caps["PACKED_WORDS"]:
            raise IdentificationError(f"implausible BATCH_CAPS {batch_caps}: {batch_caps['PACKED_WORDS']} packed "
                                      f"result words where the geometry needs {params.packed_result_words}")
        self.info = MacroInfo(ident, version, params, can_pack)
        self._ctrl_pack = None
        n = self.info.cols
        self._intercept = np.zeros(n)
        self._gain = np.ones(n)
        self._offsets = np.zeros(n, dtype=np.int64)
        await self.regs.write_reg("FLAGS", (1 << BUS_DATA_BITS) - 1)
        if self._wait_irq is not None:
            await self.regs.write_reg("IRQ_EN", FLAG_DONE | FLAG_BAD_CMD | FLAG_REFUSED | FLAG_ABORTED)
        return self.info

    def _need_open(self) -> MacroInfo:
        if self.info is None:
            raise UsageError("driver not opened: call open() first")
        return self.info

    @property
    def rows(self) -> int:
        """Rows of the array (from CAPS)."""
        return self._need_open().rows

    @property
    def cols(self) -> int:
        """Columns of the array (from CAPS)."""
        return self._need_open().cols

    @property
    def params(self) -> MacroParams:
        """The instance's geometry, as CAPS reports it."""
        return self._need_open().params

    @property
    def programmed(self) -> bool:
        """Whether weights are loaded."""
        return self._weights is not None

    @property
    def weights(self) -> np.ndarray | None:
        """The caller's weights as last programmed (``None`` before programming)."""
        return None if self._weights is None else self._weights.copy()

    async def configure(self, settings: dict[str, int]) -> None:
        """Write timing and TDC registers, e.g. ``cfg.register_settings(params)``.

        Parameters
        ----------
        settings : dict
            ``{register name: value}``; names from :data:`SETTING_REGISTERS` (each has one
            field, written as the register's value).

        Raises
        ------
        UsageError
            For an unknown register name or a value that does not fit its field.
        """
        self._need_open()
        for name, value in settings.items():
            if name not in SETTING_REGISTERS:
                raise UsageError(f"unknown setting {name!r}; expected one of "
                                 f"{', '.join(SETTING_REGISTERS)}")
            r = reg(name)
            f = r.fields[0]
            try:
                word = f.insert(int(value))
            except (TypeError, ValueError) as exc:
                raise UsageError(f"setting {name}: {exc}") from None
            await self.regs.write_reg(name, word)
            self.settings[name] = int(value)

    async def set_verify(self, enabled: bool) -> None:
        """Switch read-back verify of row writes on or off (CTRL.VERIFY_EN)."""
        await self.regs.modify_fields("CTRL", VERIFY_EN=int(bool(enabled)))

    # --------------------------------------------------------------- commands

    async def _wait(self, what: str, row: int | None = None) -> int:
        """Poll FLAGS until the command ends; clear what was seen; raise on error flags."""
        end = FLAG_DONE | FLAG_BAD_CMD | FLAG_REFUSED | FLAG_ABORTED
        if self._wait_irq is not None:
            # The interrupt is raised by exactly these flags (open() enabled them); the FLAGS
            # read below then finds the command finished at the first try.
            await self._wait_irq(self.max_wait_cycles)
        for _ in range(self.max_polls):
            flags = await self.regs.read_reg("FLAGS")
            if flags & end:
                break
        else:
            raise MacroTimeoutError(f"{what} did not finish within {self.max_polls} FLAGS polls",
                                    row=row, flags=flags)
        await self.regs.write_reg("FLAGS", flags)
        if flags & FLAG_BAD_CMD:
            raise BadCommandError(f"{what} rejected: BAD_CMD", row=row, flags=flags)
        if flags & FLAG_REFUSED:
            raise CommandRefusedError(f"{what} refused: controller was busy", row=row, flags=flags)
        if flags & FLAG_ABORTED:
            raise AbortedError(f"{what} aborted by a soft reset", row=row, flags=flags)
        return flags

    async def _command(self, op: int, row: int = 0, side: int = 0, what: str = "") -> int:
        await self.regs.write_reg("CMD", _fields_word("CMD", OP=op, ROW=row, SIDE=side))
        return await self._wait(what or f"command {op}", row)

    async def soft_reset(self) -> None:
        """Abort whatever runs (SOFT_RESET) and clear the flags."""
        await self.regs.write_reg("SOFT_RESET", _fields_word("SOFT_RESET", RESET=1))
        await self.regs.write_reg("FLAGS", (1 << BUS_DATA_BITS) - 1)

    # ---------------------------------------------------------------- weights

    def _full_weights(self, w: np.ndarray) -> np.ndarray:
        """The whole array's weights: the caller's block plus padding."""
        info = self._need_open()
        r, c = w.shape
        full = np.empty((info.rows, info.cols), dtype=np.int8)
        # Unused rows get +1/-1 alternately and are driven with +1 inputs, so pairs cancel and
        # the columns' mismatch counts stay near the middle of the TDC window.
        full[r:, :] = _pad_pattern(info.rows - r)[:, None]
        # Unused columns: the same alternation down the column (their codes are discarded).
        full[:r, c:] = _pad_pattern(r)[:, None]
        full[:r, :c] = w
        return full

    async def _write_rows(self, full: np.ndarray, verify: bool) -> tuple[np.ndarray, np.ndarray]:
        """WRITE_ROW of every row of ``full`` (with or without verify): the retry rounds (rows,)
        and the bits still wrong (rows, cols)."""
        info = self._need_open()
        await self.set_verify(verify)
        write_rows = getattr(self.regs, "write_rows", None)
        if write_rows is not None:
            # The fast model runs the commands itself, as if WDATA were loaded before each; one
            # wait then reads and clears the flags they left, as the per-row waits would have.
            rounds, fail = write_rows(full > 0)
            await self._wait("WRITE_ROW of every row")
            self.stats["row_writes"] += info.rows
            self.stats["programmings"] += 1
            return np.asarray(rounds, dtype=np.int64), np.asarray(fail, dtype=bool)
        rounds = np.zeros(info.rows, dtype=np.int64)
        fail = np.zeros((info.rows, info.cols), dtype=bool)
        for i in range(info.rows):
            await self.regs.write_window("WDATA", _bool_to_words(full[i] > 0, info.col_words))
            flags = await self._command(OP_WRITE_ROW, row=i, what=f"WRITE_ROW {i}")
            self.stats["row_writes"] += 1
            status = await self.regs.read_fields("WRITE_STATUS")
            rounds[i] = status["ROUNDS"]
            if status["FAILED"] or flags & FLAG_WRITE_FAIL:
                words = await self.regs.read_window("FAIL_MASK", info.col_words)
                fail[i] = _words_to_bool(words, info.cols)
        self.stats["programmings"] += 1
        return rounds, fail

    async def program_weights(self, weights, verify: bool = True,
                              raise_on_failure: bool = True) -> ProgramReport:
        """Program a ±1 weight matrix, row by row, with read-back verify and retries.

        Parameters
        ----------
        weights : array_like, shape (rows_used, cols_used)
            ±1 weights; ``rows_used <= rows`` and ``cols_used <= cols`` of the array. Row ``i``
            multiplies input ``i``; column ``j`` is output ``j``.
        verify : bool
            Read back each row and retry wrong bits (up to WRITE_RETRIES rounds).
        raise_on_failure : bool
            Raise :class:`VerifyError` when bits in used columns stay wrong; otherwise only
            report them.

        Returns
        -------
        ProgramReport

        Raises
        ------
        UsageError
            For weights that are not a 2-D ±1 array that fits the array.
        VerifyError
            For unrecoverable bits (with ``row`` the first failing row and ``columns`` its
            failing columns; ``report`` has all of them).

        Notes
        -----
        Unused rows (``rows_used < rows``) are programmed +1, -1, +1, ... and always driven
        with +1 inputs; their known contribution (0, or 1 for an odd count) is subtracted
        from the dot estimates. The whole array is written every time, so no stale weight
        from an earlier layer can leak in.
        """
        info = self._need_open()
        w = as_pm1(weights, "weights", 2)
        r, c = w.shape
        if r > info.rows or c > info.cols:
            raise UsageError(f"weights of shape {w.shape} do not fit the {info.rows} x "
                             f"{info.cols} array; tile them (firmware.tiling)")
        self._weights = None  # the array is in flux until this completes
        full = self._full_weights(w)
        rounds, fail = await self._write_rows(full, verify)
        report = ProgramReport(rounds, fail, info.rows, verify, c)
        self._weights = w.copy()
        self._pad_dot = int(full[r:, 0].astype(np.int64).sum())
        if raise_on_failure and not report.ok:
            row = report.failed_rows[0]
            cols = [int(j) for j in np.flatnonzero(fail[row, :c])]
            more = len(report.failed_rows) - 1
            raise VerifyError(
                f"row {row}: columns {cols} still wrong after {int(rounds[row])} retry rounds"
                + (f" (and {more} more rows)" if more else ""),
                row=row, columns=cols, flags=FLAG_WRITE_FAIL, report=report)
        return report

    async def read_row(self, row: int, side: int) -> np.ndarray:
        """Sense one side of one row (READ_ROW); True means low resistance (P)."""
        info = self._need_open()
        if not 0 <= int(row) < info.rows or side not in (0, 1):
            raise UsageError(f"row must be 0..{info.rows - 1} and side 0 or 1, not {row}, {side}")
        await self._command(OP_READ_ROW, row=int(row), side=side, what=f"READ_ROW {row}/{side}")
        self.stats["row_reads"] += 1
        return _words_to_bool(await self.regs.read_window("RDATA", info.col_words), info.cols)

    async def read_weights(self, full: bool = False) -> np.ndarray:
        """Read the stored weights back by sensing both MTJs of every cell.

        Parameters
        ----------
        full : bool
            Return the whole array instead of the programmed block.

        Returns
        -------
        numpy.ndarray of int8
            +1 where A is low and B high, -1 where A is high and B low, and 0 where both read
            the same (a cell that holds no valid weight).
        """
        info = self._need_open()
        out = np.zeros((info.rows, info.cols), dtype=np.int8)
        for i in range(info.rows):
            a = await self.read_row(i, 0)
            b = await self.read_row(i, 1)
            out[i] = np.where(a & ~b, 1, np.where(~a & b, -1, 0))
        if full or self._weights is None:
            return out
        r, c = self._weights.shape
        return out[:r, :c]

    # ----------------------------------------------------------------- compute

    async def _compute_bits(self, x_bits: np.ndarray):
        """Codes, ACT and TMO over the whole array for a batch of full input-bit vectors."""
        info = self._need_open()
        batch = x_bits.shape[0]
        compute_batch = getattr(self.regs, "compute_batch", None)
        if compute_batch is not None:
            res = compute_batch(x_bits)
            if asyncio.iscoroutine(res) or asyncio.isfuture(res):
                res = await res
            # The backend's arrays are new ones of the batch (the fast model's are int64, bool,
            # bool already): converted only where the dtype differs, never copied for nothing.
            codes, act, tmo = (np.asarray(v, dtype=dt) for v, dt in zip(res, (np.int64, bool, bool)))
            flags = await self.regs.read_reg("FLAGS")
            await self.regs.write_reg("FLAGS", flags)
            self.stats["computes"] += batch
            return codes, act, tmo
        if self.use_batch and info.batch_depth and batch > 1:
            return await self._compute_queued(x_bits)
        from .regs import unpack_codes
        codes = np.zeros((batch, info.cols), dtype=np.int64)
        act = np.zeros((batch, info.cols), dtype=bool)
        tmo = np.zeros((batch, info.cols), dtype=bool)
        for k in range(batch):
            await self.regs.write_window("X", _bool_to_words(x_bits[k], info.row_words))
            flags = await self._command(OP_COMPUTE, what="COMPUTE")
            self.stats["computes"] += 1
            words = await self.regs.read_window("CODE", info.code_words)
            codes[k] = unpack_codes(words, info.code_field_bits, info.cols)
            act[k] = _words_to_bool(await self.regs.read_window("ACT", info.col_words), info.cols)
            if flags & FLAG_TIMEOUT:  # TMO is all zero otherwise; skip the reads
                tmo[k] = _words_to_bool(await self.regs.read_window("TMO", info.col_words),
                                        info.cols)
        return codes, act, tmo

    async def _compute_queued(self, x_bits: np.ndarray):
        """:meth:`_compute_bits` through the hardware queue: per chunk of up to BATCH_CAPS.DEPTH
        vectors, the inputs in one block of BATCH_IN writes, one COMPUTE_BATCH, the results in
        one block of BATCH_OUT reads streamed while the batch runs, one completion."""
        info = self._need_open()
        batch = x_bits.shape[0]
        # Packed results whenever no code can exceed what 4 bits hold (same values, fewer words).
        pack = info.can_pack and self.pack_codes and info.params.packs_codes(self._code_max())
        if self._ctrl_pack != pack:
            await self.regs.modify_fields("CTRL", PACK_CODES=int(pack))
            self._ctrl_pack = pack
        cw, fb, rw = info.params.batch_result_layout(pack)
        codes = np.zeros((batch, info.cols), dtype=np.int64)
        act = np.zeros((batch, info.cols), dtype=bool)
        tmo = np.zeros((batch, info.cols), dtype=bool)
        in_addr, out_addr = reg("BATCH_IN").offset, reg("BATCH_OUT").offset
        for start in range(0, batch, info.batch_depth):
            chunk = x_bits[start:start + info.batch_depth]
            n = chunk.shape[0]
            await self.regs.write_fifo(in_addr, _rows_to_words(chunk, info.row_words).ravel().tolist())
            level = await self.regs.read_fields("BATCH_STATUS")
            if level["IN_LEVEL"] != n or level["IN_WORDS"]:
                raise MacroError(f"batch input queue holds {level['IN_LEVEL']} vectors and "
                                 f"{level['IN_WORDS']} words after {n} were queued (left over from an "
                                 "interrupted batch?); call soft_reset()")
            # The results are read right after the command: the macro holds each read until its
            # word is stored, so the transfers overlap the computes that are still running.
            await self.regs.write_reg("CMD", _fields_word("CMD", OP=OP_COMPUTE_BATCH))
            words = np.array(await self.regs.read_fifo(out_addr, n * rw), dtype=np.uint32).reshape(n, rw)
            await self._wait(f"COMPUTE_BATCH of {n}")
            if info.can_pack:
                # The layout the words were read in must be the one the macro used, and every
                # word must have been read.
                status = await self.regs.read_fields("BATCH_STATUS")
                if status["PACKED"] != pack or status["OUT_LEVEL"]:
                    raise MacroError(f"COMPUTE_BATCH of {n}: results were read as {'packed' if pack else 'full'} "
                                     f"words but BATCH_STATUS reads {status} (CTRL or TDC_CODE_MAX changed "
                                     "behind the driver?)")
            self.stats["computes"] += n
            codes[start:start + n] = _unpack_code_rows(words[:, :cw], fb, info.cols)
            act[start:start + n] = _words_to_bool_rows(words[:, cw:cw + info.col_words], info.cols)
            tmo[start:start + n] = _words_to_bool_rows(words[:, cw + info.col_words:], info.cols)
        return codes, act, tmo

    def _dot_from_codes(self, codes: np.ndarray, cols: slice) -> np.ndarray:
        """Dot estimate of the whole column, through the calibration, minus the padding.

        The estimate is a function of the code and the column only (:meth:`_dot_formula`), and
        a batch holds few distinct codes (0..TDC_CODE_MAX): the formula is evaluated once per
        (code, column) and the batch's estimates are looked up, the same bits at a fraction of
        the cost. (A batch with more distinct codes than rows gets the formula directly.)
        """
        n, n_cols = codes.shape
        if not codes.size:
            return self._dot_formula(codes, cols)
        lo, hi = int(codes.min()), int(codes.max())
        if (hi - lo + 1) > n:
            return self._dot_formula(codes, cols)
        table = self._dot_formula(np.arange(lo, hi + 1, dtype=np.int64)[:, None], cols).ravel()
        # Entry (code, column) of the table is element (code - lo) * n_cols + column; looked up a
        # band of rows at a time, so the index band stays in the cache.
        col_base = np.arange(n_cols, dtype=np.int64) - lo * n_cols
        dot = np.empty(codes.shape, dtype=np.float64)
        step = max(1, _DOT_BAND_ELEMENTS // max(1, n_cols))
        idx = np.empty((min(step, n), n_cols), dtype=np.int64)
        for r0 in range(0, n, step):
            band = codes[r0:r0 + step]
            i = idx[:band.shape[0]]
            np.multiply(band, n_cols, out=i)
            i += col_base
            np.take(table, i, out=dot[r0:r0 + step], mode="clip")  # in range: clip changes nothing
        return dot

    def _dot_formula(self, codes: np.ndarray, cols: slice) -> np.ndarray:
        """``rows - 2 (codes - offsets - intercept) / gain - pad_dot`` for ``codes`` (..., columns
        ``cols``): the code-versus-mismatch line inverted, minus the padding rows' dot."""
        info = self._need_open()
        m_est = (codes - self._offsets[cols] - self._intercept[cols]) / self._gain[cols]
        return info.rows - 2.0 * m_est - self._pad_dot

    async def matvec(self, inputs, allow_timeouts: bool = False) -> MatvecResult:
        """Products of a batch of ±1 input vectors with the programmed weights.

        Parameters
        ----------
        inputs : array_like, shape (batch, rows_used) or (rows_used,)
            ±1 inputs; a 1-D vector is a batch of one.
        allow_timeouts : bool
            Return results with timed-out columns instead of raising.

        Returns
        -------
        MatvecResult
            For the used columns only.

        Raises
        ------
        UsageError
            Before programming, or for inputs that are not ±1 of the programmed row count.
        ColumnTimeoutError
            If a used column timed out (unless ``allow_timeouts``); carries the result.
        """
        info = self._need_open()
        if self._weights is None:
            raise UsageError("no weights programmed: call program_weights() before matvec()")
        x = np.asarray(inputs) if not isinstance(inputs, np.ndarray) else inputs
        if getattr(x, "ndim", None) == 1:
            x = x[None, :]
        x = as_pm1(x, "inputs", 2)
        r, c = self._weights.shape
        if x.shape[1] != r:
            raise UsageError(f"inputs have {x.shape[1]} columns but the programmed weights have "
                             f"{r} rows")
        bits = np.ones((x.shape[0], info.rows), dtype=bool)  # padding rows are driven with +1
        bits[:, :r] = x > 0
        codes, act, tmo = await self._compute_bits(bits)
        used = slice(0, c)
        result = MatvecResult(codes[:, used], act[:, used], tmo[:, used],
                              self._dot_from_codes(codes[:, used], used))
        if not allow_timeouts and result.timeouts.any():
            cols = [int(j) for j in np.flatnonzero(result.timeouts.any(axis=0))]
            raise ColumnTimeoutError(f"columns {cols} timed out in "
                                     f"{int(result.timeouts.any(axis=1).sum())} of "
                                     f"{x.shape[0]} computes", columns=cols, flags=FLAG_TIMEOUT,
                                     result=result)
        return result

    # --------------------------------------------------------- column settings

    async def set_offsets(self, offsets) -> None:
        """Load COL_OFFSET (signed codes added to every raw code), one per array column."""
        info = self._need_open()
        off = np.broadcast_to(np.asarray(offsets, dtype=np.int64), (info.cols,))
        f = reg("COL_OFFSET").field("VALUE")
        try:
            words = [f.insert(int(v)) for v in off]
        except ValueError as exc:
            raise UsageError(f"offsets: {exc}") from None
        await self.regs.write_window("COL_OFFSET", words)
        self._offsets = off.copy()

    async def set_thresholds(self, thresholds) -> None:
        """Load COL_THRESH: a column activates when its corrected code <= threshold.

        Parameters
        ----------
        thresholds : int or array_like of int, shape (cols,) or (cols_used,)
            Codes; a shorter vector sets the first columns and leaves the others at 0.
        """
        info = self._need_open()
        t = np.atleast_1d(np.asarray(thresholds))
        if t.size == 1:
            t = np.full(info.cols, t.item())
        if t.ndim != 1 or t.size > info.cols:
            raise UsageError(f"thresholds must be a scalar or up to {info.cols} values")
        full = np.zeros(info.cols, dtype=np.int64)
        full[: t.size] = t
        f = reg("COL_THRESH").field("VALUE")
        try:
            words = [f.insert(int(v)) for v in full]
        except ValueError as exc:
            raise UsageError(f"thresholds: {exc}") from None
        await self.regs.write_window("COL_THRESH", words)

    def dot_threshold_codes(self, dot_threshold) -> np.ndarray:
        """COL_THRESH values that make ACT mean ``dot >= dot_threshold`` per used column.

        Uses the calibration (exact under ``ideal``): ACT = code <= offset + intercept +
        gain * m_max, with m_max = (rows - dot_threshold - padding dot) / 2 mismatches.
        Thresholds that would be negative are clipped to 0 (the column then activates only at
        code 0).
        """
        info = self._need_open()
        if self._weights is None:
            raise UsageError("no weights programmed")
        c = self._weights.shape[1]
        theta = np.broadcast_to(np.asarray(dot_threshold, dtype=float), (c,))
        m_max = (info.rows - theta - self._pad_dot) / 2.0
        t = self._offsets[:c] + self._intercept[:c] + self._gain[:c] * m_max
        return np.clip(np.floor(t + 1e-9), 0, 0xFFFF).astype(np.int64)

    # ------------------------------------------------------------- calibration

    async def calibrate(self, *, repeats: int = 4, seed: int = 0, per_column: bool = True,
                        load_offsets: bool = True, restore_weights: bool = True
                        ) -> CalibrationReport:
        """Fit each column's code-versus-mismatch line and load COL_OFFSET.

        Method
        ------
        1. COL_OFFSET is cleared. Every column is programmed with the same random ±1 vector
           ``v`` (so each cell's A and B MTJs both take part).
        2. For every mismatch count ``m`` = 0..rows, ``repeats`` inputs are made from ``v``
           with ``m`` randomly chosen rows flipped: every column then has exactly ``m``
           mismatches, through different cells each time.
        3. Per column, a least-squares line ``code = intercept + gain * m`` is fitted to the
           samples that are neither saturated (0 < code < code max) nor timed out (with
           ``per_column=False``, one line for all columns).
        4. COL_OFFSET_j = round(median_k c_k(rows/2) - c_j(rows/2)): the columns are aligned
           where the dot product is 0, the decision point of a binary neuron. The dot
           estimate then inverts each column's own line, so the gain is corrected in software.
        5. The caller's weights, if any, are programmed again.

        Returns
        -------
        CalibrationReport

        Raises
        ------
        CalibrationError
            If fewer than two distinct mismatch counts gave usable codes.
        """
        info = self._need_open()
        if repeats < 1:
            raise UsageError(f"repeats must be at least 1, not {repeats}")
        saved = self._weights
        rng = np.random.default_rng(seed)
        await self.set_offsets(0)
        self._intercept = np.zeros(info.cols)
        self._gain = np.ones(info.cols)
        v = np.where(rng.random(info.rows) < 0.5, 1, -1).astype(np.int8)
        full = np.repeat(v[:, None], info.cols, axis=1)
        await self.program_weights(full, verify=True, raise_on_failure=False)
        levels = np.repeat(np.arange(info.rows + 1), repeats)
        x = np.repeat(v[None, :], levels.size, axis=0)
        for k, m in enumerate(levels):
            x[k, rng.permutation(info.rows)[:m]] *= -1
        res = await self.matvec(x, allow_timeouts=True)
        codes = res.codes.astype(np.int64)
        valid = (codes > 0) & (codes < self._code_max()) & ~res.timeouts
        m_all = levels.astype(np.int64)

        def fit(mask_cols: np.ndarray) -> tuple[float, float, float]:
            """Exact least squares in integer sums, so perfect data give exact 0 and 1."""
            mm = np.broadcast_to(m_all[:, None], codes.shape)[mask_cols]
            cc = codes[mask_cols]
            n = mm.size
            if n < 2 or np.unique(mm).size < 2:
                raise CalibrationError("fewer than two mismatch counts gave unsaturated codes")
            sx, sy = int(mm.sum()), int(cc.sum())
            sxx, sxy = int((mm * mm).sum()), int((mm * cc).sum())
            gain = (n * sxy - sx * sy) / (n * sxx - sx * sx)
            intercept = (sy - gain * sx) / n
            resid = cc - (intercept + gain * mm)
            return intercept, gain, float((resid ** 2).sum())

        intercept = np.zeros(info.cols)
        gain = np.ones(info.cols)
        sq, count = 0.0, 0
        if per_column:
            for j in range(info.cols):
                mask = np.zeros_like(valid)
                mask[:, j] = valid[:, j]
                try:
                    intercept[j], gain[j], s = fit(mask)
                except CalibrationError as exc:
                    raise CalibrationError(f"column {j}: {exc}", columns=[j]) from None
                sq += s
                count += int(mask.sum())
        else:
            i0, g0, sq = fit(valid)
            intercept[:], gain[:] = i0, g0
            count = int(valid.sum())
        if (gain <= 0).any():
            bad = [int(j) for j in np.flatnonzero(gain <= 0)]
            raise CalibrationError(f"columns {bad}: code does not grow with mismatches",
                                   columns=bad)
        offsets = np.zeros(info.cols, dtype=np.int64)
        if load_offsets and per_column:
            at_mid = intercept + gain * (info.rows / 2.0)
            offsets = np.rint(np.median(at_mid) - at_mid).astype(np.int64)
        await self.set_offsets(offsets)
        self._intercept, self._gain = intercept, gain
        self._weights = None
        if restore_weights and saved is not None:
            await self.program_weights(saved, raise_on_failure=False)
        return CalibrationReport(intercept, gain, offsets, float(np.sqrt(sq / max(count, 1))),
                                 int(levels.size))

    def _code_max(self) -> int:
        info = self._need_open()
        cmax = info.code_max
        if "TDC_CODE_MAX" in self.settings:
            cmax = min(cmax, self.settings["TDC_CODE_MAX"])
        return cmax

    def set_code_model(self, intercept, gain) -> None:
        """Set the code-versus-mismatch line used for dot estimates without calibrating.

        Raw code = intercept + gain * mismatches (scalars or one value per column).
        """
        info = self._need_open()
        g = np.broadcast_to(np.asarray(gain, dtype=float), (info.cols,)).copy()
        if (g <= 0).any() or not np.isfinite(g).all():
            raise UsageError("gain must be positive and finite")
        self._gain = g
        self._intercept = np.broadcast_to(np.asarray(intercept, dtype=float), (info.cols,)).copy()


# ====================================================================== sync facade

class SyncMacroDriver:
    """The :class:`MacroDriver` API without ``await``, for scripts and the applications.

    With a backend that never suspends (the fast model) each call runs its coroutine directly
    (no event loop, no overhead); otherwise each call runs under :func:`asyncio.run`.

    Parameters
    ----------
    regs_or_driver : RegisterAccess or MacroDriver
        A backend (a new driver is made for it) or an existing driver.
    **kwargs
        Passed to :class:`MacroDriver`.
    """

    def __init__(self, regs_or_driver, **kwargs):
        self.driver = (regs_or_driver if isinstance(regs_or_driver, MacroDriver)
                       else MacroDriver(regs_or_driver, **kwargs))

    def _run(self, coro):
        if getattr(self.driver.regs, "synchronous", False):
            return run_sync(coro)
        return asyncio.run(coro)

    def __setattr__(self, name: str, value) -> None:
        # Settings such as ``use_batch`` or ``pack_codes`` belong to the driver: setting them
        # here must reach it, not shadow it on the wrapper.
        if name != "driver" and hasattr(self.driver, name):
            setattr(self.driver, name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.driver, name)
        if asyncio.iscoroutinefunction(attr):
            def call(*args, **kwargs):
                return self._run(attr(*args, **kwargs))
            call.__doc__ = attr.__doc__
            call.__name__ = name
            return call
        return attr
