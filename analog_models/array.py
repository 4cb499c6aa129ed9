"""The analog 64 x 64 (any rows x cols) STT-MRAM array behind the macro's digital pins.

:class:`MramArray` holds the non-volatile state (the magnetic state of every MTJ), the static
draws of a fabricated chip (resistances, comparator offsets, faults; re-derived from the seed),
and answers the pin-level operations of ``docs/timing.md``:

* :meth:`MramArray.evaluate` -- comparator fire times (integer ps) for input vectors;
* :meth:`MramArray.write_pulse` -- one write pulse on one side of one row;
* :meth:`MramArray.sense` -- the verify/read sense of one side of one row.

Every random draw is keyed by ``(seed, instance, stream, operation counter, device/column
index)`` (:mod:`analog_models.rng`), so a batch of N evaluations gives exactly the numbers of the
same N evaluations one at a time, and nothing depends on the order in which columns are handled.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import physics, rng
from .config import MacroConfig

__all__ = ["FIRE_ALREADY", "FIRE_NEVER", "DEVICE_FAULTS", "COLUMN_FAULTS", "FaultMap", "MramArray"]

#: Fire-time sentinel: the comparator was already high when evaluate rose (stuck high).
FIRE_ALREADY = -1
#: Fire-time sentinel: the column never fires (open column or device, comparator stuck low).
FIRE_NEVER = 2 ** 62

#: Device fault classes; the code stored in :attr:`FaultMap.device` is the position.
DEVICE_FAULTS = ("none", "stuck_low", "stuck_high", "shorted", "open")
#: Column fault classes; the code stored in :attr:`FaultMap.column` is the position.
COLUMN_FAULTS = ("none", "open", "comparator_stuck_high", "comparator_stuck_low")

_STATE_FORMAT = 1
_SIDES = {0: 0, 1: 1, "A": 0, "B": 1, "a": 0, "b": 1}
#: Geometry limit of the index packing ``(row*256 + col)*2 + side``.
_MAX_DIM = 255

#: Most evaluations computed together by :meth:`MramArray.evaluate`. A block's work arrays
#: (a dozen of rows x cols, 8-byte elements) stay in the cache from the first operation to the
#: last, instead of a 5 MB temporary of a 10,000-vector batch streaming through memory per
#: operation; and each numpy call does enough work that two threads seldom wait for the GIL
#: (it is taken around every call: 512 rows lose a third of the second thread's gain).
_EVAL_BLOCK = 1280
#: Evaluations whose read noise :meth:`MramArray._noise_ahead` draws at once, and the largest
#: batch that takes its noise from there (larger batches draw their own in one go anyway).
_NOISE_AHEAD = 64
_NOISE_AHEAD_MAX = 4


def _eval_threads() -> tuple[int, bool]:
    """(1 or 2, forced): ``MRAM_CIM_EVAL_THREADS`` if set (1 turns the helper thread off, 2
    uses it whatever the load), else 2 on a machine with more than one CPU."""
    setting = os.environ.get("MRAM_CIM_EVAL_THREADS")
    try:
        n = int(setting if setting is not None else os.cpu_count() or 1)
    except ValueError:
        n, setting = 1, None
    return max(1, min(2, n)), setting is not None


def _usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_idle() -> bool:
    """Whether a CPU is idle for the helper thread right now: the kernel's count of runnable
    threads (``/proc/loadavg``, which counts the calling one) is below the usable CPUs. True
    where the count is not available.

    With every CPU busy (say, another simulation on the other core of two), the two threads
    share one CPU and only lose the GIL hand-overs (about 5 %).
    """
    try:
        with open("/proc/loadavg") as f:
            runnable = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return True
    return runnable < _usable_cpus()


#: Threads for a large evaluation (numpy's ufuncs release the GIL, and a block does a few
#: dozen of them on tens of thousands of elements each), and whether that is forced (else
#: the helper thread only takes part while a CPU is idle, see _cpu_idle). Every random draw is
#: keyed by its evaluation counter and column, and every matrix product is exact, so any split
#: gives the same numbers.
_EVAL_THREADS, _EVAL_THREADS_FORCED = _eval_threads()
#: Smallest batch split over threads (below it, handing work over costs more than it saves).
_EVAL_THREAD_MIN = 2048

_helper: ThreadPoolExecutor | None = None
_helper_pid: int | None = None


def _helper_thread() -> ThreadPoolExecutor:
    """The one persistent helper thread of large evaluations.

    Kept between calls so that its work arrays (see _scratch) stay allocated and warm; made
    anew in a forked child, which does not inherit the parent's threads.
    """
    global _helper, _helper_pid
    if _helper is None or _helper_pid != os.getpid():
        _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="MramArray.evaluate")
        _helper_pid = os.getpid()
    return _helper


def _check_dim(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not 1 <= int(value) <= _MAX_DIM:
        raise ValueError(f"{name} must be between 1 and {_MAX_DIM}, not {value}")
    return int(value)


def _pulse_width(pulse_width_ps) -> float:
    if isinstance(pulse_width_ps, bool) or not isinstance(pulse_width_ps, (int, float, np.integer, np.floating)):
        raise TypeError(f"pulse_width_ps must be a number, not {pulse_width_ps!r}")
    pw = float(pulse_width_ps)
    if not np.isfinite(pw) or pw < 0:
        raise ValueError(f"pulse_width_ps must be finite and >= 0, not {pulse_width_ps!r}")
    return pw


_scratch_local = threading.local()


def _scratch(rows: int, cols: int) -> dict[str, np.ndarray]:
    """This thread's work arrays for :meth:`MramArray._evaluate_block`: the inputs
    (_EVAL_BLOCK, rows) and eleven (_EVAL_BLOCK, cols) arrays.

    Allocated once per thread and geometry (a block uses the first rows), so a batch costs no
    allocation and no page faults per operation.
    """
    bufs = getattr(_scratch_local, "bufs", None)
    if bufs is None:
        bufs = _scratch_local.bufs = {}
    key = (rows, cols, _EVAL_BLOCK)
    b = bufs.get(key)
    if b is None:
        shape = (_EVAL_BLOCK, cols)
        b = {name: np.empty(shape, dtype=dt) for name, dt in (
            ("t", np.float64), ("v", np.float64), ("z", np.float64), ("u2", np.float64),
            ("h", np.uint64), ("tmp", np.uint64), ("fire", np.int64),
            ("t32", np.float32), ("q32", np.float32), ("r32", np.float32), ("ok", np.bool_))}
        b["xf"] = np.empty((_EVAL_BLOCK, rows), dtype=np.float64)
        bufs[key] = b
    return b


#: Multiply-adds below which OpenBLAS computes a product on the calling thread. A larger one
#: wakes its worker threads, which then busy-wait for the next product: on two cores they would
#: take the core the evaluation's own helper thread wants, for a product that takes microseconds.
_BLAS_SINGLE_THREAD_MACS = 1 << 18


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = a @ b``, in row slices small enough for a single-threaded BLAS call.

    Only used for the exact products of :meth:`MramArray._tables` (integers in float64), so the
    slicing cannot change a bit.
    """
    step = max(1, _BLAS_SINGLE_THREAD_MACS // max(1, b.shape[0] * b.shape[1]))
    for r0 in range(0, a.shape[0], step):
        np.matmul(a[r0:r0 + step], b, out=out[r0:r0 + step])


def _fire_times(t: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = floor(max(t, 0) + 1e-6)`` as int64, overwriting ``t`` on the way.

    The 1e-6 ps guard keeps exactly integral ideal times (e.g. 12875 + m*250 computed as
    12874.999999999998) in their bin; it is far below any physical resolution.
    """
    np.maximum(t, 0.0, out=t)
    t += 1e-6
    np.floor(t, out=t)
    out[...] = t  # float64 -> int64, the cast astype(np.int64) does


def _device_index(rows: int, cols: int) -> np.ndarray:
    """Key index of every device, shape (2, rows, cols): its position, independent of geometry."""
    side = np.arange(2, dtype=np.uint64)[:, None, None]
    row = np.arange(rows, dtype=np.uint64)[None, :, None]
    col = np.arange(cols, dtype=np.uint64)[None, None, :]
    return (row * np.uint64(256) + col) * np.uint64(2) + side


# =============================================================================================
# faults
# =============================================================================================

@dataclass
class FaultMap:
    """Explicit fault map of one array.

    Parameters
    ----------
    device : ndarray of int8, shape (2, rows, cols)
        Fault class per device (index into :data:`DEVICE_FAULTS`); axis 0 is the side (0 = A).
    column : ndarray of int8, shape (cols,)
        Fault class per column (index into :data:`COLUMN_FAULTS`).

    Examples
    --------
    >>> fm = FaultMap.empty(64, 64).add_device(3, 5, "A", "open").add_column(7, "comparator_stuck_high")
    """

    device: np.ndarray
    column: np.ndarray

    def __post_init__(self):
        self.device = np.array(self.device, dtype=np.int8)
        self.column = np.array(self.column, dtype=np.int8)
        if self.device.ndim != 3 or self.device.shape[0] != 2:
            raise ValueError(f"FaultMap.device must have shape (2, rows, cols), not {self.device.shape}")
        if self.column.shape != (self.device.shape[2],):
            raise ValueError(f"FaultMap.column must have shape ({self.device.shape[2]},), "
                             f"not {self.column.shape}")
        if self.device.min() < 0 or self.device.max() >= len(DEVICE_FAULTS):
            raise ValueError("FaultMap.device holds an unknown fault code")
        if self.column.min() < 0 or self.column.max() >= len(COLUMN_FAULTS):
            raise ValueError("FaultMap.column holds an unknown fault code")

    @property
    def rows(self) -> int:
        """Rows of the array the map is for."""
        return self.device.shape[1]

    @property
    def cols(self) -> int:
        """Columns of the array the map is for."""
        return self.device.shape[2]

    @classmethod
    def empty(cls, rows: int, cols: int) -> "FaultMap":
        """A map without faults."""
        return cls(np.zeros((2, rows, cols), np.int8), np.zeros(cols, np.int8))

    @classmethod
    def from_rates(cls, config: MacroConfig, rows: int, cols: int, seed: int = 0,
                   instance: int = 0) -> "FaultMap":
        """The map :class:`MramArray` draws from the config's fault rates (edit and pass back)."""
        f = config.faults
        u = rng.uniform(seed, instance, rng.STREAMS["device_fault"], 0, _device_index(rows, cols))
        edges = np.cumsum([f.stuck_low_rate, f.stuck_high_rate, f.shorted_rate, f.open_rate])
        device = np.where(u < edges[-1], np.searchsorted(edges, u, side="right") + 1, 0)
        uc = rng.uniform(seed, instance, rng.STREAMS["column_fault"], 0, np.arange(cols))
        cedges = np.cumsum([f.column_open_rate, f.comparator_stuck_high_rate,
                            f.comparator_stuck_low_rate])
        column = np.where(uc < cedges[-1], np.searchsorted(cedges, uc, side="right") + 1, 0)
        return cls(device.astype(np.int8), column.astype(np.int8))

    def add_device(self, row: int, col: int, side, kind: str) -> "FaultMap":
        """Mark one device faulty (``kind`` in :data:`DEVICE_FAULTS`); returns ``self``."""
        if kind not in DEVICE_FAULTS:
            raise ValueError(f"unknown device fault {kind!r}; valid: {', '.join(DEVICE_FAULTS)}")
        if side not in _SIDES:
            raise ValueError(f"side must be 0/'A' or 1/'B', not {side!r}")
        self.device[_SIDES[side], row, col] = DEVICE_FAULTS.index(kind)
        return self

    def add_column(self, col: int, kind: str) -> "FaultMap":
        """Mark one column faulty (``kind`` in :data:`COLUMN_FAULTS`); returns ``self``."""
        if kind not in COLUMN_FAULTS:
            raise ValueError(f"unknown column fault {kind!r}; valid: {', '.join(COLUMN_FAULTS)}")
        self.column[col] = COLUMN_FAULTS.index(kind)
        return self

    def count(self, kind: str) -> int:
        """Number of devices or columns with fault ``kind``."""
        if kind in DEVICE_FAULTS[1:]:
            return int(np.count_nonzero(self.device == DEVICE_FAULTS.index(kind)))
        if kind in COLUMN_FAULTS[1:]:
            return int(np.count_nonzero(self.column == COLUMN_FAULTS.index(kind)))
        raise ValueError(f"unknown fault {kind!r}")

    def copy(self) -> "FaultMap":
        """Deep copy."""
        return FaultMap(self.device.copy(), self.column.copy())


# =============================================================================================
# the array
# =============================================================================================

class MramArray:
    """Analog model of one STT-MRAM resistance-summing array.

    Parameters
    ----------
    config : MacroConfig
        Analog parameters (e.g. ``preset("paper")``).
    rows, cols : int
        Geometry (cells per column, columns).
    seed : int
        Seed of every random draw (fabrication and operation).
    instance : int
        Array instance number, so several arrays with one seed differ.
    fault_map : FaultMap, optional
        Explicit faults; when given, the config's fault rates are not drawn.

    Attributes
    ----------
    state_a, state_b : ndarray of bool, shape (rows, cols)
        Magnetic state of the A and B MTJs, True = low resistance (P). Fresh arrays are all P
        (the state a field anneal leaves), so :meth:`weights` is 0 until programmed.
    eval_count, pulse_count, sense_count : int
        Operation counters that key the per-operation random draws.
    faults : FaultMap
        The faults in effect.
    """

    def __init__(self, config: MacroConfig, rows: int, cols: int, seed: int = 0, instance: int = 0,
                 fault_map: FaultMap | None = None):
        if not isinstance(config, MacroConfig):
            raise TypeError(f"config must be a MacroConfig, not {type(config).__name__}")
        self.rows = _check_dim("rows", rows)
        self.cols = _check_dim("cols", cols)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, not {seed!r}")
        if isinstance(instance, bool) or not isinstance(instance, (int, np.integer)) or instance < 0:
            raise ValueError(f"instance must be a non-negative integer, not {instance!r}")
        self.seed = int(seed)
        self.instance = int(instance)
        self.config = config
        self.eval_count = 0
        # Read-noise normals drawn ahead for small evaluations: (first counter, block); see
        # _noise_ahead.
        self._noise_block = (0, None)
        self.pulse_count = 0
        self.sense_count = 0
        self._dev_idx = _device_index(self.rows, self.cols)
        self._col_idx = np.arange(self.cols, dtype=np.uint64)
        # The index part of the hashes, index * golden (wrapping), done once.
        self._col_golden = self._col_idx * np.uint64(rng._GOLDEN)
        self._dev_golden = self._dev_idx * np.uint64(rng._GOLDEN)
        # The same by (row, side, column), so that the devices of a few rows are one gather.
        self._dev_golden_rsc = np.ascontiguousarray(self._dev_golden.transpose(1, 0, 2))

        if fault_map is None:
            self._explicit_faults = False
            self.faults = FaultMap.from_rates(config, self.rows, self.cols, self.seed, self.instance)
        else:
            if not isinstance(fault_map, FaultMap):
                raise TypeError(f"fault_map must be a FaultMap, not {type(fault_map).__name__}")
            if (fault_map.rows, fault_map.cols) != (self.rows, self.cols):
                raise ValueError(f"fault_map is for {fault_map.rows}x{fault_map.cols}, "
                                 f"the array is {self.rows}x{self.cols}")
            self._explicit_faults = True
            self.faults = fault_map.copy()

        self._draw_static()
        self.state_a = np.ones((self.rows, self.cols), dtype=bool)
        self.state_b = np.ones((self.rows, self.cols), dtype=bool)
        self._force_stuck()
        self._operating_point()

    # ---- static draws and derived tables -------------------------------------------------

    def _draw_static(self) -> None:
        """Device resistances, critical-current spread and comparator offsets of this chip."""
        d = self.config.device
        s = rng.STREAMS
        z_lo = rng.normal(self.seed, self.instance, s["device_r_low"], 0, self._dev_idx)
        z_hi = rng.normal(self.seed, self.instance, s["device_r_high"], 0, self._dev_idx)
        # A Gaussian has tails below the FET resistance; a real MTJ cannot, so clip (>6 sigma
        # for the defaults, i.e. never in practice) and keep high above low per device.
        self.r_low_draw_ohm = np.maximum(d.r_low_mean_ohm + d.r_low_sigma_ohm * z_lo, d.fet_ohm + 1.0)
        self.r_high_draw_ohm = np.maximum(d.r_high_mean_ohm + d.r_high_sigma_ohm * z_hi,
                                          self.r_low_draw_ohm)
        w = self.config.write
        if w.ic0_sigma_rel > 0:
            z = rng.normal(self.seed, self.instance, s["device_ic0"], 0, self._dev_idx)
            self.ic0_scale = np.maximum(1.0 + w.ic0_sigma_rel * z, 0.1)
        else:
            self.ic0_scale = np.ones((2, self.rows, self.cols))
        r = self.config.readout
        if r.comparator_offset_sigma_ps > 0:
            self.comparator_offset_ps = r.comparator_offset_sigma_ps * rng.normal(
                self.seed, self.instance, s["column_offset"], 0, self._col_idx)
        else:
            self.comparator_offset_ps = np.zeros(self.cols)

    def _operating_point(self) -> None:
        """Effective resistances at the configured supply/temperature/bias (evaluation, sense)."""
        cfg = self.config
        self._eval_low, self._eval_high = physics.branch_resistances_ohm(
            cfg, self.r_low_draw_ohm, self.r_high_draw_ohm, physics.eval_mtj_bias_v(cfg, self.rows))
        self._sense_low, self._sense_high = physics.branch_resistances_ohm(
            cfg, self.r_low_draw_ohm, self.r_high_draw_ohm, physics.sense_mtj_bias_v(cfg))
        # By (row, side, column) for write_row_rounds, as _dev_golden_rsc.
        self._sense_low_rsc = np.ascontiguousarray(self._sense_low.transpose(1, 0, 2))
        self._sense_high_rsc = np.ascontiguousarray(self._sense_high.transpose(1, 0, 2))
        self._shorted_ohm = cfg.device.fet_ohm * physics.fet_scale(cfg) + cfg.device.shorted_ohm
        self._slope = physics.slope_ps_per_ohm(cfg)
        self._t_fix = physics.fixed_delay_ps(cfg)
        # Switching probabilities per pulse width, see _switch_table.
        self._switch_cache: dict = {}
        self._switch_cache_key = (self.config, self.ic0_scale)
        self._dirty = True

    def set_operating_point(self, supply_v: float | None = None, temperature_k: float | None = None) -> None:
        """Change supply voltage and/or temperature; the chip (all draws and states) is kept."""
        over = {}
        if supply_v is not None:
            over["env.supply_v"] = supply_v
        if temperature_k is not None:
            over["env.temperature_k"] = temperature_k
        self.config = self.config.replace(**over)
        self._operating_point()

    def _force_stuck(self) -> None:
        code = self.faults.device
        for side, st in ((0, self.state_a), (1, self.state_b)):
            st[code[side] == 1] = True  # stuck low
            st[code[side] == 2] = False  # stuck high

    def _branch_ohm(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resistance of every branch in its current state, shape (2, rows, cols); inf if open."""
        state = np.stack([self.state_a, self.state_b])
        r = np.where(state, low, high)
        code = self.faults.device
        r = np.where(code == 3, self._shorted_ohm, r)
        open_ = code == 4
        return np.where(open_, np.inf, r), open_

    def _tables(self) -> None:
        """Column sums as ``base + x @ diff``, in integer milliohms held exactly in float64.

        Every partial sum of a matrix product of {0,1} by integers below 2**53 is exact, so the
        BLAS blocking (which changes with the batch size) cannot change a single bit.
        """
        if not self._dirty:
            return
        r, open_ = self._branch_ohm(self._eval_low, self._eval_high)
        r_fin = np.where(open_, 0.0, r)
        r_mohm = np.rint(r_fin * 1000.0)
        self._base_mohm = r_mohm[1].sum(axis=0)
        self._diff_mohm = r_mohm[0] - r_mohm[1]
        r_int2 = np.rint(r_fin) ** 2  # read-noise variance weights, integer ohm**2
        self._var_base = r_int2[1].sum(axis=0)
        self._var_diff = r_int2[0] - r_int2[1]
        o = open_.astype(np.float64)
        self._open_base = o[1].sum(axis=0)
        self._open_diff = o[0] - o[1]
        # Without an open device no input can open a column: evaluate skips that product.
        self._any_open = bool(open_.any())
        # Columns that can never fire (open, comparator stuck low) and stuck-high comparators.
        col = self.faults.column
        never, already = (col == 1) | (col == 3), col == 2
        self._col_never = never if never.any() else None
        self._col_already = already if already.any() else None
        self._one = {"xf": np.empty(self.rows), "t": np.empty(self.cols), "v": np.empty(self.cols)}
        self._dirty = False

    # ---- input checking --------------------------------------------------------------------

    def _bits(self, x_bits, name="x_bits") -> tuple[np.ndarray, bool]:
        x = np.asarray(x_bits)
        if x.dtype != bool:
            if not np.issubdtype(x.dtype, np.integer) or (x.size and (x.min() < 0 or x.max() > 1)):
                raise TypeError(f"{name} must be bool (or 0/1 integers), not {x.dtype}")
            x = x.astype(bool)
        single = x.ndim == 1
        if single:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.rows:
            raise ValueError(f"{name} must have shape (batch, {self.rows}) or ({self.rows},), "
                             f"not {np.shape(x_bits)}")
        return x, single

    def _col_vector(self, v, name: str) -> np.ndarray:
        """One column vector of bools (shape (cols,)), checked."""
        return self._col_rows(v, None, name)

    def _col_rows(self, v, n: int | None, name: str) -> np.ndarray:
        """``n`` column vectors of bools at once, shape (n, cols); ``n`` None: one, shape (cols,)."""
        a = np.asarray(v)
        shape = (self.cols,) if n is None else (n, self.cols)
        if a.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, not {a.shape}")
        if a.dtype != bool:
            if not np.issubdtype(a.dtype, np.integer) or (a.size and (a.min() < 0 or a.max() > 1)):
                raise TypeError(f"{name} must be bool (or 0/1 integers), not {a.dtype}")
            a = a.astype(bool)
        return a

    def _row_list(self, rows) -> np.ndarray:
        """Distinct row addresses as an int64 array (TypeError/ValueError as :meth:`_row_side`)."""
        r = np.asarray(rows)
        if r.ndim != 1 or (r.size and (r.dtype == bool or not np.issubdtype(r.dtype, np.integer))):
            raise TypeError(f"rows must be a sequence of integers, not {rows!r}")
        r = r.astype(np.int64)
        if r.size and (r.min() < 0 or r.max() >= self.rows):
            raise ValueError(f"rows {rows!r} out of range 0..{self.rows - 1}")
        seen = np.zeros(self.rows, dtype=bool)
        seen[r] = True
        if np.count_nonzero(seen) != r.size:
            raise ValueError(f"rows must be distinct, not {rows!r}")
        return r

    def _row_side(self, row, side) -> tuple[int, int]:
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)):
            raise TypeError(f"row must be an integer, not {row!r}")
        if not 0 <= row < self.rows:
            raise ValueError(f"row {row} out of range 0..{self.rows - 1}")
        if isinstance(side, (bool, np.bool_)):
            side = int(side)
        if isinstance(side, np.integer):
            side = int(side)
        if side not in _SIDES:
            raise ValueError(f"side must be 0 (A) or 1 (B), not {side!r}")
        return int(row), _SIDES[side]

    # ---- weights ---------------------------------------------------------------------------

    def program_ideal(self, weights) -> None:
        """Set the stored weights directly (no switching model, no counters).

        Parameters
        ----------
        weights : array_like of int, shape (rows, cols)
            +1 (A low, B high) or -1 (A high, B low). Stuck devices keep their stuck state.
        """
        w = np.asarray(weights)
        if w.shape != (self.rows, self.cols):
            raise ValueError(f"weights must have shape ({self.rows}, {self.cols}), not {w.shape}")
        if w.dtype == bool or not np.issubdtype(w.dtype, np.number):
            raise TypeError(f"weights must be numbers +1/-1, not {w.dtype}")
        if not np.all((w == 1) | (w == -1)):
            raise ValueError("weights must be +1 or -1 only")
        self.state_a[...] = w > 0
        self.state_b[...] = w < 0
        self._force_stuck()
        self._dirty = True

    def weights(self) -> np.ndarray:
        """Stored weights, int8 (rows, cols): +1 where A low and B high, -1 for the reverse, 0
        where A and B agree (a corrupt cell)."""
        a, b = self.state_a, self.state_b
        return np.where(a & ~b, 1, np.where(~a & b, -1, 0)).astype(np.int8)

    def mismatch_count(self, x_bits) -> np.ndarray:
        """Cells per column whose conducting branch is high, int64 (batch, cols) or (cols,)."""
        x, single = self._bits(x_bits)
        xf = x.astype(np.float64)
        hi_a = (~self.state_a).astype(np.float64)
        hi_b = (~self.state_b).astype(np.float64)
        m = (xf @ hi_a + (1.0 - xf) @ hi_b).astype(np.int64)
        return m[0] if single else m

    # ---- evaluation ------------------------------------------------------------------------

    def column_resistance(self, x_bits) -> np.ndarray:
        """Static, noise-free column resistance in ohms (batch, cols) or (cols,); inf if open.

        Includes the wire resistance ``rows * wire_ohm_per_cell`` and the operating point.
        """
        x, single = self._bits(x_bits)
        self._tables()
        xf = x.astype(np.float64)
        r = (self._base_mohm + xf @ self._diff_mohm) / 1000.0 + self.rows * self.config.readout.wire_ohm_per_cell
        r = np.where((self._open_base + xf @ self._open_diff) > 0, np.inf, r)
        r = np.where(self.faults.column == 1, np.inf, r)
        return r[0] if single else r

    def static_fire_time_ps(self, x_bits) -> np.ndarray:
        """Noise-free fire time (float ps) including the static comparator offset; no sentinels,
        inf for an open path. Does not advance any counter."""
        r = self.column_resistance(x_bits)
        with np.errstate(invalid="ignore"):
            return self._t_fix + self._slope * (r - self.rows * self.config.readout.replica_cell_ohm) \
                + self.comparator_offset_ps

    def evaluate(self, x_bits, *, post=None, resolution_ps: int | None = None) -> np.ndarray:
        """Comparator fire times of one or many evaluations.

        Parameters
        ----------
        x_bits : array_like of bool, shape (batch, rows) or (rows,)
            Input vectors; True drives branch A (input +1).
        post : callable, optional
            ``post(fire, r0, r1)`` is called with the fire times of evaluations ``r0:r1`` of
            the batch (shape (r1 - r0, cols)) as soon as they are known, for consecutive blocks
            that cover the batch, possibly from a helper thread and in any order. The blocks
            are disjoint, so ``post`` may fill rows ``r0:r1`` of arrays of its own (the fast
            model turns fire times into codes this way, while they are still in the cache).
            ``fire`` is a reused buffer, valid during the call only, and evaluate then returns
            None: the batch's fire times are not kept.
        resolution_ps : int, optional
            A promise that the caller (``post``) looks at a fire time only through
            ``floor(fire / resolution_ps)`` and the sentinels, as the TDC does with its clock
            period. The read noise is then drawn in full only where it could move a fire time
            across such a bin edge (see :meth:`_binned_noise`); every other fire time is exact
            to its bin only, which is all the caller sees. Counters advance as usual.

        Returns
        -------
        ndarray of int64, shape (batch, cols) or (cols,); None with ``post``
            ``floor`` of the fire time in ps after the evaluate edge; :data:`FIRE_ALREADY` for a
            comparator stuck high, :data:`FIRE_NEVER` for a column that cannot fire.

        Notes
        -----
        Evaluation ``i`` of the batch draws its noise with counter ``eval_count + i``;
        ``eval_count`` then advances by the batch size.

        The batch is computed in blocks of rows, on two threads when it is large (see
        :data:`_EVAL_THREADS`); every draw is keyed by its evaluation's counter and column and
        every matrix product is exact, so neither the blocks nor the threads change a bit.
        """
        if resolution_ps is not None:
            if isinstance(resolution_ps, bool) or not isinstance(resolution_ps, (int, np.integer)) \
                    or resolution_ps < 1:
                raise ValueError(f"resolution_ps must be a positive integer, not {resolution_ps!r}")
            if post is None:
                raise ValueError("resolution_ps is a promise about post: give post too")
        if post is None and resolution_ps is None and isinstance(x_bits, np.ndarray) and x_bits.dtype == bool \
                and x_bits.shape == (self.rows,):
            return self._evaluate_one(x_bits)
        x, single = self._bits(x_bits)
        n = x.shape[0]
        self._tables()
        fire = None if post is not None else np.empty((n, self.cols), dtype=np.int64)
        counter0 = self.eval_count
        threaded = _EVAL_THREADS > 1 and n >= _EVAL_THREAD_MIN and (_EVAL_THREADS_FORCED or _cpu_idle())
        # Equal blocks of at most _EVAL_BLOCK rows, an even number of them on two threads.
        # A shared iterator hands them out: each thread takes the next one when it is free
        # (next() on a list iterator is atomic), so a late or slowed thread does less.
        count = -(-n // _EVAL_BLOCK)
        count += count % 2 if threaded else 0
        size = -(-n // count) if n else 0
        blocks = iter([(r0, min(r0 + size, n)) for r0 in range(0, n, size)] if n else [])

        def work():
            for r0, r1 in blocks:
                if fire is None:
                    out = _scratch(self.rows, self.cols)["fire"][:r1 - r0]
                    self._evaluate_block(x, out, r0, r1, counter0, resolution_ps)
                    post(out, r0, r1)
                else:
                    self._evaluate_block(x, fire[r0:r1], r0, r1, counter0, resolution_ps)

        if threaded:
            helped = _helper_thread().submit(work)
            try:
                work()
            finally:
                helped.result()  # waits for the helper's blocks; re-raises its exception
        else:
            work()
        self.eval_count += n
        if fire is None:
            return None
        return fire[0] if single else fire

    def _evaluate_block(self, x: np.ndarray, out: np.ndarray, r0: int, r1: int, counter0: int,
                        resolution_ps: int | None = None) -> None:
        """Fire times of evaluations ``r0:r1`` of the batch ``x`` into ``out`` (r1 - r0, cols).

        Evaluation ``i`` of the batch draws its noise with counter ``counter0 + i``. The
        arithmetic is the textbook one, operation by operation (docs/analog_model.md)::

            r_col = (base_mohm + x @ diff_mohm) / 1000 + rows * wire
            t     = t_fix + slope * (r_col - rows * replica) + offset
            t    += sqrt(k**2 * (var_base + x @ var_diff) + jitter**2) * normal()
            fire  = floor(max(t, 0) + 1e-6)

        done in place in per-thread scratch buffers (the same IEEE operations in the same
        order, so the same bits as one numpy expression over the whole batch); with
        ``resolution_ps``, see :meth:`_binned_noise`.
        """
        cfg = self.config
        m = r1 - r0
        buf = _scratch(self.rows, self.cols)
        xf, t, v = buf["xf"][:m], buf["t"][:m], buf["v"][:m]
        np.copyto(xf, x[r0:r1])  # bool -> 0.0 / 1.0
        # The resistance of each column's conducting branches (integer milliohms) and, for the
        # read noise, the sum of their squares (integer ohm**2): the products are exact
        # (integers below 2**53 in float64; see _tables), whatever the block or the BLAS does.
        _matmul(xf, self._diff_mohm, t)
        t += self._base_mohm
        noisy = m and (cfg.device.read_noise_rel > 0 or cfg.readout.jitter_sigma_ps > 0)
        if noisy:
            # The sum of independent Gaussian read noises of the conducting branches is one
            # Gaussian of variance noise_rel**2 * sum(R_i**2); add the jitter in quadrature and
            # draw one normal per (evaluation, column).
            _matmul(xf, self._var_diff, v)
            v += self._var_base
            counters = counter0 + np.arange(r0, r1, dtype=np.uint64)
        if noisy and resolution_ps is not None:
            self._binned_noise(t, v, counters, buf, m, int(resolution_ps), out)
        else:
            self._times_from_sums(t, self.comparator_offset_ps)
            if noisy:
                self._sigmas_from_sums(v)
                if m <= _NOISE_AHEAD_MAX:
                    z = self._noise_ahead(counter0 + r0, m)
                else:
                    z = rng.normal_into(buf["z"][:m], self.seed, self.instance, rng.STREAMS["eval_noise"],
                                        counters, self._col_golden, (buf["h"][:m], buf["tmp"][:m], buf["u2"][:m]))
                v *= z
                t += v
            _fire_times(t, out)
        self._mark_faults(xf, out, v, _matmul)

    def _mark_faults(self, xf: np.ndarray, out: np.ndarray, v: np.ndarray, matmul) -> None:
        """The sentinels of faults into the fire times ``out`` of the inputs ``xf`` (one row or
        a block of rows; ``v`` is scratch of ``out``'s shape): :data:`FIRE_NEVER` where an open
        device cuts the conducting path or the column cannot fire, :data:`FIRE_ALREADY` for a
        comparator stuck high. ``matmul(a, b, out=...)`` computes the open-path product."""
        if self._any_open:
            matmul(xf, self._open_diff, out=v)
            v += self._open_base
            out[v > 0] = FIRE_NEVER
        if self._col_never is not None:
            out[..., self._col_never] = FIRE_NEVER
        if self._col_already is not None:
            out[..., self._col_already] = FIRE_ALREADY

    def _evaluate_one(self, x: np.ndarray) -> np.ndarray:
        """:meth:`evaluate` of one input vector (bool, shape (rows,)): the arithmetic of
        :meth:`_evaluate_block`, operation by operation on one row (so the same bits), without
        the batch machinery around it. The co-simulation's array adapter asks for one
        evaluation at each ``evaluate`` edge; the Python around some twenty small numpy calls
        cost it as much as the calls."""
        self._tables()
        cfg = self.config
        one = self._one
        xf, t, v = one["xf"], one["t"], one["v"]
        np.copyto(xf, x)
        np.matmul(xf, self._diff_mohm, out=t)
        t += self._base_mohm
        self._times_from_sums(t, self.comparator_offset_ps)
        if cfg.device.read_noise_rel > 0 or cfg.readout.jitter_sigma_ps > 0:
            np.matmul(xf, self._var_diff, out=v)
            v += self._var_base
            self._sigmas_from_sums(v)
            v *= self._noise_ahead(self.eval_count, 1)[0]
            t += v
        out = np.empty(self.cols, dtype=np.int64)   # new each time: the caller keeps it
        _fire_times(t, out)
        self._mark_faults(xf, out, v, np.matmul)
        self.eval_count += 1
        return out

    def _noise_ahead(self, counter: int, m: int) -> np.ndarray:
        """The read-noise normals of evaluations ``counter .. counter + m - 1`` (m, cols), from a
        block of :data:`_NOISE_AHEAD` evaluations drawn ahead in one call.

        A normal depends on its evaluation's counter and column only (and on the seed and
        instance, fixed for the array), not on the inputs, so drawing the next evaluations'
        ahead gives the very same bits. One evaluation at a time (the co-simulation's array
        adapter) then pays a fraction of a draw instead of some twenty small numpy calls.
        Only the calling thread's evaluations get here (batches of at most
        :data:`_NOISE_AHEAD_MAX`; threaded blocks are larger).
        """
        first, block = self._noise_block
        if block is None or not first <= counter <= counter + m <= first + _NOISE_AHEAD:
            first = counter
            if block is None:
                block = np.empty((_NOISE_AHEAD, self.cols))
                self._noise_scratch = (np.empty((_NOISE_AHEAD, self.cols), dtype=np.uint64),
                                       np.empty((_NOISE_AHEAD, self.cols), dtype=np.uint64),
                                       np.empty((_NOISE_AHEAD, self.cols)))
            rng.normal_into(block, self.seed, self.instance, rng.STREAMS["eval_noise"],
                            np.arange(first, first + _NOISE_AHEAD, dtype=np.uint64), self._col_golden,
                            self._noise_scratch)
            self._noise_block = (first, block)
        return block[counter - first:counter - first + m]

    def _times_from_sums(self, t: np.ndarray, offset_ps) -> np.ndarray:
        """Noise-free fire times in ps from the columns' conducting resistance in milliohms
        (``base_mohm + x @ diff_mohm``), in place in ``t``; ``offset_ps`` are the columns'
        comparator offsets, broadcast against ``t``."""
        cfg = self.config
        t /= 1000.0
        t += self.rows * cfg.readout.wire_ohm_per_cell
        t -= self.rows * cfg.readout.replica_cell_ohm
        t *= self._slope
        t += self._t_fix
        t += offset_ps
        return t

    def _sigmas_from_sums(self, v: np.ndarray) -> np.ndarray:
        """Noise sigmas in ps from the sums of the conducting branches' squared resistances
        (``var_base + x @ var_diff``), in place in ``v``."""
        cfg = self.config
        k = self._slope * cfg.device.read_noise_rel
        v *= k * k
        v += cfg.readout.jitter_sigma_ps * cfg.readout.jitter_sigma_ps
        np.sqrt(v, out=v)
        return v

    def _binned_noise(self, r_sum: np.ndarray, r2_sum: np.ndarray, counters: np.ndarray, buf: dict, m: int,
                      resolution: int, out: np.ndarray) -> None:
        """Noisy fire times into ``out`` exact to ``floor(fire / resolution)`` (evaluate's
        ``resolution_ps``), given the sums the noise-free times ``t`` and the noise sigmas come
        from (:meth:`_times_from_sums`, :meth:`_sigmas_from_sums`; both are overwritten).

        The exact time is ``t + sigma * z`` with ``z = radius * cos(2 pi u2)`` (rng.normal), and
        ``|z| <= radius``, bit for bit (a libm cosine is within [-1, 1]; rounding is monotone).
        Where every time within ``sigma * radius`` of ``t`` (and a little more) has its fire
        time, ``floor(max(time, 0) + 1e-6)``, in one bin, the start of that bin is given instead
        of the exact time; only the rest (a tenth of the columns under ``paper``) get the exact
        arithmetic (``t``, ``sigma`` and the radius included) and pay for a cosine.

        That decision is made in float32, which is twice as fast, with margins that cover its
        rounding by orders of magnitude, so that it only ever errs towards the exact arithmetic.
        ``T`` is ``t`` as one float32 product and sum, within ``E`` (below) of the exact one;
        ``S``, ``sigma`` in float32, at most 2**-21 (relative) below it (all its terms are
        positive); ``R``, a float32 bound of the radius at least 2**-9 (relative) above it
        (rng.normal_radius_bound_f32); and for ``0 <= T < 2**20`` and ``res < 2**19`` each other
        float32 rounding below is at most 2**-5 ps. With ``q = floor(T / res)`` (a whole
        float32), ``d = T - q res`` and ``M = S R + 1 + 2 E``: if ``d >= M`` and
        ``d + M < res``, the exact time, within ``sigma * radius + E <= M - 0.95`` of ``T``, is
        above ``q res + 0.9`` and below ``(q + 1) res - 0.9``, so its fire time is in bin ``q``
        (``q res`` is exact: an integer below 2**20). A wrong ``q`` (rounding of ``T / res``)
        makes ``d`` fall outside ``[0, res)``: undecided. Other times or bins, and NaNs, are
        left undecided.
        """
        cfg = self.config
        stream = rng.STREAMS["eval_noise"]
        bits = rng.uniform_bits_into(buf["h"][:m], self.seed, self.instance, stream, 0, counters,
                                     self._col_golden, buf["tmp"][:m])
        margin = rng.normal_radius_bound_f32(bits, buf["r32"][:m])
        t32, q32, ok = buf["t32"][:m], buf["q32"][:m], buf["ok"][:m]
        # S = sqrt(r2_sum k**2 + jitter**2) and the margin S R.
        k = self._slope * cfg.device.read_noise_rel
        np.copyto(q32, r2_sum, casting="same_kind")  # float64 -> float32, rounded
        q32 *= np.float32(k * k)
        q32 += np.float32(cfg.readout.jitter_sigma_ps * cfg.readout.jitter_sigma_ps)
        np.sqrt(q32, out=q32)
        margin *= q32
        # T = r_sum a + b: _times_from_sums as one product and one sum per element. Its error
        # is within 4 roundings of float32 (2**-24 each) of the largest terms, 2**-21 of them
        # for E, which also covers float64's roundings many times over.
        a = self._slope / 1000.0
        b = self._times_from_sums(np.zeros(self.cols), self.comparator_offset_ps)  # t of no resistance
        np.copyto(t32, r_sum, casting="same_kind")
        t32 *= np.float32(a)
        t32 += b.astype(np.float32)
        err_ps = 2.0 ** -21 * (float(r_sum.max()) * abs(a) + float(np.abs(b).max())) + 2.0 ** -30
        margin += np.float32(1.0 + 2.0 * err_ps)
        res = np.float32(resolution)
        np.multiply(t32, np.float32(1.0 / resolution), out=q32)
        np.floor(q32, out=q32)
        q32 *= res  # the start of the bin, q res
        if resolution >= 2 ** 19:
            guard = np.zeros(t32.shape, dtype=bool)  # bins too wide for the margins: all exact
        elif t32.min() >= 0.0 and t32.max() < 2.0 ** 20:
            guard = None  # the usual case: no time needs a check of its own
        else:
            guard = (t32 >= 0.0) & (t32 < 2.0 ** 20)
        t32 -= q32  # d
        np.greater_equal(t32, margin, out=ok)
        t32 += margin
        ok &= t32 < res
        if guard is None:
            out[...] = q32  # exact: an integer below 2**20 (where ok; else replaced below)
        else:
            ok &= guard
            with np.errstate(invalid="ignore"):  # a huge or NaN time (replaced below)
                out[...] = q32
        idx = np.flatnonzero(~ok)
        if idx.size:
            # Exactly evaluate's arithmetic, on the undecided (evaluation, column) pairs only.
            rows, cols = np.divmod(idx, self.cols)
            u2 = rng.uniform_gather(self.seed, self.instance, stream, 1, counters, self._col_golden, rows, cols)
            z = rng.normal_radius(bits.ravel()[idx]) * np.cos(rng._TWO_PI * u2)
            z *= self._sigmas_from_sums(r2_sum.ravel()[idx])
            tz = self._times_from_sums(r_sum.ravel()[idx], self.comparator_offset_ps[cols])
            tz += z
            exact = np.empty(idx.size, dtype=np.int64)
            _fire_times(tz, exact)
            out.ravel()[idx] = exact

    # ---- write and sense -------------------------------------------------------------------

    def write_pulse(self, row: int, side, data_low, enable, pulse_width_ps) -> np.ndarray:
        """Apply one write pulse to one side of one row.

        Parameters
        ----------
        row : int
            Row address.
        side : int or str
            0/'A' or 1/'B'.
        data_low : array_like of bool, shape (cols,)
            Target state per column, True = low (P).
        enable : array_like of bool, shape (cols,)
            Columns that receive write current.
        pulse_width_ps : float
            Measured pulse width.

        Returns
        -------
        ndarray of bool, shape (cols,)
            Columns whose device switched. A device already in the target state, a stuck,
            shorted or open device never switches. Draws use counter ``pulse_count``, which
            then advances by one.
        """
        row, side = self._row_side(row, side)
        data = self._col_vector(data_low, "data_low")
        en = self._col_vector(enable, "enable")
        pw = _pulse_width(pulse_width_ps)
        state = self.state_a if side == 0 else self.state_b
        p_from_low, p_from_high = self._switch_table(pw)
        u = rng.uniform_golden(self.seed, self.instance, [(rng.STREAMS["write"], 0)], [self.pulse_count],
                               self._dev_golden[side, row])[0]
        switched = self._switched(state[row], data, en, self.faults.device[side, row], u,
                                  p_from_low[row, side], p_from_high[row, side])
        if switched.any():
            np.copyto(state[row], data, where=switched)
            self._dirty = True
        self.pulse_count += 1
        return switched

    @staticmethod
    def _switched(cur: np.ndarray, data: np.ndarray, en: np.ndarray, code: np.ndarray, u: np.ndarray,
                  p_from_low: np.ndarray, p_from_high: np.ndarray) -> np.ndarray:
        """Which devices a write pulse switches (no state changes), all arguments per device:
        state ``cur``, target ``data``, enabled ``en``, fault ``code``, uniform draw ``u`` and
        switching probabilities from low / high. A pulse switches an enabled, fault-free device
        not yet in the target state with its probability."""
        switched = np.not_equal(cur, data)
        switched &= en
        switched &= code == 0
        if np.count_nonzero(switched):
            switched &= u < np.where(cur, p_from_low, p_from_high)
        return switched

    def _switch_table(self, pw: float) -> tuple[np.ndarray, np.ndarray]:
        """Switching probabilities of every device if it starts low / high, for pulse width
        ``pw``: two arrays of shape (rows, 2, cols) (row, side, column).

        :func:`physics.switching_probability` is elementwise, so ``where(cur, low, high)`` of
        these is exactly its value for the state ``cur``; they depend only on the config, the
        devices' Ic0 draws and the pulse width, so they are computed once per width (a row of
        a side at a time, as for a single pulse) and reused by every later pulse.
        """
        if self._switch_cache_key[0] is not self.config or self._switch_cache_key[1] is not self.ic0_scale:
            self._switch_cache = {}
            self._switch_cache_key = (self.config, self.ic0_scale)
        hit = self._switch_cache.get(pw)
        if hit is None:
            hit = tuple(np.array([[physics.switching_probability(self.config, np.full(self.cols, low), pw,
                                                                 ic0_scale=self.ic0_scale[side, row])
                                   for side in (0, 1)] for row in range(self.rows)])
                        for low in (True, False))
            if len(self._switch_cache) >= 16:  # bound it: a sweep of widths
                self._switch_cache.clear()
            self._switch_cache[pw] = hit
        return hit

    def sense(self, row: int, side) -> np.ndarray:
        """Sense one side of one row against the reference resistance.

        Returns
        -------
        ndarray of bool, shape (cols,)
            True = sensed low (P). Each branch's resistance is read with relative Gaussian noise
            ``sense.noise_rel`` (counter ``sense_count``, which then advances by one) and
            compared to ``sense.reference_ohm``; an open device reads high.
        """
        row, side = self._row_side(row, side)
        u = None
        if self.config.sense.noise_rel > 0:
            s = rng.STREAMS["sense"]
            u = rng.uniform_golden(self.seed, self.instance, [(s, 0), (s, 1)], [[self.sense_count]] * 2,
                                   self._dev_golden[side, row])
        sensed = self._sensed((self.state_a if side == 0 else self.state_b)[row], self._sense_low[side, row],
                              self._sense_high[side, row], self.faults.device[side, row], u)
        self.sense_count += 1
        return sensed

    def _sensed(self, state: np.ndarray, low: np.ndarray, high: np.ndarray, code: np.ndarray,
                u: np.ndarray | None) -> np.ndarray:
        """What senses read (no counter advances), all arguments per device: magnetic ``state``,
        branch resistance at the sense bias when low / high, fault ``code``, and the two
        uniforms ``u[0], u[1]`` of its noise (rng.normal's Box-Muller; None without noise)."""
        r = np.where(state, low, high)
        has_open = False
        if np.count_nonzero(code):
            r = np.where(code == 3, self._shorted_ohm, r)
            open_ = code == 4
            has_open = bool(np.count_nonzero(open_))
            r = np.where(open_, np.inf, r)
        if u is not None:
            z = np.sqrt(-2.0 * np.log(u[0])) * np.cos(rng._TWO_PI * u[1])
            nr = self.config.sense.noise_rel
            if has_open:
                with np.errstate(invalid="ignore"):  # inf * (1 + nr*z) for an open device
                    r = r * (1.0 + nr * z)
            else:
                r = r * (1.0 + nr * z)
        return r < self.config.sense.reference_ohm

    def write_row_rounds(self, rows, data_a, enable_a, data_b, enable_b, pulse_width_ps,
                         sense: bool = True, keep=None) -> tuple:
        """Rounds of the controller's row write on distinct rows, one after another, computed
        together: what the fast model's WRITE_ROW loop wants.

        Round ``k`` is exactly (same results, states and counters)::

            write_pulse(rows[k], 0, data_a[k], enable_a[k], pulse_width_ps) if any(enable_a[k])
            write_pulse(rows[k], 1, data_b[k], enable_b[k], pulse_width_ps) if any(enable_b[k])
            sense(rows[k], 0), sense(rows[k], 1)                            if sense

        with the draws of all rounds made at once: a round changes only its own row, and its
        draws are keyed by counters that follow from the pulses before it (one per side with an
        enabled column) and the senses (two per round), so they are known in advance. Every
        argument is checked before anything happens.

        Parameters
        ----------
        rows : sequence of int, shape (n,)
            Distinct row addresses.
        data_a, enable_a, data_b, enable_b : array_like of bool, shape (n, cols)
            Per round, the target states (True = low) and the enabled columns of side A / B.
        pulse_width_ps : float
        sense : bool
        keep : callable, optional
            ``keep(sensed_a, sensed_b) -> int``: given every round's sensed bits, shape (n, cols)
            each (None, None without ``sense``), the number of leading rounds that happen; the
            others are discarded as if never issued (no state or counter changes). Default: all.

        Returns
        -------
        switched : ndarray of bool, shape (kept, 2, cols)
            Per round and side (A, B), the columns whose device switched (all False for a
            skipped pulse).
        pulsed : ndarray of bool, shape (kept, 2)
            Whether the round pulsed each side (an enabled column).
        sensed : ndarray of bool, shape (kept, 2, cols), or None without ``sense``
        """
        rows = self._row_list(rows)
        n = rows.size
        # Everything per (round, side, column): the devices a round's pulses and senses reach.
        data = np.stack((self._col_rows(data_a, n, "data_a"), self._col_rows(data_b, n, "data_b")), axis=1)
        en = np.stack((self._col_rows(enable_a, n, "enable_a"), self._col_rows(enable_b, n, "enable_b")), axis=1)
        pw = _pulse_width(pulse_width_ps)
        pulsed = en.any(axis=2)
        cur = np.stack((self.state_a[rows], self.state_b[rows]), axis=1)
        code = self.faults.device.transpose(1, 0, 2)[rows]
        # Every draw in one hashing pass. The pulses in order (round, side); a skipped pulse (no
        # enabled column) neither draws nor counts. Then both lanes of every sense's normal.
        flat = pulsed.ravel()
        keys = [(rng.STREAMS["write"], 0)]
        counters = [np.cumsum(flat, dtype=np.uint64) - flat + self.pulse_count]
        noisy = sense and self.config.sense.noise_rel > 0
        if noisy:
            keys += [(rng.STREAMS["sense"], 0), (rng.STREAMS["sense"], 1)]
            counters += [self.sense_count + np.arange(2 * n, dtype=np.uint64)] * 2
        u = rng.uniform_golden(self.seed, self.instance, keys, np.reshape(counters, (len(keys), n, 2, 1)),
                               self._dev_golden_rsc[rows])
        p_from_low, p_from_high = self._switch_table(pw)
        switched = self._switched(cur, data, en, code, u[0], p_from_low[rows], p_from_high[rows])
        new = np.where(switched, data, cur)
        sensed = None
        if sense:
            sensed = self._sensed(new, self._sense_low_rsc[rows], self._sense_high_rsc[rows], code,
                                  u[1:] if noisy else None)
        kept = n
        if keep is not None:
            kept = keep(*((None, None) if sensed is None else (sensed[:, 0], sensed[:, 1])))
            if isinstance(kept, bool) or not isinstance(kept, (int, np.integer)) or not 0 <= kept <= n:
                raise ValueError(f"keep must return an int in 0..{n}, not {kept!r}")
            kept = int(kept)
        if np.count_nonzero(switched[:kept]):
            self.state_a[rows[:kept]] = new[:kept, 0]
            self.state_b[rows[:kept]] = new[:kept, 1]
            self._dirty = True
        self.pulse_count += int(np.count_nonzero(pulsed[:kept]))
        if sense:
            self.sense_count += 2 * kept
            sensed = sensed[:kept]
        return switched[:kept], pulsed[:kept], sensed

    def sense_resistance_ohm(self, row: int, side) -> np.ndarray:
        """Noise-free branch resistances the sense amplifier sees (cols,); no counter advances."""
        row, side = self._row_side(row, side)
        return self._branch_ohm(self._sense_low, self._sense_high)[0][side, row]

    def device_resistance_ohm(self) -> tuple[np.ndarray, np.ndarray]:
        """Effective low- and high-state branch resistances of every device at the evaluation
        bias, each shape (2, rows, cols) (side, row, col); faults not applied."""
        return self._eval_low.copy(), self._eval_high.copy()

    # ---- energy ----------------------------------------------------------------------------

    def energy_breakdown_evaluation_j(self, x_bits) -> dict[str, np.ndarray]:
        """Energy of evaluations by physical term, each (batch,) or scalar arrays, in joules.

        Terms (docs/analog_model.md, "Energy"):

        ``row_lines_j``
            Charging one gate line per row (A or B) to V_dd: ``rows * cols * c_cell * V**2``.
        ``mtj_chain_j``
            Resistive: energy the column node's capacitor dissipates in the series chain while
            it discharges from V_dd to V_end, ``C/2 (V**2 - V_end**2)`` per column.
        ``precharge_j``
            Capacitive loss in the precharge switch restoring the node, ``C/2 (V - V_end)**2``.
        ``comparators_j``
            One decision per column, ``E_cmp (V/V0)**2``.
        ``total_j``
            Their sum (= supply energy of the evaluation).

        ``V_end`` is the node voltage when the slowest column of the evaluation fires (the
        controller precharges right after), ``V_ref exp(-(t_last - t_j)/(R_col C))``.
        """
        x, single = self._bits(x_bits)
        cfg = self.config
        v = cfg.env.supply_v
        c_node = cfg.readout.slope_ps_per_ohm * 1e-12 / np.log(cfg.env.nominal_supply_v / cfg.readout.v_ref_v)
        r_col = self.column_resistance(x)
        t_ps = self.static_fire_time_ps(x)
        finite = np.isfinite(t_ps) & (self.faults.column == 0)
        t_last = np.where(finite, t_ps, -np.inf).max(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            tau_ps = r_col * c_node * 1e12
            v_end = cfg.readout.v_ref_v * np.exp(-(t_last - t_ps) / tau_ps)
        v_end = np.where(finite, v_end, v)  # a column that never discharges costs nothing
        mtj = 0.5 * c_node * (v * v - v_end * v_end)
        pre = 0.5 * c_node * (v - v_end) ** 2
        n = x.shape[0]
        rows_e = np.full(n, self.rows * self.cols * cfg.readout.row_line_cap_per_cell_f * v * v)
        cmp_e = np.full(n, self.cols * cfg.readout.comparator_energy_j * (v / cfg.env.nominal_supply_v) ** 2)
        out = {"row_lines_j": rows_e, "mtj_chain_j": mtj.sum(axis=1), "precharge_j": pre.sum(axis=1),
               "comparators_j": cmp_e}
        out["total_j"] = out["row_lines_j"] + out["mtj_chain_j"] + out["precharge_j"] + out["comparators_j"]
        if single:
            out = {k: v_[0] for k, v_ in out.items()}
        return out

    def energy_per_evaluation_j(self, x_bits):
        """Total energy of each evaluation in joules, (batch,) or a float for one vector."""
        e = self.energy_breakdown_evaluation_j(x_bits)["total_j"]
        return float(e) if np.ndim(e) == 0 else e

    def energy_breakdown_write_pulse_j(self, pulse_width_ps: float, row: int | None = None,
                                       side=None, enable=None) -> dict[str, float]:
        """Energy of one write pulse by term, in joules.

        ``joule_j``: resistive, ``V_w**2 / (R_branch + R_series) * t_p`` per enabled column with
        the branch at the write bias (TMR mostly collapsed); ``lines_j``: capacitive, charging
        the data and source lines, ``C_line V_w**2`` per enabled column; ``row_gate_j``: the
        addressed row's gate line, ``cols c_cell V_dd**2``. Without ``row``/``side`` the mean
        of the low and high branch at the write bias is used for every column.
        """
        cfg = self.config
        pw = _pulse_width(pulse_width_ps)
        en = np.ones(self.cols, bool) if enable is None else self._col_vector(enable, "enable")
        vw = cfg.write.write_voltage_v
        bias = vw * (cfg.device.r_low_mean_ohm - cfg.device.fet_ohm) / cfg.device.r_low_mean_ohm
        lo, hi = physics.branch_resistances_ohm(cfg, self.r_low_draw_ohm, self.r_high_draw_ohm, bias)
        if row is None or side is None:
            r = np.full(self.cols, 0.5 * (lo.mean() + hi.mean()))
        else:
            row, s = self._row_side(row, side)
            r = self._branch_ohm(lo, hi)[0][s, row]
        with np.errstate(divide="ignore"):
            joule = np.where(en, vw * vw / (r + cfg.write.series_ohm) * pw * 1e-12, 0.0)
        lines = np.count_nonzero(en) * cfg.write.line_capacitance_f * vw * vw
        gate = self.cols * cfg.readout.row_line_cap_per_cell_f * cfg.env.supply_v ** 2
        out = {"joule_j": float(joule.sum()), "lines_j": float(lines), "row_gate_j": float(gate)}
        out["total_j"] = out["joule_j"] + out["lines_j"] + out["row_gate_j"]
        return out

    def energy_per_write_pulse_j(self, pulse_width_ps: float, row: int | None = None, side=None,
                                 enable=None) -> float:
        """Total energy of one write pulse in joules (see :meth:`energy_breakdown_write_pulse_j`)."""
        return self.energy_breakdown_write_pulse_j(pulse_width_ps, row, side, enable)["total_j"]

    # ---- persistence -----------------------------------------------------------------------

    def get_state(self) -> dict:
        """Non-volatile state and counters (device draws are re-derived from the seed).

        Returns a dict of numpy arrays and plain values; :meth:`set_state` restores it exactly.
        """
        return {
            "format": _STATE_FORMAT,
            "rows": self.rows, "cols": self.cols, "seed": self.seed, "instance": self.instance,
            "config_json": self.config.to_json(indent=None),
            "state_a": self.state_a.copy(), "state_b": self.state_b.copy(),
            "eval_count": int(self.eval_count), "pulse_count": int(self.pulse_count),
            "sense_count": int(self.sense_count),
            "fault_device": self.faults.device.copy(), "fault_column": self.faults.column.copy(),
        }

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state` output (a power cycle).

        The geometry, seed and instance must match (they define the chip); the configuration
        of this object is kept (a chip may come back at another temperature).
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, not {type(state).__name__}")
        missing = {"rows", "cols", "seed", "instance", "state_a", "state_b", "eval_count",
                   "pulse_count", "sense_count"} - set(state)
        if missing:
            raise ValueError(f"state lacks {', '.join(sorted(missing))}")
        for key in ("rows", "cols", "seed", "instance"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(f"state is for {key} = {int(state[key])}, this array has {getattr(self, key)}")
        a = np.asarray(state["state_a"], dtype=bool)
        b = np.asarray(state["state_b"], dtype=bool)
        if a.shape != (self.rows, self.cols) or b.shape != (self.rows, self.cols):
            raise ValueError("state_a/state_b have the wrong shape")
        if "fault_device" in state:
            self.faults = FaultMap(state["fault_device"], state["fault_column"])
        self.state_a = a.copy()
        self.state_b = b.copy()
        self.eval_count = int(state["eval_count"])
        self.pulse_count = int(state["pulse_count"])
        self.sense_count = int(state["sense_count"])
        self._dirty = True

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`get_state` to an ``.npz`` file."""
        st = self.get_state()
        meta = {k: st[k] for k in ("format", "rows", "cols", "seed", "instance", "eval_count",
                                   "pulse_count", "sense_count", "config_json")}
        np.savez(path, meta=np.array(json.dumps(meta)), state_a=st["state_a"], state_b=st["state_b"],
                 fault_device=st["fault_device"], fault_column=st["fault_column"])

    @staticmethod
    def _read(path) -> dict:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            if meta.get("format") != _STATE_FORMAT:
                raise ValueError(f"{path}: unknown state format {meta.get('format')!r}")
            meta.update({k: f[k].copy() for k in ("state_a", "state_b", "fault_device", "fault_column")})
        return meta

    def load(self, path: str | os.PathLike) -> None:
        """Restore the state saved by :meth:`save` into this array (same chip)."""
        self.set_state(self._read(path))

    @classmethod
    def restore(cls, path: str | os.PathLike) -> "MramArray":
        """A new array rebuilt from a file written by :meth:`save` (config, faults and state)."""
        st = cls._read(path)
        arr = cls(MacroConfig.from_json(st["config_json"]), int(st["rows"]), int(st["cols"]),
                  seed=int(st["seed"]), instance=int(st["instance"]),
                  fault_map=FaultMap(st["fault_device"], st["fault_column"]))
        arr.set_state(st)
        return arr

    def __repr__(self) -> str:
        return (f"MramArray({self.config.name!r}, rows={self.rows}, cols={self.cols}, seed={self.seed}, "
                f"instance={self.instance}, evals={self.eval_count}, pulses={self.pulse_count}, "
                f"senses={self.sense_count})")
