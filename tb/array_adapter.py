"""The MRAM array behind the controller's pins, in cocotb: the analog model answering edges.

The adapter watches the digital array pins of ``mram_cim`` and answers as the silicon would
(docs/timing.md): on ``evaluate`` it asks the analog model for every column's fire time at once
and drives each comparator's rising edge at ``fire_ps + 0.5`` ps (sorted, waiting only the
differences, never polling the clock); precharge clears them; a write pulse goes through the
switching model with its measured width when ``wr_en`` falls; a read senses when ``rd_en``
rises and drives ``rd_data`` after the analog latency. The stored MTJ states live in the
:class:`~analog_models.array.MramArray`, so they survive a controller reset as non-volatile
memory does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from cocotb.handle import _GPISetAction
from cocotb.triggers import FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from analog_models.array import FIRE_ALREADY, FIRE_NEVER, MramArray

from .shim import SHIM_DELAY_BITS, SHIM_NEVER

FS_PER_PS = 1000
#: cocotb's action code for a write applied at once (its ``Immediate``).
_NO_DELAY = _GPISetAction.NO_DELAY.value


def _gpi(handle):
    """The GPI object behind a cocotb 2.1 handle: reads and writes of it skip cocotb's
    LogicArray conversions and range checks, which cost more than the access on the adapter's
    once-per-operation path."""
    return handle._handle


def shim_delay_binstr(fire: np.ndarray) -> tuple[str, int]:
    """A shim slot's delay vector for the model's fire times, as the binary text the simulator
    takes (most significant bit first: the last column's delay first), and the last finite
    delay in picoseconds (-1 if no column fires).

    Each column's delay is its fire time in picoseconds; a column that never fires
    (:data:`FIRE_NEVER`, or a time the 32-bit field cannot hold) and one whose comparator is
    stuck high (:data:`FIRE_ALREADY`, which the shim's ``shim_high`` holds) get
    :data:`SHIM_NEVER`.
    """
    # As unsigned, FIRE_ALREADY (-1) is the largest value: every sentinel clips to SHIM_NEVER.
    delays = np.minimum(fire.view(np.uint64), SHIM_NEVER).astype("<u4")
    last = int(delays.max())
    if last == SHIM_NEVER:  # some column never fires: the last edge is the largest other delay
        finite = delays[delays != SHIM_NEVER]
        last = int(finite.max()) if finite.size else -1
    return format(int.from_bytes(delays.tobytes(), "little"), f"0{SHIM_DELAY_BITS * len(delays)}b"), last


def int_to_bits(value: int, n: int) -> np.ndarray:
    """Unsigned integer to a bool vector, bit 0 first."""
    raw = np.frombuffer(int(value).to_bytes((n + 7) // 8, "little"), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(bool)


def pins_to_bits(value, n: int) -> np.ndarray:
    """A pin vector's value (as cocotb reads it) as a bool vector, bit 0 first.

    Straight from the value's text (one character per bit, most significant first), without
    an integer in between: the array adapter does this once per evaluation.

    Raises
    ------
    ValueError
        If the vector is not ``n`` bits of 0 and 1 (an x or z on the pins).
    """
    text = str(value)
    # str.strip tests the characters in C: cheaper than numpy calls on 64 bytes.
    if len(text) != n or text.strip("01"):
        raise ValueError(f"expected {n} bits of 0 and 1 on the array pins, got {text!r}")
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8)[::-1] == ord("1")


def bits_to_int(bits) -> int:
    """Bool vector (bit 0 first) to an unsigned integer."""
    return int.from_bytes(np.packbits(np.asarray(bits, dtype=bool), bitorder="little").tobytes(), "little")


@dataclass
class Evaluation:
    """One evaluation seen at the pins: the input bits and the fire times the model gave."""

    x_bits: np.ndarray
    fire_ps: np.ndarray


@dataclass
class PinLog:
    """What the adapter saw, for scoreboards and tests."""

    evaluations: list = field(default_factory=list)
    pulses: list = field(default_factory=list)   # (row, side, data_low, enable, width_ps)
    senses: list = field(default_factory=list)   # (row, side, bits)


class ArrayAdapter:
    """Connects an :class:`MramArray` to the ``array__*`` pins of a cocotb DUT.

    Parameters
    ----------
    dut : cocotb handle of ``mram_cim``.
    array : MramArray
        The analog model; its geometry must match the DUT's.
    read_latency_ps : int
        Sense latency (from the configuration).
    stuck_high_cols : array_like of bool, optional
        Comparators stuck high: held high at all times, also through precharge.
    shim : bool
        The DUT is the :mod:`tb.shim` wrapper: load all fire times at once and let the
        simulator schedule the edges, instead of one Python wake-up per fire time.
    """

    def __init__(self, dut, array: MramArray, read_latency_ps: int, stuck_high_cols=None, shim: bool = False):
        self.dut = dut
        self.array = array
        self.rows, self.cols = array.rows, array.cols
        width = len(dut.shim_high if shim else dut.array__cmp)
        if width != self.cols or len(dut.array__x) != self.rows:
            raise ValueError(f"array model is {self.rows}x{self.cols} but the DUT's pins are "
                             f"{len(dut.array__x)}x{width}")
        self.read_latency_ps = int(read_latency_ps)
        stuck = np.zeros(self.cols, bool) if stuck_high_cols is None else np.asarray(stuck_high_cols, bool)
        self.stuck_high_mask = bits_to_int(stuck)
        self.log = PinLog()
        self.shim = shim
        # Triggers built once (cocotb caches edge triggers per signal anyway).
        self._eval_rise = RisingEdge(dut.array__evaluate)
        self._eval_fall = FallingEdge(dut.array__evaluate)
        self._wr_rise = RisingEdge(dut.array__wr_en)
        self._wr_fall = FallingEdge(dut.array__wr_en)
        self._rd_rise = RisingEdge(dut.array__rd_en)
        self._gpi_x = _gpi(dut.array__x)
        self._tasks = []

    def start(self):
        """Drive the idle pin values and start the pin-answering coroutines."""
        import cocotb

        if self.shim:
            from .shim import SHIM_SLOTS

            self.dut.shim_high.value = self.stuck_high_mask
            self._go = [0] * SHIM_SLOTS
            # Simulation time (fs) after which each slot has no edge in flight.
            self._slot_free_fs = [0] * SHIM_SLOTS
            self._slot = 0
            # The slots' handles, looked up once (a lookup by name costs more than the write).
            go = [getattr(self.dut, f"shim_go{k}") for k in range(SHIM_SLOTS)]
            for h in go:
                h.value = 0
            self._gpi_go = [_gpi(h) for h in go]
            self._gpi_delay = [_gpi(getattr(self.dut, f"shim_delay{k}_ps")) for k in range(SHIM_SLOTS)]
            loops = (self._evaluate_shim_loop, self._write_loop, self._read_loop)
        else:
            self.dut.array__cmp.value = self.stuck_high_mask
            loops = (self._evaluate_loop, self._write_loop, self._read_loop)
        self.dut.array__rd_data.value = 0
        self._tasks = [cocotb.start_soon(c()) for c in loops]
        return self

    def stop(self):
        """Stop answering (the model keeps its state)."""
        for t in self._tasks:
            t.cancel()
        self._tasks = []

    async def _next_evaluation(self) -> np.ndarray:
        """Wait for ``evaluate`` to rise; return (and log) the model's fire times for the inputs."""
        await self._eval_rise
        x = pins_to_bits(self._gpi_x.get_signal_val_binstr(), self.rows)
        fire = self.array.evaluate(x)       # one vector: the model's single-evaluation path
        self.log.evaluations.append(Evaluation(x, fire))
        return fire

    async def _evaluate_loop(self):
        dut = self.dut
        while True:
            fire = await self._next_evaluation()
            value = self.stuck_high_mask | bits_to_int(fire == FIRE_ALREADY)
            dut.array__cmp.value = value
            times = np.unique(fire[(fire >= 0) & (fire < FIRE_NEVER)])
            now_fs = 0
            precharged = False
            for t in times:
                # Edge in the middle of its 1-ps bin: never on a clock edge (docs/timing.md).
                target_fs = int(t) * FS_PER_PS + FS_PER_PS // 2
                fired = await First(Timer(target_fs - now_fs, unit="fs"), self._eval_fall)
                if fired is self._eval_fall:
                    precharged = True
                    break
                now_fs = target_fs
                value |= bits_to_int(fire == t)
                dut.array__cmp.value = value
            if not precharged:
                await self._eval_fall
            dut.array__cmp.value = self.stuck_high_mask

    async def _evaluate_shim_loop(self):
        while True:
            fire = await self._next_evaluation()
            delays, last_ps = shim_delay_binstr(fire)
            now_fs = get_sim_time("fs")
            # A slot whose edges have all landed (see tb/shim.py: never reload a busy slot).
            n = len(self._go)
            for step in range(n):
                k = (self._slot + step) % n
                if self._slot_free_fs[k] <= now_fs:
                    break
            else:
                raise RuntimeError(f"all {n} comparator-shim slots still hold edges of earlier evaluations "
                                   "(evaluations much shorter than their fire times); use the Python edge path")
            self._slot = (k + 1) % n
            self._slot_free_fs[k] = now_fs + (last_ps + 1) * FS_PER_PS
            # Both at once (no wait for the read-write phase): the delays first, then the toggle
            # that starts the slot's processes, in this time step as before.
            self._gpi_delay[k].set_signal_val_binstr(_NO_DELAY, delays)
            self._go[k] ^= 1
            self._gpi_go[k].set_signal_val_int(_NO_DELAY, self._go[k])

    async def _write_loop(self):
        dut = self.dut
        while True:
            await self._wr_rise
            start_fs = get_sim_time("fs")
            row, side = int(dut.array__row.value), int(dut.array__side.value)
            data = int_to_bits(int(dut.array__wr_data.value), self.cols)
            enable = int_to_bits(int(dut.array__wr_cols.value), self.cols)
            await self._wr_fall
            width_ps = (get_sim_time("fs") - start_fs) // FS_PER_PS
            self.array.write_pulse(row, side, data, enable, int(width_ps))
            self.log.pulses.append((row, side, data, enable, int(width_ps)))

    async def _read_loop(self):
        dut = self.dut
        while True:
            await self._rd_rise
            row, side = int(dut.array__row.value), int(dut.array__side.value)
            bits = np.asarray(self.array.sense(row, side), dtype=bool)
            self.log.senses.append((row, side, bits))
            await Timer(self.read_latency_ps * FS_PER_PS + FS_PER_PS // 2, unit="fs")
            dut.array__rd_data.value = bits_to_int(bits)
