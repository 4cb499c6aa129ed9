"""Tiling: matrix-vector products larger than one array, over one or several arrays.

A layer ``y = x @ W`` with ``W`` of shape (inputs, outputs) is cut into tiles of at most
rows x cols (the arrays' CAPS geometry). Tile (a, b) holds ``W[a*rows:(a+1)*rows,
b*cols:(b+1)*cols]``; its partial dot products are accumulated digitally:

    dot[:, outputs of b] = sum over a of  x[:, inputs of a] @ W[inputs of a, outputs of b]

Each driver pads a short tile itself (unused rows hold +1, -1, +1, ... and see +1 inputs, and
the known padding dot is subtracted), so partial sums are exact under the ``ideal`` preset and
the padded columns stay near the middle of a narrow TDC window otherwise.

Tiles are assigned round robin to the arrays. When there are at least as many arrays as tiles,
every tile stays resident and a product costs only computes; otherwise each array is
reprogrammed for each of its tiles on every product (the tile already resident is used first,
so alternating products save one reprogramming per array).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from .driver import MacroDriver, SyncMacroDriver, UsageError, as_pm1, run_sync


@dataclass
class TilingCost:
    """What products cost on the hardware.

    Attributes
    ----------
    tiles : int
        Tiles of the layer (row tiles x column tiles).
    arrays : int
        Arrays used.
    computes : int
        COMPUTE operations (one per input vector per tile).
    row_writes : int
        WRITE_ROW commands.
    programmings : int
        Whole-array programmings (one per tile loaded).
    reprogrammings : int
        Programmings of an array that already held another tile.
    """

    tiles: int = 0
    arrays: int = 0
    computes: int = 0
    row_writes: int = 0
    programmings: int = 0
    reprogrammings: int = 0

    def __iadd__(self, other: "TilingCost") -> "TilingCost":
        for k in ("computes", "row_writes", "programmings", "reprogrammings"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self


@dataclass
class TiledResult:
    """Outcome of :meth:`TiledMatvec.matvec`.

    Attributes
    ----------
    dot : numpy.ndarray of float64, shape (batch, outputs)
        Accumulated dot estimates (exact under ``ideal``).
    codes, activations, timeouts : numpy.ndarray, shape (row_tiles, batch, outputs)
        Per row tile, what the arrays reported for those outputs (codes int64, or the dtype of
        the ``codes_out`` given to :meth:`TiledMatvec.matvec`).
    cost : TilingCost
        Cost of this product (programming included).
    """

    dot: np.ndarray
    codes: np.ndarray
    activations: np.ndarray
    timeouts: np.ndarray
    cost: TilingCost = field(default_factory=TilingCost)


class TiledMatvec:
    """A ±1 layer of any size mapped onto one or more arrays.

    Parameters
    ----------
    drivers : MacroDriver, SyncMacroDriver, or a sequence of them
        Opened and configured drivers, all of the same geometry.
    weights : array_like, shape (inputs, outputs)
        ±1 weights.
    verify : bool
        Verify row writes when programming tiles.
    raise_on_failure : bool
        Raise :class:`~firmware.driver.VerifyError` on unrecoverable bits (else count them in
        :attr:`write_failures` and go on).

    Attributes
    ----------
    row_tiles, col_tiles : int
        Tiles along the inputs and the outputs.
    cost : TilingCost
        Running total over every call.
    """

    def __init__(self, drivers, weights, verify: bool = True, raise_on_failure: bool = True):
        if isinstance(drivers, (MacroDriver, SyncMacroDriver)):
            drivers = [drivers]
        drivers = [d.driver if isinstance(d, SyncMacroDriver) else d for d in drivers]
        if not drivers:
            raise UsageError("at least one driver is needed")
        geoms = {(d.rows, d.cols) for d in drivers}  # raises UsageError if one is not opened
        if len(geoms) != 1:
            raise UsageError(f"all arrays must have the same geometry, got {sorted(geoms)}")
        self.drivers = drivers
        self.rows, self.cols = geoms.pop()
        self.weights = as_pm1(weights, "weights", 2)
        self.verify = verify
        self.raise_on_failure = raise_on_failure
        #: Unrecoverable bits in used columns, over every programming.
        self.write_failures = 0
        n_in, n_out = self.weights.shape
        self.row_tiles = -(-n_in // self.rows)
        self.col_tiles = -(-n_out // self.cols)
        self.tiles = [(a, b) for a in range(self.row_tiles) for b in range(self.col_tiles)]
        # Tile k lives on array k mod N.
        self.assignment = {t: k % len(drivers) for k, t in enumerate(self.tiles)}
        self._resident: list[tuple[int, int] | None] = [None] * len(drivers)
        self._loaded_arrays: set[int] = set()
        self.cost = TilingCost(tiles=len(self.tiles), arrays=min(len(drivers), len(self.tiles)))

    @property
    def resident(self) -> bool:
        """Whether every tile has its own array (programming happens once)."""
        return len(self.tiles) <= len(self.drivers)

    def _slices(self, tile):
        a, b = tile
        return (slice(a * self.rows, min((a + 1) * self.rows, self.weights.shape[0])),
                slice(b * self.cols, min((b + 1) * self.cols, self.weights.shape[1])))

    async def _load(self, k: int, tile, cost: TilingCost) -> None:
        if self._resident[k] == tile:
            return
        d = self.drivers[k]
        before = d.stats["row_writes"]
        rs, cs = self._slices(tile)
        self._resident[k] = None
        rep = await d.program_weights(self.weights[rs, cs], verify=self.verify,
                                      raise_on_failure=self.raise_on_failure)
        self.write_failures += int(rep.fail_mask[:, : rep.cols_used].sum())
        self._resident[k] = tile
        cost.row_writes += d.stats["row_writes"] - before
        cost.programmings += 1
        if k in self._loaded_arrays:
            cost.reprogrammings += 1
        self._loaded_arrays.add(k)

    async def program(self) -> TilingCost:
        """Load the first tile of every array (all tiles when :attr:`resident`)."""
        cost = TilingCost(tiles=len(self.tiles), arrays=self.cost.arrays)
        for k in range(len(self.drivers)):
            mine = [t for t in self.tiles if self.assignment[t] == k]
            if mine:
                await self._load(k, mine[0], cost)
        self.cost += cost
        return cost

    async def matvec(self, inputs, allow_timeouts: bool = False, *, codes_out=None) -> TiledResult:
        """Products of a batch of ±1 inputs with the whole layer.

        Parameters
        ----------
        inputs : array_like, shape (batch, inputs)
            ±1 input vectors.
        allow_timeouts : bool
            Passed to :meth:`MacroDriver.matvec`.
        codes_out : numpy.ndarray of an integer dtype, shape (row_tiles, batch, outputs), optional
            Where to write the codes (cast as ``astype`` casts), e.g. a slice of a caller's
            narrower array: the codes of a large batch then go there directly instead of into
            a new int64 array that the caller would copy again. It is the result's ``codes``.

        Returns
        -------
        TiledResult
        """
        x = as_pm1(inputs, "inputs", 2)
        n_in, n_out = self.weights.shape
        if x.shape[1] != n_in:
            raise UsageError(f"inputs have {x.shape[1]} columns but the weights have {n_in} rows")
        batch = x.shape[0]
        shape = (self.row_tiles, batch, n_out)
        if codes_out is None:
            codes = np.zeros(shape, dtype=np.int64)
        else:
            codes = codes_out
            if not isinstance(codes, np.ndarray) or codes.shape != shape \
                    or not np.issubdtype(codes.dtype, np.integer):
                raise UsageError(f"codes_out must be an integer array of shape {shape}, not "
                                 f"{getattr(codes, 'dtype', type(codes).__name__)} {np.shape(codes)}")
        cost = TilingCost(tiles=len(self.tiles), arrays=self.cost.arrays)
        dot = np.zeros((batch, n_out))
        act = np.zeros((self.row_tiles, batch, n_out), dtype=bool)
        tmo = np.zeros((self.row_tiles, batch, n_out), dtype=bool)
        for k, d in enumerate(self.drivers):
            mine = [t for t in self.tiles if self.assignment[t] == k]
            if self._resident[k] in mine:  # start with what is loaded: saves a programming
                mine.remove(self._resident[k])
                mine.insert(0, self._resident[k])
            for tile in mine:
                await self._load(k, tile, cost)
                rs, cs = self._slices(tile)
                res = await d.matvec(x[:, rs], allow_timeouts=allow_timeouts)
                cost.computes += batch
                dot[:, cs] += res.dot
                codes[tile[0], :, cs] = res.codes
                act[tile[0], :, cs] = res.activations
                tmo[tile[0], :, cs] = res.timeouts
        self.cost += cost
        return TiledResult(dot, codes, act, tmo, cost)

    def matvec_sync(self, inputs, allow_timeouts: bool = False, *, codes_out=None) -> TiledResult:
        """:meth:`matvec` without ``await`` (no event loop with the fast model)."""
        coro = self.matvec(inputs, allow_timeouts=allow_timeouts, codes_out=codes_out)
        if all(getattr(d.regs, "synchronous", False) for d in self.drivers):
            return run_sync(coro)
        return asyncio.run(coro)
