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

Speed (none of it changes a number): the scalar part of the key, ``(seed, instance, stream,
lane)``, is hashed once and cached; a scalar counter is mixed in with Python integers;
:func:`normal_into` fills a caller's buffer block by block with in-place ufuncs, which is what
the array model's large evaluations use; :func:`uniform_golden` draws every key set of several
write rounds in one pass; and :func:`uniform_bits_into`, :func:`normal_radius_bound_f32`,
:func:`uniform_gather` and :func:`normal_radius` let an evaluation that only needs its fire
times to a clock period bound the noise first and draw it in full where the bound is not enough.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["STREAMS", "hash_u64", "uniform", "uniform_golden", "uniform_gather", "uniform_bits_into", "normal",
           "normal_into", "normal_radius", "normal_radius_bound_f32"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_GOLDEN_U64 = np.uint64(_GOLDEN)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S11 = np.uint64(11)
#: 2**-53: scales the top 53 bits of a hash into [0, 1).
_INV_2_53 = 1.0 / 9007199254740992.0
#: ``2.0 * np.pi`` exactly as ``2.0 * np.pi * u2`` evaluates it (left to right).
_TWO_PI = 2.0 * np.pi

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


def _mix_inplace(z: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """:func:`_mix` overwriting ``z`` (a uint64 array; ``tmp`` is scratch of its shape).

    The same eight operations in the same order, without a temporary array per operation.
    """
    np.right_shift(z, _S30, out=tmp)
    z ^= tmp
    z *= _M1
    np.right_shift(z, _S27, out=tmp)
    z ^= tmp
    z *= _M2
    np.right_shift(z, _S31, out=tmp)
    z ^= tmp
    return z


@functools.lru_cache(maxsize=1024)
def _prefix_int(seed: int, instance: int, stream: int, lane: int) -> int:
    h = _mix_int(seed + _GOLDEN)
    h = _mix_int(h ^ ((instance + 1) * _GOLDEN))
    h = _mix_int(h ^ ((stream + 1) * 0xD1B54A32D192ED03))
    return _mix_int(h ^ ((lane + 1) * 0x8CB92BA72F3D8DD7))


def _prefix(seed: int, instance: int, stream: int, lane: int) -> int:
    """Hash of the scalar key components; a pure function of them, so it is cached (every
    write pulse and sense of an array asks for the same few)."""
    return _prefix_int(int(seed), int(instance), int(stream), int(lane))


def _scalar_counter(counter) -> int | None:
    """``counter`` as a Python int when it is one non-negative integer that fits 64 bits."""
    if isinstance(counter, (int, np.integer)):
        c = int(counter)
        if 0 <= c <= _MASK64:
            return c
    return None


def hash_u64(seed: int, instance: int, stream: int, counter, index, lane: int = 0) -> np.ndarray:
    """64-bit hashes of the keys; ``counter`` and ``index`` broadcast against each other.

    Parameters
    ----------
    seed, instance, stream, lane : int
        Scalar key components (``lane`` separates the two uniforms of a normal).
    counter, index : array_like of int
        Non-negative operation counters and device/column indices.
    """
    p = _prefix(seed, instance, stream, lane)
    c = _scalar_counter(counter)
    if c is not None and isinstance(index, np.ndarray) and index.ndim and index.dtype == np.uint64:
        # Fast path of a write pulse or a sense (one counter, a row of device indices): the
        # counter's mix is done on Python ints (exactly the uint64 arithmetic), and the array
        # operands are never 0-d, so numpy wraps the multiplications without a warning and no
        # np.errstate context is needed.
        return _mix(np.uint64(_mix_int(c ^ p)) ^ (index * _GOLDEN_U64))
    c = np.asarray(counter, dtype=np.uint64)
    i = np.asarray(index, dtype=np.uint64)
    # uint64 multiplication is meant to wrap; numpy only warns about it for 0-d operands.
    with np.errstate(over="ignore"):
        h = _mix(c ^ np.uint64(p))
        return np.asarray(_mix(h ^ (i * _GOLDEN_U64)))


def uniform(seed: int, instance: int, stream: int, counter, index, lane: int = 0) -> np.ndarray:
    """Uniform doubles in the open interval (0, 1), one per key (53 random bits)."""
    h = hash_u64(seed, instance, stream, counter, index, lane)
    return ((h >> _S11).astype(np.float64) + 0.5) * _INV_2_53


def normal(seed: int, instance: int, stream: int, counter, index) -> np.ndarray:
    """Standard normal doubles, one per key (Box-Muller on two keyed uniforms)."""
    c = _scalar_counter(counter)
    if c is not None and isinstance(index, np.ndarray) and index.ndim == 1:
        # Fast path of a sense (one counter, a row of devices): both lanes' hashes in one
        # (2, n) array, so the mixing and the conversion run once instead of twice.
        hc = np.array([_mix_int(c ^ _prefix(seed, instance, stream, 0)),
                       _mix_int(c ^ _prefix(seed, instance, stream, 1))], dtype=np.uint64)
        h = _mix(hc[:, None] ^ (index.astype(np.uint64, copy=False) * _GOLDEN_U64)[None, :])
        u = ((h >> _S11).astype(np.float64) + 0.5) * _INV_2_53
        u1, u2 = u
    else:
        u1 = uniform(seed, instance, stream, counter, index, lane=0)
        u2 = uniform(seed, instance, stream, counter, index, lane=1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)


def uniform_golden(seed: int, instance: int, keys, counters, index_golden: np.ndarray) -> np.ndarray:
    """:func:`uniform` for several key sets in one hashing pass, the index given as
    ``index * 0x9E3779B97F4A7C15`` (wrapping).

    Set ``k``, ``result[k]``, is ``uniform(seed, instance, stream, counters[k], index, lane)``
    for ``keys[k] = (stream, lane)``, with ``counters[k]`` (uint64) and ``index_golden``
    broadcast against each other: e.g. counters (K, n, 1) with each row's device indices (n, m)
    give the draws of K kinds of operation on n rows at once (a write round's pulses and the
    two lanes of its senses). Bit for bit :func:`uniform`.
    """
    counters = np.asarray(counters, dtype=np.uint64)
    k = len(keys)
    if counters.ndim == 0 or counters.shape[0] != k:
        raise ValueError(f"counters must have one entry per key set ({k}), not shape {counters.shape}")
    # Align each set's counters with the index on the right (numpy's rule), below the set axis.
    rest = counters.shape[1:]
    counters = counters.reshape((k,) + (1,) * max(0, np.ndim(index_golden) - len(rest)) + rest)
    prefix = np.array([_prefix(seed, instance, stream, lane) for stream, lane in keys], dtype=np.uint64)
    prefix = prefix.reshape((k,) + (1,) * (counters.ndim - 1))
    # (counters is not 0-d here: the counter's mix would be numpy scalar arithmetic, which warns
    # as it wraps)
    h = np.bitwise_xor(_mix(counters ^ prefix), index_golden)
    return _bits_to_uniform(_mix_bits(h, np.empty_like(h)), np.empty(h.shape))


def uniform_gather(seed: int, instance: int, stream: int, lane: int, counters: np.ndarray,
                   index_golden: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``uniform(seed, instance, stream, counters[rows], index[cols], lane)``: scattered
    (counter, index) pairs of a grid, each counter's part of the hash computed once.

    ``counters`` (uint64, (n,)) and ``index_golden`` (``index * 0x9E3779B97F4A7C15``, (m,)) are
    the grid's axes; ``rows`` and ``cols`` select the pairs.
    """
    h = np.bitwise_xor(_mix(counters ^ np.uint64(_prefix(seed, instance, stream, lane)))[rows], index_golden[cols])
    return _bits_to_uniform(_mix_bits(h, np.empty_like(h)), np.empty(h.shape))


def uniform_bits_into(out: np.ndarray, seed: int, instance: int, stream: int, lane: int, counters: np.ndarray,
                      index_golden: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """The 53 random bits ``k`` of :func:`uniform` (which is ``(k + 0.5) * 2**-53``) for the keys
    ``counters[:, None]`` x ``index``, as uint64 into ``out`` (in place; ``tmp`` is uint64
    scratch of its shape); ``index_golden`` as in :func:`normal_into`."""
    hc = _mix(counters ^ np.uint64(_prefix(seed, instance, stream, lane)))
    np.bitwise_xor(hc[:, None], index_golden[None, :], out=out)
    return _mix_bits(out, tmp)


def _mix_bits(h: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """The last step of a key's hash, in place in ``h`` = (mixed scalar and counter part) ^
    (index * golden): the final mix, keeping the top 53 bits (``tmp``: uint64 scratch)."""
    _mix_inplace(h, tmp)
    h >>= _S11
    return h


def _bits_to_uniform(bits: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(k + 0.5) * 2**-53`` of the 53 random bits ``k`` into ``dst`` (float64)."""
    np.add(bits.view(np.int64), 0.5, out=dst)  # float64(k) + 0.5 (the conversion is exact)
    dst *= _INV_2_53
    return dst


def _radius_inplace(u1: np.ndarray) -> np.ndarray:
    """``sqrt(-2 ln u1)``, :func:`normal`'s first Box-Muller factor, overwriting ``u1``."""
    np.log(u1, out=u1)
    u1 *= -2.0
    np.sqrt(u1, out=u1)
    return u1


def normal_radius(bits: np.ndarray) -> np.ndarray:
    """The first factor ``sqrt(-2 ln u1)`` of :func:`normal`'s Box-Muller, given the 53 bits of
    its first uniform (lane 0, :func:`uniform_bits_into`); bit for bit :func:`normal`'s.

    It bounds the normal: ``|normal| <= radius`` bit for bit, since the second factor, a libm
    cosine, is within [-1, 1] and rounding is monotone.
    """
    return _radius_inplace(_bits_to_uniform(bits, np.empty(bits.shape)))


def normal_radius_bound_f32(bits: np.ndarray, out: np.ndarray) -> np.ndarray:
    """An upper bound of :func:`normal_radius` of ``bits`` in float32, written into ``out``
    (float32, the shape of ``bits``), at most about 1 % + 0.005 above it.

    Why it is a bound: with ``k`` the bits, ``u1 = (k + 0.5) 2**-53 >= k 2**-53``, and float32
    ``k 2**-53`` is within 2**-24 of that (relative); float32 ``log`` and ``sqrt`` err by a few
    units in the last place, about 1e-7 relative, plus an absolute 2**-11 in the radius where
    ``u1`` is so close to 1 that float32 rounds it to 1. The computed value is therefore within
    2**-20 (relative) + 2**-11 of the true radius or above it, and the margins added below,
    2**-8 and 2**-7 (relative), exceed that by far, float32 rounding of those two operations
    included (the relative margin would still hold for a logarithm wrong in its 15th bit).
    ``k = 0`` gives infinity (a bound, if a useless one).
    """
    np.copyto(out, bits.view(np.int64), casting="unsafe")  # int64 -> float32, rounded
    out *= np.float32(2.0 ** -53)
    np.log(out, out=out)
    out *= np.float32(-2.0)
    np.sqrt(out, out=out)
    out += np.float32(2.0 ** -8)
    out *= np.float32(1.0 + 2.0 ** -7)
    return out


def _uniform_lane_into(dst: np.ndarray, seed: int, instance: int, stream: int, lane: int,
                       counters: np.ndarray, index_golden: np.ndarray, h: np.ndarray,
                       tmp: np.ndarray) -> np.ndarray:
    """:func:`uniform` for the keys ``counters[:, None]`` x ``index`` into ``dst`` (in place)."""
    return _bits_to_uniform(uniform_bits_into(h, seed, instance, stream, lane, counters, index_golden, tmp), dst)


def normal_into(out: np.ndarray, seed: int, instance: int, stream: int, counters: np.ndarray,
                index_golden: np.ndarray, scratch: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """:func:`normal` for the keys ``counters[:, None]`` x ``index``, written into ``out``.

    Bit for bit ``normal(seed, instance, stream, counters[:, None], index[None, :])``, computed
    with the same operations but in place, in caller-owned buffers (no allocation per call, and
    a block of rows stays in the cache from the first operation to the last).

    Parameters
    ----------
    out : ndarray of float64, shape (n, m), C-contiguous
        Receives the normals.
    counters : ndarray of uint64, shape (n,)
        Operation counters of the rows.
    index_golden : ndarray of uint64, shape (m,)
        ``index * 0x9E3779B97F4A7C15`` (wrapping) of the columns, precomputed by the caller.
    scratch : three C-contiguous arrays of shape (n, m): uint64, uint64, float64
    """
    h, tmp, u2 = scratch
    # np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2), operation by operation:
    _radius_inplace(_uniform_lane_into(out, seed, instance, stream, 0, counters, index_golden, h, tmp))
    _uniform_lane_into(u2, seed, instance, stream, 1, counters, index_golden, h, tmp)
    u2 *= _TWO_PI
    np.cos(u2, out=u2)
    out *= u2
    return out
