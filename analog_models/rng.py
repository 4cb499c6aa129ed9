"""Counter-based, vectorised random numbers keyed by what they describe.

Every random number of the analog model is a pure function of a key
``(seed, instance, stream, counter, index)``:

``seed``
    The user's seed (any Python int, taken modulo 2**64).
``instance``
    Which array (several macros in one system share a seed).
``stream``
    What the number is for (:data:`STREAMS`), so that, e.g., evaluation noise never reuses a
    write draw.
``counter``
    The operation counter (evaluation, write pulse or sense number); 0 for static draws.
``index``
    The device or column index (its *position*, not its place in a loop), so results do not
    depend on the order or the grouping in which columns or operations are computed.

The hash is the SplitMix64 finaliser (Steele, Lea, Flood, OOPSLA 2014), a bijection on uint64,
applied after xoring in each key component in turn. It is evaluated with numpy uint64 array
arithmetic (wrapping multiplication), so a batch of keys costs a handful of vector operations and
gives bit-identical results however the keys are batched.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STREAMS", "hash_u64", "uniform", "normal"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)

#: Stream identifiers. Never renumber one: saved arrays re-derive their devices from them.
STREAMS = {
    "device_r_low": 1,      # static: low-state branch resistance of each device
    "device_r_high": 2,     # static: high-state branch resistance of each device
    "device_fault": 3,      # static: fault class of each device
    "device_ic0": 4,        # static: critical-current spread of each device
    "column_offset": 10,    # static: comparator offset of each column
    "column_fault": 11,     # static: fault class of each column
    "eval_noise": 20,       # per evaluation: read noise plus comparator jitter, per column
    "write": 30,            # per write pulse: switching draw, per device
    "sense": 40,            # per sense: sense-amplifier noise, per column
}


def _mix_int(z: int) -> int:
    """SplitMix64 finaliser on a Python int (for the scalar part of the key)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _prefix(seed: int, instance: int, stream: int, lane: int) -> int:
    h = _mix_int(int(seed) + _GOLDEN)
    h = _mix_int(h ^ ((int(instance) + 1) * _GOLDEN))
    h = _mix_int(h ^ ((int(stream) + 1) * 0xD1B54A32D192ED03))
    return _mix_int(h ^ ((int(lane) + 1) * 0x8CB92BA72F3D8DD7))


def hash_u64(seed: int, instance: int, stream: int, counter, index, lane: int = 0) -> np.ndarray:
    """64-bit hashes of the keys; ``counter`` and ``index`` broadcast against each other.

    Parameters
    ----------
    seed, instance, stream, lane : int
        Scalar key components (``lane`` separates the two uniforms of a normal).
    counter, index : array_like of int
        Non-negative operation counters and device/column indices.
    """
    p = np.uint64(_prefix(seed, instance, stream, lane))
    c = np.asarray(counter, dtype=np.uint64)
    i = np.asarray(index, dtype=np.uint64)
    # uint64 multiplication is meant to wrap; numpy only warns about it for 0-d operands.
    with np.errstate(over="ignore"):
        h = _mix(c ^ p)
        return np.asarray(_mix(h ^ (i * np.uint64(_GOLDEN))))


def uniform(seed: int, instance: int, stream: int, counter, index, lane: int = 0) -> np.ndarray:
    """Uniform doubles in the open interval (0, 1), one per key (53 random bits)."""
    h = hash_u64(seed, instance, stream, counter, index, lane)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def normal(seed: int, instance: int, stream: int, counter, index) -> np.ndarray:
    """Standard normal doubles, one per key (Box-Muller on two keyed uniforms)."""
    u1 = uniform(seed, instance, stream, counter, index, lane=0)
    u2 = uniform(seed, instance, stream, counter, index, lane=1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
