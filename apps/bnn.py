"""Binary-network helpers shared by the applications (numpy only).

Conventions: activations and weights are ±1 held as int8; a dense layer is ``x @ W`` with ``W``
of shape (inputs, outputs), as in :class:`firmware.tiling.TiledMatvec`. A binary neuron is
``sign(dot - theta)`` with ``sign(0) = +1``, i.e. it fires when ``dot >= theta``; batch
normalisation before a sign folds into that threshold (:func:`fold_batchnorm`).

On the macro a layer runs in one of two ways (:class:`MacroDense`):

- **tiled** (more inputs than rows): the layer is cut into row tiles, each tile's partial dot
  is estimated from the TDC codes, the partials are summed digitally, and ``sign(dot - theta)``
  is taken on the sum. A 64-row column cannot threshold a 784-input neuron by itself.
- **in-array** (the layer fits one array): the column thresholds COL_THRESH
  (``driver.dot_threshold_codes``) make the macro's ACT bits the activations directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware.driver import all_pm1

__all__ = ["binarize_images", "sign", "binary_activation", "fold_batchnorm", "dense_pm1",
           "MacroDense", "LayerOutput", "as_pm1_int8"]


def binarize_images(images: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Binarise 8-bit images to ±1 input vectors.

    Parameters
    ----------
    images : numpy.ndarray of uint8, shape (N, H, W) or (N, H*W)
        Pixel intensities 0..255.
    threshold : int
        Pixels ``>= threshold`` become +1 (ink), the others -1.

    Returns
    -------
    numpy.ndarray of int8, shape (N, H*W)
    """
    a = np.asarray(images)
    if a.ndim < 2:
        raise ValueError(f"images must be (N, ...) with at least 2 dimensions, not shape {a.shape}")
    flat = a.reshape(a.shape[0], -1)
    return np.where(flat >= threshold, 1, -1).astype(np.int8)


def sign(x) -> np.ndarray:
    """Sign with ``sign(0) = +1``, as int8 ±1 (the convention of every binary neuron here)."""
    return np.where(np.asarray(x) >= 0, 1, -1).astype(np.int8)


def binary_activation(dot, theta) -> np.ndarray:
    """``sign(dot - theta)``: +1 where ``dot >= theta`` (theta broadcast over the batch)."""
    return sign(np.asarray(dot, dtype=np.float64) - np.asarray(theta, dtype=np.float64))


def as_pm1_int8(a, name: str = "array") -> np.ndarray:
    """Check that ``a`` holds only ±1 and return it as int8 (ValueError naming ``name`` otherwise)."""
    arr = np.asarray(a)
    if arr.size and not all_pm1(arr):
        raise ValueError(f"{name} must hold only -1 and +1")
    return arr.astype(np.int8)


