"""Fast bit-exact model of the macro at register level.

:class:`FastMacroModel` answers register reads and writes exactly as the controller RTL does
(``docs/timing.md`` is the contract), with the analog array behind it simulated by
:class:`analog_models.array.MramArray`. It runs each command to completion inside the write that
starts it, so STATUS.BUSY is never seen, FLAGS.REFUSED and FLAGS.ABORTED are never set, and a
poll of FLAGS right after the command already shows DONE.

What the model shares with the RTL, and what it does not model:

- Codes, activations and timeouts come from :func:`rtl.reference.tdc_codes`, the executable
  form of the "Codes" rules, so they are the RTL's by construction.
- A row write issues write pulses and verify senses to the array in the RTL's order (side A
  pulse, side B pulse, sense A, sense B, per round), so the array's random streams advance the
  same way as in co-simulation.
- The stale-read rule: a sense samples the new data only when
  ``read_latency_ps < READ_PULSE.CYCLES * T``; otherwise it samples what ``rd_data`` held before,
  which the model takes to be the data of the previous sense (initially all zeros). This assumes
  the latency is shorter than the time between two senses, which holds for every preset.
- Timing (cycle counts, STATUS.STATE values other than idle) is not modelled.

Decisions where the timing contract is silent (the RTL must match them; see docs/firmware.md):
a command with an unknown OP, or a row command with ROW >= rows, sets only FLAGS.BAD_CMD
(no DONE, LAST_OP unchanged); every accepted command sets FLAGS.DONE when it finishes;
OP_COUNT counts completed computes only; WRITE_STATUS.ROW follows READ_ROW too; SOFT_RESET
clears the sequencers' result registers (RDATA, FAIL_MASK, WRITE_STATUS, CODE, ACT, TMO) but
keeps configuration, flags, counters and LAST_OP; the address decoder looks at address bits
``[ADDR_BITS-1:2]`` only. All of these follow ``rtl/mram_cim.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from macro_spec.params import BUS_DATA_BITS, MacroParams
from macro_spec.regmap import (
    ADDR_BITS, FLAG_DONE, FLAG_BAD_CMD, FLAG_QUEUE, FLAG_TIMEOUT, FLAG_WRITE_FAIL,
    OP_COMPUTE, OP_COMPUTE_BATCH, OP_NAMES, OP_READ_ROW, OP_WRITE_ROW, REGISTERS, Register, reg,
)
from rtl.reference import tdc_codes

from .regs import RESP_SLVERR, WORD_MASK, BusError, RegisterAccess, check_word

_COUNT_MASK = WORD_MASK  # OP_COUNT and RETRY_TOTAL wrap at 32 bits
_CMD_FIELDS = tuple(reg("CMD").field(n) for n in ("OP", "ROW", "SIDE"))
_WS_FIELDS = tuple(reg("WRITE_STATUS").field(n) for n in ("ROUNDS", "ROW", "FAILED"))


def _fields_mask(r: Register) -> int:
    """The bits of a register that belong to a field (a read returns only those)."""
    keep = 0
    for f in r.fields:
        keep |= f.mask
    return keep


def _resolve_config(config):
    """A MacroConfig from a config object or a preset name."""
    if isinstance(config, str):
        from analog_models.config import preset
        return preset(config)
    return config


def _bits_to_words_np(bits: np.ndarray, n_words: int) -> list[int]:
    """Pack a 1-D bool array into 32-bit words, element 0 in bit 0 of word 0."""
    padded = np.zeros(n_words * BUS_DATA_BITS, dtype=bool)
    padded[: bits.shape[0]] = bits
    # Little-endian bit order in little-endian 32-bit words: bit i of the vector is bit i % 32
    # of word i // 32.
    return np.packbits(padded, bitorder="little").view("<u4").tolist()


def _words_to_bits_np(words: list[int], n_bits: int) -> np.ndarray:
    """Inverse of :func:`_bits_to_words_np`."""
    raw = np.array(words, dtype="<u4").view(np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n_bits].astype(bool)


def _result_words(p: MacroParams, codes: np.ndarray, act: np.ndarray, tmo: np.ndarray,
                  packed: bool = False) -> list[int]:
    """BATCH_OUT words of a batch: per vector the CODE words (or the packed code words), the
    ACT words, the TMO words."""
    from .regs import pack_codes

    cw, fb, _ = p.batch_result_layout(packed)
    out: list[int] = []
    for c, a, t in zip(codes, act, tmo):
        out += pack_codes(c, fb, cw)
        out += _bits_to_words_np(a, p.col_words) + _bits_to_words_np(t, p.col_words)
    return out


class FastMacroModel(RegisterAccess):
    """Register-level model of one macro instance: controller rules plus analog array.

    Parameters
    ----------
    params : MacroParams
        Geometry (rows, columns, TDC width, synchroniser depth).
    config : analog_models.config.MacroConfig or str
        Analog configuration, or the name of a preset (``"ideal"``, ``"paper"``, ...).
    seed : int
        Seed of the analog model's random streams.
    instance : int
        Array instance number (keys the random streams, so several arrays differ).
    fault_map : optional
        Fault map passed through to :class:`analog_models.array.MramArray`.

    Attributes
    ----------
    array : analog_models.array.MramArray
        The simulated array behind the pins (tests may inspect or modify it).
    config : MacroConfig
        The analog configuration.
    params : MacroParams
        The geometry.
    """

    synchronous = True

    #: Capability flag the driver looks for: :meth:`compute_batch` exists.
    supports_batch = True

    def __init__(self, params: MacroParams, config, seed: int = 0, instance: int = 0,
                 fault_map=None):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        from analog_models.array import MramArray

        self.params = params
        self.config = _resolve_config(config)
        self.array = MramArray(self.config, params.rows, params.cols, seed=seed,
                               instance=instance, fault_map=fault_map)
        self._clock_period_ps = int(self.config.clock_period_ps)
        self._read_latency_ps = int(self.config.read_latency_ps)
        # Word index (address >> 2) -> (register, index in window), for the words that exist.
        self._decode: dict[int, tuple[Register, int]] = {}
        for r in REGISTERS:
            for i in range(r.words(params)):
                self._decode[(r.offset >> 2) + i] = (r, i)
        # Per register, the bits a read returns and the bits a write keeps (the map is
        # constant, so these are worked out once instead of on every access).
        self._read_mask = {r.name: _fields_mask(r) for r in REGISTERS}
        self._write_mask = {r.name: r.writable_mask for r in REGISTERS}
        # (register, field) -> (first word index, Field), for _get.
        self._field_at: dict[tuple[str, str | None], tuple[int, Any]] = {}
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Hardware reset of the controller: every register to its reset value.

        The array's contents (the MTJ states) are kept, as on the chip.
        """
        p = self.params
        self._rw: dict[int, int] = {}
        for word, (r, _i) in self._decode.items():
            if r.access == "RW":
                self._rw[word] = r.reset_value(p)
        self._flags = 0
        self._op_count = 0
        self._retry_total = 0
        self._last_op = 0
        self._reset_sequencers()
        # What the array drives on rd_data; the stale-read rule samples it.
        self._rd_data_pin = np.zeros(p.cols, dtype=bool)

    def _reset_sequencers(self) -> None:
        """What SOFT_RESET clears: the sequencers' registers (results included), as the RTL's
        reset inserter on both sequencers does. Configuration, flags and counters survive."""
        p = self.params
        self._seq_row = 0      # row of the last WRITE_ROW or READ_ROW (WRITE_STATUS.ROW)
        self._seq_rounds = 0   # retry rounds of the last WRITE_ROW (WRITE_STATUS.ROUNDS)
        self._rdata = [0] * p.col_words
        self._fail_mask = [0] * p.col_words
        self._act = [0] * p.col_words
        self._tmo = [0] * p.col_words
        self._code = [0] * p.code_words
        # Batch queues (the RTL's BatchQueue sits under the same reset inserter).
        self._batch_in: list[list[int]] = []   # complete input vectors, as X words
        self._batch_partial: list[int] = []     # words of the vector being received
        self._batch_out: list[int] = []         # result words of the last batch
        self._batch_out_pos = 0                  # words of it already popped
        self._batch_packed = False               # its results are packed (BATCH_STATUS.PACKED)

    def _get(self, name: str, field: str | None = None, index: int = 0) -> int:
        """Value of an RW register (or one of its fields) as stored."""
        at = self._field_at.get((name, field))
        if at is None:
            r = reg(name)
            at = self._field_at[(name, field)] = (r.offset >> 2, None if field is None else r.field(field))
        base, f = at
        word = self._rw[base + index]
        return word if f is None else f.extract(word)

    def _set_rw_window(self, name: str, words: list[int]) -> None:
        r = reg(name)
        for i, w in enumerate(words):
            self._rw[(r.offset >> 2) + i] = w & r.writable_mask

    @property
    def irq(self) -> bool:
        """The interrupt output: OR of FLAGS & IRQ_EN."""
        return bool(self._flags & self._get("IRQ_EN"))

    @property
    def flags(self) -> int:
        """Current FLAGS word (for tests; software reads the register)."""
        return self._flags

    # ---------------------------------------------------------- bus interface

    def _lookup(self, addr: int, write: bool) -> tuple[Register, int]:
        if isinstance(addr, bool) or not isinstance(addr, (int, np.integer)) or addr < 0:
            raise ValueError(f"register address must be a non-negative integer, not {addr!r}")
        # Like rtl.axi_lite: the bus carries ADDR_BITS address bits, the decoder uses [.. : 2].
        word = (int(addr) & ((1 << ADDR_BITS) - 1)) >> 2
        try:
            return self._decode[word]
        except KeyError:
            raise BusError(int(addr), RESP_SLVERR, write, "unmapped address") from None

    def read_sync(self, addr: int) -> int:
        """Synchronous :meth:`read` (the model never waits)."""
        r, i = self._lookup(addr, write=False)
        word = (r.offset >> 2) + i
        if r.access == "RW":
            return self._rw[word]
        if r.access == "WO":
            return 0
        if r.const:
            return r.reset_value(self.params)
        if r.name == "BATCH_OUT":
            return self._pop_result()
        return self._ro_value(r.name, i) & self._read_mask[r.name]

    def _ro_value(self, name: str, i: int) -> int:
        if name == "FLAGS":
            return self._flags
        if name == "STATUS":
            # Never busy, state 0 (idle): commands complete inside the write that starts them.
            return reg("STATUS").field("LAST_OP").insert(self._last_op)
        if name == "OP_COUNT":
            return self._op_count
        if name == "WRITE_STATUS":
            rounds, row, failed = _WS_FIELDS
            return (rounds.insert(self._seq_rounds) | row.insert(self._seq_row)
                    | failed.insert(int(any(self._fail_mask))))
        if name == "RETRY_TOTAL":
            return self._retry_total
        if name == "BATCH_STATUS":
            rw = self.params.batch_result_layout(self._batch_packed)[2]
            out_words = len(self._batch_out) - self._batch_out_pos
            bs = reg("BATCH_STATUS")
            return (bs.field("IN_LEVEL").insert(len(self._batch_in))
                    | bs.field("IN_WORDS").insert(len(self._batch_partial))
                    | bs.field("OUT_LEVEL").insert(-(-out_words // rw))
                    | bs.field("OUT_WORD").insert(self._batch_out_pos % rw if out_words else 0)
                    | bs.field("PACKED").insert(int(self._batch_packed)))
        window = {"RDATA": self._rdata, "FAIL_MASK": self._fail_mask, "ACT": self._act,
                  "TMO": self._tmo, "CODE": self._code}
        if name in window:
            return window[name][i]
        raise AssertionError(f"model has no value for read-only register {name}")  # map changed

    def write_sync(self, addr: int, value: int) -> None:
        """Synchronous :meth:`write`; a command runs to completion before this returns."""
        r, i = self._lookup(addr, write=True)
        value = check_word(value)
        if r.access == "RO":
            raise BusError(int(addr), RESP_SLVERR, True, f"{r.name} is read-only")
        word = (r.offset >> 2) + i
        if r.access == "RW":
            self._rw[word] = value & self._write_mask[r.name]
        elif r.access == "W1C":
            self._flags &= ~value
        elif r.name == "CMD":
            self._command(value)
        elif r.name == "BATCH_IN":
            self._push_input(value)
        elif r.name == "SOFT_RESET":
            # Nothing is ever running in the model, so nothing is aborted (no ABORTED flag);
            # the sequencers' registers are reset as in the RTL.
            if reg("SOFT_RESET").field("RESET").extract(value):
                self._reset_sequencers()
        else:  # pragma: no cover - a new WO register in the map
            raise AssertionError(f"model does not implement write-only register {r.name}")

    def _push_input(self, word: int) -> None:
        """BATCH_IN: append a word; a full queue drops it and sets FLAGS.QUEUE."""
        p = self.params
        if len(self._batch_in) == p.batch_depth:
            self._flags |= FLAG_QUEUE
            return
        self._batch_partial.append(word)
        if len(self._batch_partial) == p.row_words:
            self._batch_in.append(self._batch_partial)
            self._batch_partial = []

    def _pop_result(self) -> int:
        """BATCH_OUT: the next result word; an empty queue reads 0 and sets FLAGS.QUEUE."""
        if self._batch_out_pos == len(self._batch_out):
            self._flags |= FLAG_QUEUE
            return 0
        word = self._batch_out[self._batch_out_pos]
        self._batch_out_pos += 1
        return word

    async def read(self, addr: int) -> int:
        """Read one word; see :meth:`read_sync`."""
        return self.read_sync(addr)

    async def write(self, addr: int, value: int) -> None:
        """Write one word; see :meth:`write_sync`."""
        self.write_sync(addr, value)

    # The block transfers of RegisterAccess, word by word through read_sync/write_sync
    # directly (the same accesses in the same order, without a coroutine per word).

    async def read_block(self, addr: int, n: int) -> list[int]:
        """Read ``n`` consecutive words starting at ``addr``."""
        return [self.read_sync(addr + 4 * i) for i in range(n)]

    async def write_block(self, addr: int, values) -> None:
        """Write consecutive words starting at ``addr``."""
        for i, v in enumerate(values):
            self.write_sync(addr + 4 * i, v)

    async def read_fifo(self, addr: int, n: int) -> list[int]:
        """Read the word at ``addr`` ``n`` times (a queue register that pops on every read)."""
        return [self.read_sync(addr) for _ in range(n)]

    async def write_fifo(self, addr: int, values) -> None:
        """Write every value to the same address ``addr``, in order (a queue register)."""
        for v in values:
            self.write_sync(addr, v)

    # --------------------------------------------------------------- commands

    def _command(self, word: int) -> None:
        op, row, side = (f.extract(word) for f in _CMD_FIELDS)
        if op not in OP_NAMES or (op in (OP_WRITE_ROW, OP_READ_ROW) and row >= self.params.rows):
            self._flags |= FLAG_BAD_CMD
            return
        if op == OP_COMPUTE_BATCH and (not self._batch_in or self._batch_partial):
            # Nothing complete to run, or a vector half received: refused as a bad command.
            self._flags |= FLAG_BAD_CMD
            return
        self._last_op = op
        if op == OP_COMPUTE:
            x = _words_to_bits_np(self._rw_window("X"), self.params.rows)
            self._compute(x[None, :])
        elif op == OP_COMPUTE_BATCH:
            self._compute_queue()
        elif op == OP_WRITE_ROW:
            w = _words_to_bits_np(self._rw_window("WDATA"), self.params.cols)
            self._write_rows(np.array([row]), w[None, :])
        else:
            # The access sequencer latches the row for reads too (WRITE_STATUS.ROW shows it).
            self._seq_row = row
            self._rdata = _bits_to_words_np(self._sense(row, side), self.params.col_words)
        self._flags |= FLAG_DONE

    def _rw_window(self, name: str) -> list[int]:
        r = reg(name)
        base = r.offset >> 2
        return [self._rw[base + i] for i in range(r.words(self.params))]

    def _tdc_settings(self) -> dict[str, Any]:
        p = self.params
        return dict(
            clock_period_ps=self._clock_period_ps,
            sync_stages=p.sync_stages,
            tdc_bits=p.tdc_bits,
            window_start_cycles=self._get("TDC_WINDOW", "START_CYCLES"),
            timeout_cycles=self._get("TDC_TIMEOUT", "CYCLES"),
            step_cycles=self._get("TDC_STEP", "CYCLES"),
            code_max=self._get("TDC_CODE_MAX", "MAX"),
            offsets=np.array([self._get("COL_OFFSET", "VALUE", j) for j in range(p.cols)],
                             dtype=np.int64),
            thresholds=np.array([self._get("COL_THRESH", "VALUE", j) for j in range(p.cols)],
                                dtype=np.int64),
        )

    def _compute(self, x_bits: np.ndarray):
        """Evaluate a batch; publish the last result as the registers would show it."""
        p = self.params
        n = x_bits.shape[0]
        settings = self._tdc_settings()
        codes = np.empty((n, p.cols), dtype=np.int64)
        act = np.empty((n, p.cols), dtype=bool)
        tmo = np.empty((n, p.cols), dtype=bool)

        def to_codes(fire_ps, r0, r1):
            # tdc_codes is elementwise per column, so block by block gives the same numbers
            # as on the whole batch; the array calls this as each block's fire times are ready.
            tdc_codes(fire_ps, **settings, out=(codes[r0:r1], act[r0:r1], tmo[r0:r1]))

        if self._array_own("evaluate"):
            # The controller sees a fire time only through the clock cycle it falls in (and
            # the sentinels): that is all the codes depend on, so the array need not resolve more.
            self.array.evaluate(x_bits, post=to_codes, resolution_ps=self._clock_period_ps)
        else:
            to_codes(self.array.evaluate(x_bits), 0, n)
        if n:
            last_codes = codes[-1]
            fb = p.code_field_bits
            per_word = p.codes_per_word
            padded = np.zeros(p.code_words * per_word, dtype=np.int64)
            padded[: p.cols] = last_codes & ((1 << fb) - 1)
            shifts = (np.arange(per_word, dtype=np.int64) * fb)
            self._code = [int(w) for w in
                          (padded.reshape(p.code_words, per_word) << shifts).sum(axis=1)]
            self._act = _bits_to_words_np(act[-1], p.col_words)
            self._tmo = _bits_to_words_np(tmo[-1], p.col_words)
            self._op_count = (self._op_count + n) & _COUNT_MASK
            # FLAGS is sticky: after N computes without a clear, TIMEOUT is set if any timed out.
            self._flags |= FLAG_DONE
            if tmo.any():
                self._flags |= FLAG_TIMEOUT
        return codes, act, tmo

    def _compute_queue(self) -> None:
        """COMPUTE_BATCH: every queued vector, in order; the result queue holds their results."""
        p = self.params
        x = np.stack([_words_to_bits_np(w, p.rows) for w in self._batch_in])
        self._batch_in = []
        codes, act, tmo = self._compute(x)
        # Packed as the RTL decides it at the start: CTRL.PACK_CODES, and no code above 15.
        self._batch_packed = bool(self._get("CTRL", "PACK_CODES")) and p.packs_codes(self._get("TDC_CODE_MAX", "MAX"))
        self._batch_out = _result_words(p, codes, act, tmo, self._batch_packed)
        self._batch_out_pos = 0

    def _sense(self, row: int, side: int) -> np.ndarray:
        """One sense pulse, with the stale-read rule of docs/timing.md."""
        fresh = np.asarray(self.array.sense(row, side), dtype=bool).copy()
        return self._sample(fresh, self._reads_fresh())

    def _reads_fresh(self) -> bool:
        """Whether a sense samples the new data: ``read_latency_ps < READ_PULSE.CYCLES * T``."""
        read_cycles = max(1, self._get("READ_PULSE", "CYCLES"))
        return self._read_latency_ps < read_cycles * self._clock_period_ps

    def _sample(self, fresh: np.ndarray, reads_fresh: bool) -> np.ndarray:
        """What the controller samples from ``rd_data`` when the array drives ``fresh``."""
        if reads_fresh:
            sample = fresh
        else:
            # The data arrives after the sampling edge: the controller sees the old pin value.
            sample = self._rd_data_pin.copy()
        self._rd_data_pin = fresh
        return sample

    def _array_own(self, *names: str) -> bool:
        """Whether the array's methods ``names`` are :class:`MramArray`'s own.

        The model's fast paths (a whole write round in one call, an evaluation that hands over
        fire times block by block) are, by definition, the same as the plain pin operations;
        when a test wraps those on the instance to log or disturb the pin traffic, the model
        uses the plain operations.
        """
        from analog_models.array import MramArray

        a = self.array
        own = getattr(a, "__dict__", {})
        return all(getattr(type(a), m, None) is getattr(MramArray, m) and m not in own for m in names)

    def _fused_rounds(self) -> bool:
        """Whether write rounds may use :meth:`MramArray.write_row_rounds`, the array's
        ``write_pulse, write_pulse, sense, sense`` of one or more rounds with the draws made
        together."""
        return self._array_own("write_row_rounds", "write_pulse", "sense")

    def _samples(self, fresh_a: np.ndarray, fresh_b: np.ndarray, reads_fresh: bool) -> tuple[np.ndarray, np.ndarray]:
        """What the controller samples from consecutive rounds' senses (A then B in each round),
        shape (rounds, cols) each: :meth:`_sample` of every sense in turn, the pin left as is."""
        if reads_fresh:
            return fresh_a, fresh_b
        # Each sense samples what the sense before it left on the pin.
        sample_a = np.empty_like(fresh_a)
        sample_a[0] = self._rd_data_pin
        sample_a[1:] = fresh_b[:-1]
        return sample_a, fresh_a

    def _rounds(self, rows: np.ndarray, w: np.ndarray, en_a: np.ndarray, en_b: np.ndarray, pulse_ps: int,
                verify: bool, reads_fresh: bool) -> tuple[int, np.ndarray | None, np.ndarray | None]:
        """Write rounds on the distinct ``rows`` in turn, as the controller issues them, until a
        verify samples a wrong bit (that row's retries must come before anything else).

        Round ``k`` pulses side A of ``rows[k]`` towards ``w[k]`` on the columns ``en_a[k]``, side
        B towards ``~w[k]`` on ``en_b[k]`` (a side without an enabled column is not pulsed), then
        senses A and B when ``verify``. Returns the number of rounds done and the sampled A and
        B bits of the last one (None without verify).
        """
        n, not_w = len(rows), ~w
        if self._fused_rounds():
            last: dict[str, np.ndarray] = {}

            def keep(fresh_a, fresh_b) -> int:
                if fresh_a is None:  # no verify: every round stands
                    return n
                sample_a, sample_b = self._samples(fresh_a, fresh_b, reads_fresh)
                wrong = np.any(sample_a != w, axis=1)
                wrong |= np.any(sample_b != not_w, axis=1)
                done = int(np.argmax(wrong)) + 1 if wrong.any() else n
                last.update(a=sample_a[done - 1], b=sample_b[done - 1], pin=fresh_b[done - 1])
                return done

            _, pulsed, _ = self.array.write_row_rounds(rows, w, en_a, not_w, en_b, pulse_ps, sense=verify,
                                                       keep=keep)
            if not verify:
                return n, None, None
            self._rd_data_pin = last["pin"]
            return len(pulsed), last["a"], last["b"]
        a = b = None
        for k in range(n):  # the plain pin operations, one at a time
            row = int(rows[k])
            if en_a[k].any():
                self.array.write_pulse(row, 0, w[k].copy(), en_a[k].copy(), pulse_ps)
            if en_b[k].any():
                self.array.write_pulse(row, 1, not_w[k].copy(), en_b[k].copy(), pulse_ps)
            if verify:
                a = self._sense(row, 0)
                b = self._sense(row, 1)
                if (a != w[k]).any() or (b != not_w[k]).any():
                    return k + 1, a, b
        return n, a, b

    #: Rows whose first write rounds :meth:`_write_rows` computes together. A row that needs a
    #: retry ends the group (the rows after it are computed again, with later draw counters);
    #: under ``paper`` one row in ten does, so a group of 16 wastes little and saves most of the
    #: per-round overhead.
    _FIRST_ROUNDS = 16

    def _write_rows(self, rows: np.ndarray, wdata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """WRITE_ROW of ``rows[k]`` with the data ``wdata[k]`` for every k in turn: the pulse /
        verify / retry loop of docs/timing.md, in the RTL's pin order.

        Returns each row's retry rounds (n,) and columns still wrong (n, cols); WRITE_STATUS,
        FAIL_MASK and RETRY_TOTAL end as the last command leaves them, FLAGS.WRITE_FAIL is set
        if a row failed.
        """
        p = self.params
        n = len(rows)
        pulse_ps = max(1, self._get("WRITE_PULSE", "CYCLES")) * self._clock_period_ps
        verify = bool(self._get("CTRL", "VERIFY_EN"))
        max_rounds = self._get("WRITE_RETRIES", "MAX")
        # Configuration cannot change while a command runs (it completes inside one write).
        reads_fresh = self._reads_fresh()
        rounds = np.zeros(n, dtype=np.int64)
        fail = np.zeros((n, p.cols), dtype=bool)
        k = 0
        while k < n:
            # First rounds (every column pending) of the next rows, until one fails its verify.
            group = slice(k, k + self._FIRST_ROUNDS)
            ones = np.ones(wdata[group].shape, dtype=bool)
            done, a, b = self._rounds(rows[group], wdata[group], ones, ones, pulse_ps, verify, reads_fresh)
            k += done - 1  # the last of them: its retries, if it needs any
            w, not_w = wdata[k], ~wdata[k]
            while verify:
                pending_a = a != w
                pending_b = b != not_w
                if not (pending_a.any() or pending_b.any()):
                    break
                if rounds[k] == max_rounds:
                    fail[k] = pending_a | pending_b
                    break
                rounds[k] += 1
                self._retry_total = (self._retry_total + 1) & _COUNT_MASK
                _, a, b = self._rounds(rows[k:k + 1], wdata[k:k + 1], pending_a[None], pending_b[None],
                                       pulse_ps, verify, reads_fresh)
            k += 1
        self._seq_row = int(rows[-1])
        self._seq_rounds = int(rounds[-1])
        self._fail_mask = _bits_to_words_np(fail[-1], p.col_words)
        if fail.any():
            self._flags |= FLAG_WRITE_FAIL
        return rounds, fail

    # ------------------------------------------------------------ fast paths

    def compute_batch(self, x_bits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run one COMPUTE per input vector, at numpy speed.

        The result, the array's random streams, and the registers afterwards (X, CODE, ACT, TMO,
        OP_COUNT, FLAGS, STATUS.LAST_OP) are exactly those of ``batch`` COMPUTE commands issued
        one after another with the X registers loaded each time and FLAGS not cleared between
        them.

        Parameters
        ----------
        x_bits : array_like of bool, shape (batch, rows)
            Input bits, True meaning +1.

        Returns
        -------
        codes : numpy.ndarray of int64, shape (batch, cols)
        act : numpy.ndarray of bool, shape (batch, cols)
        tmo : numpy.ndarray of bool, shape (batch, cols)
        """
        x = np.asarray(x_bits)
        if x.ndim != 2 or x.shape[1] != self.params.rows:
            raise ValueError(f"x_bits must have shape (batch, {self.params.rows}), not {x.shape}")
        if x.dtype != bool:
            if not np.isin(x, (0, 1)).all():
                raise ValueError("x_bits must be booleans (or 0/1)")
            x = x.astype(bool)
        if x.shape[0] == 0:
            cols = self.params.cols
            return (np.zeros((0, cols), np.int64), np.zeros((0, cols), bool),
                    np.zeros((0, cols), bool))
        self._set_rw_window("X", _bits_to_words_np(x[-1], self.params.row_words))
        self._last_op = OP_COMPUTE
        return self._compute(x)

    def write_rows(self, data_low, rows=None) -> tuple[np.ndarray, np.ndarray]:
        """Run one WRITE_ROW per row, without the bus.

        The array's operations and random streams, and the registers afterwards (WDATA,
        WRITE_STATUS, FAIL_MASK, RETRY_TOTAL, FLAGS, STATUS.LAST_OP), are exactly those of the
        WRITE_ROW commands issued one after another with WDATA loaded each time and FLAGS not
        cleared between them; the first rounds of consecutive rows are computed together.

        Parameters
        ----------
        data_low : array_like of bool, shape (n, cols)
            The WDATA bits of each command (True = weight +1: A low, B high).
        rows : sequence of int, shape (n,), optional
            The distinct rows written; default 0 .. n-1.

        Returns
        -------
        rounds : numpy.ndarray of int64, shape (n,)
            Retry rounds of each row (WRITE_STATUS.ROUNDS after its command).
        fail : numpy.ndarray of bool, shape (n, cols)
            Columns still wrong after the last retry (FAIL_MASK; all False unless the row failed).
        """
        p = self.params
        bits = np.asarray(data_low)
        if bits.ndim != 2 or bits.shape[1] != p.cols:
            raise ValueError(f"data_low must have shape (n, {p.cols}), not {bits.shape}")
        if bits.dtype != bool:
            if not np.isin(bits, (0, 1)).all():
                raise ValueError("data_low must be booleans (or 0/1)")
            bits = bits.astype(bool)
        r = np.arange(bits.shape[0]) if rows is None else np.asarray(rows)
        if r.shape != (bits.shape[0],) or (r.size and (r.dtype == bool or not np.issubdtype(r.dtype, np.integer)
                                                      or r.min() < 0 or r.max() >= p.rows)):
            raise ValueError(f"rows must be {bits.shape[0]} row numbers below {p.rows}, not {rows!r}")
        if np.unique(r).size != r.size:
            raise ValueError("rows must be distinct")
        if not r.size:
            return np.zeros(0, dtype=np.int64), np.zeros((0, p.cols), dtype=bool)
        self._set_rw_window("WDATA", _bits_to_words_np(bits[-1], p.col_words))
        self._last_op = OP_WRITE_ROW
        rounds, fail = self._write_rows(r, bits)
        self._flags |= FLAG_DONE
        return rounds, fail