def fold_batchnorm(weights, mean, var, gamma, beta, eps: float = 1e-5):
    """Fold ``sign(BN(x @ W))`` into ``sign(x @ W' - theta)`` with ±1 weights ``W'``.

    ``BN(a) = gamma * (a - mean) / sqrt(var + eps) + beta`` is >= 0 exactly when
    ``a >= mean - beta * sqrt(var + eps) / gamma`` for ``gamma > 0``, and when
    ``-a >= -(that)`` for ``gamma < 0``; so a negative ``gamma`` is absorbed by negating the
    neuron's weight column. ``gamma == 0`` makes a constant neuron: its column is kept and
    ``theta`` is set to -inf (always +1) or +inf (always -1) by the sign of ``beta``.

    Parameters
    ----------
    weights : array_like, shape (inputs, outputs), ±1
    mean, var, gamma, beta : array_like, shape (outputs,)
        Batch-norm statistics and affine parameters.
    eps : float

    Returns
    -------
    weights : numpy.ndarray of int8, shape (inputs, outputs)
        Columns negated where ``gamma < 0``.
    theta : numpy.ndarray of float64, shape (outputs,)
        Thresholds in dot-product units.
    """
    w = as_pm1_int8(weights, "weights")
    mean, var, gamma, beta = (np.asarray(v, dtype=np.float64) for v in (mean, var, gamma, beta))
    std = np.sqrt(var + eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = mean - beta * std / gamma
    s = np.where(gamma < 0, -1, 1)
    theta = np.where(gamma == 0, np.where(beta >= 0, -np.inf, np.inf), s * theta)
    return (w * s[None, :].astype(np.int8)).astype(np.int8), theta


def dense_pm1(x, weights) -> np.ndarray:
    """Exact dot products of ±1 inputs with ±1 weights, as int32 (software reference)."""
    # float32 matmul is exact for |dot| < 2**24 and far faster than integer matmul in numpy.
    xf = np.asarray(x, dtype=np.float32)
    wf = np.asarray(weights, dtype=np.float32)
    if xf.shape[-1] > 1 << 24:
        raise ValueError("too many inputs for an exact float32 dot product")
    return np.rint(xf @ wf).astype(np.int32)


@dataclass
class LayerOutput:
    """What a layer on the macro produced for a batch.

    Attributes
    ----------
    dot : numpy.ndarray of float64, shape (batch, outputs)
        Dot estimates from the codes, summed over the row tiles.
    codes : numpy.ndarray of int64, shape (row_tiles, batch, outputs)
        The TDC codes each tile reported (what the backends must agree on bit for bit); the
        caller's array instead when it gave ``codes_out``.
    activations : numpy.ndarray of int8, shape (batch, outputs) or None
        ``sign(dot - theta)`` (tiled) or the macro's ACT bits (in-array); None without theta.
    timeouts : int
        Column timeouts seen (counted, not raised).
    """

    dot: np.ndarray
    codes: np.ndarray
    activations: np.ndarray | None
    timeouts: int


class MacroDense:
    """A binary dense layer programmed onto one or more macros through the firmware.

    Parameters
    ----------
    drivers : list of firmware.driver.MacroDriver
        Opened, configured (and, if wanted, calibrated) drivers of the same geometry.
    weights : array_like, shape (inputs, outputs), ±1
    theta : array_like, shape (outputs,), optional
        Thresholds of ``sign(dot - theta)``; None for a layer whose dot products are the output
        (e.g. the class scores).
    in_array_threshold : bool
        When the layer fits one array and has ``theta``, let the macro threshold it
        (COL_THRESH / ACT) instead of thresholding the dot estimates digitally.
    verify : bool
        Program the weights with read-back verify.
    dither : int
        Reads per input vector (1 = plain). A coarse TDC code spans ``S`` mismatches (4 under
        ``paper``: ``S = round(1 / gain)`` of the driver's calibrated code line). With
        ``dither = L > 1`` every tile gives up ``S - 1`` rows to dither cells (weight +1) and each
        vector is read ``L`` times, the ``k``-th time with ``floor(k S / L)`` dither rows driven
        -1: the column moves by a known fraction ``k / L`` of a code. Averaging the
        dither-corrected estimates divides the quantisation step by ``L`` (up to ``L = S``).
        Costs ``L`` times the computes and no extra programming.

    Notes
    -----
    The methods are coroutines, so the same code runs over the fast model (use
    :func:`firmware.driver.run_sync`) and the co-simulated RTL (awaited inside cocotb).
    """

    def __init__(self, drivers, weights, theta=None, *, in_array_threshold: bool = True,
                 verify: bool = True, dither: int = 1):
        from firmware.tiling import TiledMatvec

        w = as_pm1_int8(weights, "weights")
        if w.ndim != 2:
            raise ValueError(f"weights must be 2-D, not shape {w.shape}")
        self.dither = int(dither)
        drv = drivers if not isinstance(drivers, (list, tuple)) else drivers[0]
        drv = getattr(drv, "driver", drv)
        rows = drv.rows
        if not 1 <= self.dither <= rows // 2:
            raise ValueError(f"dither must be 1..{rows // 2}, not {dither}")
        self.n_inputs = w.shape[0]
        # Mismatches per code, from the code line the driver inverts (calibrated or nominal);
        # the driver has no public accessor for it, and the line is read-only here.
        gain = float(np.median(drv._gain)) if getattr(drv, "_gain", None) is not None else 1.0
        self.code_span = max(1, int(round(1.0 / gain)))
        d = 0 if self.dither == 1 else max(1, self.code_span - 1)
        self._shifts = [min(d, (k * (d + 1)) // self.dither) for k in range(self.dither)]
        self._dither_rows = d
        self._per_tile = rows - d                     # caller's inputs per row tile
        self._tiles = -(-self.n_inputs // self._per_tile)
        if d:
            # Tile a: inputs a*per_tile ... then d dither rows of weight +1.
            parts = []
            for a in range(self._tiles):
                parts.append(w[a * self._per_tile:(a + 1) * self._per_tile])
                parts.append(np.ones((d, w.shape[1]), dtype=np.int8))
            w = np.concatenate(parts, axis=0)
        self.layer = TiledMatvec(drivers, w, verify=verify, raise_on_failure=False)
        self.theta = None if theta is None else np.asarray(theta, dtype=np.float64)
        if self.theta is not None and self.theta.shape != (self.layer.weights.shape[1],):
            raise ValueError(f"theta must have shape ({self.layer.weights.shape[1]},), "
                             f"not {self.theta.shape}")
        self.in_array = bool(in_array_threshold and self.theta is not None and self.dither == 1
                             and len(self.layer.tiles) == 1)

    @property
    def write_failures(self) -> int:
        """Weight bits that stayed wrong after all verify retries, over every programming."""
        return self.layer.write_failures

    def codes_shape(self, batch: int) -> tuple[int, int, int]:
        """Shape of :attr:`LayerOutput.codes` for a batch of ``batch`` input vectors:
        (row tiles, dither reads x batch, outputs)."""
        return (self.layer.row_tiles, self.dither * int(batch), self.layer.weights.shape[1])

    async def __call__(self, x, *, codes_out=None) -> LayerOutput:
        """Run a batch of ±1 input vectors (shape (batch, inputs)) through the layer.

        ``codes_out`` (optional, an integer array of shape :meth:`codes_shape`) receives the
        codes, which are then the result's ``codes`` (see :meth:`TiledMatvec.matvec`).
        """
        if self.in_array:
            drv = self.layer.drivers[0]
            await self.layer.program()
            # COL_THRESH from the calibrated code line: ACT = (dot >= theta) per column.
            await drv.set_thresholds(drv.dot_threshold_codes(self.theta))
        x = as_pm1_int8(x, "inputs")
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"inputs must have shape (batch, {self.n_inputs}), not {x.shape}")
        if self.dither > 1:
            res = await self._dithered(x, codes_out)
        else:
            res = await self.layer.matvec(x, allow_timeouts=True, codes_out=codes_out)
        if self.theta is None:
            act = None
        elif self.in_array:
            act = np.where(res.activations[0], 1, -1).astype(np.int8)
        else:
            act = binary_activation(res.dot, self.theta)
        return LayerOutput(res.dot, res.codes, act, int(np.count_nonzero(res.timeouts)))

    async def _dithered(self, x: np.ndarray, codes_out=None):
        """All ``dither`` reads of the batch in one tiled product; averaged estimates."""
        from firmware.tiling import TiledResult

        n, d, levels = x.shape[0], self._dither_rows, self.dither
        reads = []
        for k in range(levels):
            dith = np.ones(d, dtype=np.int8)
            dith[:self._shifts[k]] = -1                # shifts[k] extra mismatches in every tile
            parts = []
            for a in range(self._tiles):
                parts.append(x[:, a * self._per_tile:(a + 1) * self._per_tile])
                parts.append(np.broadcast_to(dith, (n, d)))
            reads.append(np.concatenate(parts, axis=1))
        res = await self.layer.matvec(np.concatenate(reads, axis=0), allow_timeouts=True, codes_out=codes_out)
        # Remove each read's known dither dot (d - 2k per tile), then average the reads.
        known = np.repeat([(d - 2 * self._shifts[k]) * self._tiles for k in range(levels)], n)[:, None]
        dot = (res.dot - known).reshape(levels, n, -1).mean(axis=0)
        # Codes etc. of every read: (row tiles, levels * batch, outputs), read k at k*batch...
        return TiledResult(dot, res.codes, res.activations, res.timeouts, res.cost)
