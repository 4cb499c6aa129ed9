"""The macro's dot-product error, measured through the firmware, as a sampling table.

The paper characterised its chip with 1,600 dot products (short option) and about 4 million
(long option) and emulated VGG-8 with the measured errors. We do the same:

* **short run**: 1,600 dot products (25 input vectors x 64 columns) through the co-simulated
  RTL (:func:`firmware.cosim.run_job`, job ``matvec`` with calibration), and the same job on
  the fast model with the same seed, which must agree bit for bit;
* **long run**: millions of dot products on the fast model (:class:`firmware.model.FastMacroModel`
  behind :class:`firmware.driver.SyncMacroDriver`, batch path), over several chips (seeds) and
  several random weight programmings per chip, each chip calibrated first.

The result is :class:`ErrorModel`: counts ``C[t, e]`` of the driver's dot estimate, rounded to
the nearest integer ``e``, for each true 64-row dot ``t`` in -64, -62, ..., 64. P(e | t) is the
row normalised. Rounding the estimate (which the per-column gain correction makes non-integer)
moves it by at most 0.5, well below the measured spread.

Input design: every vector is a column's own weights with ``m`` rows flipped, ``m`` uniform in
0..64, for a column ``j`` chosen at random. Column ``j`` then sees exactly ``64 - 2m`` (all dot
values equally often), the other 63 columns a binomial spread around 0. The conditional P(e | t)
does not depend on how often ``t`` occurs, so the design only buys coverage of the rare
values at the ends of the range.

Commands::

    python -m apps.error_model --long 4000000 --short --out build/error_model
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Rows of one array: the error model describes one 64-row partial sum.
ROWS = 64
#: True dot values of a 64-row column (always even).
TRUE_DOTS = np.arange(-ROWS, ROWS + 1, 2)
#: Range of the stored (rounded) estimates; beyond it estimates are clipped.
EST_MIN, EST_MAX = -96, 96
EST_VALUES = np.arange(EST_MIN, EST_MAX + 1)

#: Committed copy of the long-run model (small: a 65 x 193 count table).
COMMITTED_PATH = Path(__file__).with_name("weights") / "error_model_paper.npz"
BUILD_DIR = Path("build") / "error_model"


@dataclass
class ErrorModel:
    """P(estimated dot | true dot) of one 64-row column, as a count table.

    Attributes
    ----------
    counts : numpy.ndarray of int64, shape (65, 193)
        ``counts[i, k]``: how often true dot ``TRUE_DOTS[i]`` was estimated as ``EST_VALUES[k]``.
    meta : dict
        How it was measured (preset, seeds, sizes, runtime).
    """

    counts: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if self.counts.shape != (TRUE_DOTS.size, EST_VALUES.size):
            raise ValueError(f"counts must have shape {(TRUE_DOTS.size, EST_VALUES.size)}, not {self.counts.shape}")
        if (self.counts < 0).any() or self.counts.sum() == 0:
            raise ValueError("counts must be non-negative and not all zero")
        self._lut = None

    # ------------------------------------------------------------------ building

    @classmethod
    def from_samples(cls, true_dot, est_dot, meta: dict | None = None) -> "ErrorModel":
        """Count table of paired true dots (even, -64..64) and estimates (any real)."""
        t = np.asarray(true_dot).ravel()
        e = np.asarray(est_dot, dtype=np.float64).ravel()
        if t.shape != e.shape:
            raise ValueError(f"true_dot and est_dot differ in size: {t.size} vs {e.size}")
        if np.any(t % 2) or np.any(np.abs(t) > ROWS):
            raise ValueError("true dots must be even and within -64..64")
        ti = ((t + ROWS) // 2).astype(np.int64)
        ei = np.clip(np.rint(e), EST_MIN, EST_MAX).astype(np.int64) - EST_MIN
        counts = np.zeros((TRUE_DOTS.size, EST_VALUES.size), np.int64)
        np.add.at(counts, (ti, ei), 1)
        return cls(counts, dict(meta or {}))

    @classmethod
    def exact(cls) -> "ErrorModel":
        """The error-free macro: the estimate always equals the true dot."""
        counts = np.zeros((TRUE_DOTS.size, EST_VALUES.size), np.int64)
        counts[np.arange(TRUE_DOTS.size), TRUE_DOTS - EST_MIN] = 1
        return cls(counts, dict(source="exact"))

    def __add__(self, other: "ErrorModel") -> "ErrorModel":
        return ErrorModel(self.counts + other.counts, dict(source="sum", parts=[self.meta, other.meta]))

    # --------------------------------------------------------------- statistics

    @property
    def n(self) -> int:
        """Dot products measured."""
        return int(self.counts.sum())

    def observed(self) -> np.ndarray:
        """Mask of the true dots that have at least one measurement."""
        return self.counts.sum(1) > 0

    def pmf(self) -> np.ndarray:
        """Rows of P(estimate | true), with unobserved rows filled as :meth:`sample` does."""
        c = self._filled_counts().astype(np.float64)
        return c / c.sum(1, keepdims=True)

    def error_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of (estimate - true) for every true dot (NaN if unobserved)."""
        c = self.counts.astype(np.float64)
        tot = c.sum(1)
        err = EST_VALUES[None, :] - TRUE_DOTS[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (c * err).sum(1) / tot
            sd = np.sqrt((c * (err - mean[:, None]) ** 2).sum(1) / tot)
        return mean, sd

    def mean_abs_error(self, weights: np.ndarray | None = None) -> float:
        """Mean |estimate - true| over the measured samples, or weighted by ``weights`` per true dot.

        With ``weights`` None the average is over the measurement's own mix of true dots.
        ``"binomial"``-like weightings are left to the caller (pass a length-65 vector).
        """
        c = self._filled_counts().astype(np.float64) if weights is not None else self.counts.astype(np.float64)
        abs_err = np.abs(EST_VALUES[None, :] - TRUE_DOTS[:, None])
        per_row = (c * abs_err).sum(1) / np.maximum(c.sum(1), 1)
        if weights is None:
            return float((c * abs_err).sum() / c.sum())
        w = np.asarray(weights, dtype=np.float64)
        return float((per_row * w).sum() / w.sum())

    def mean_abs_error_random_inputs(self) -> float:
        """Mean |error| for uniformly random ±1 inputs and weights (true dot ~ 2 Bin(64, 1/2) - 64)."""
        from math import comb
        w = np.array([comb(ROWS, k) for k in range(ROWS + 1)], dtype=np.float64)
        return self.mean_abs_error(w)

    # ----------------------------------------------------------------- sampling

    def _filled_counts(self) -> np.ndarray:
        """Counts with each unobserved row borrowed from the nearest observed one, shifted."""
        c = self.counts.copy()
        obs = np.flatnonzero(self.observed())
        for i in np.flatnonzero(~self.observed()):
            src = obs[np.argmin(np.abs(obs - i))]
            shift = 2 * (i - src)  # same error distribution, centred on this true dot
            c[i] = np.roll(self.counts[src], shift)
            if shift > 0:
                c[i, :shift] = 0
            elif shift < 0:
                c[i, shift:] = 0
            if c[i].sum() == 0:
                c[i, TRUE_DOTS[i] - EST_MIN] = 1
        return c

    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        """Walker alias tables of every row: (threshold float32, alias int16), (65, 193) each.

        Sampling draws one uniform u in [0, 193): bin k = floor(u) is kept when frac(u) <
        threshold[t, k], else replaced by alias[t, k]. Exact up to float32 resolution (~1e-5)
        and the tables are small enough to stay in cache, which is what makes emulating a whole
        network over millions of partial sums affordable.
        """
        if self._lut is None:
            p = self.pmf()
            k = p.shape[1]
            thr = np.ones_like(p)
            alias = np.tile(np.arange(k), (p.shape[0], 1))
            for i in range(p.shape[0]):
                q = p[i] * k
                small = [j for j in range(k) if q[j] < 1.0]
                large = [j for j in range(k) if q[j] >= 1.0]
                while small and large:
                    s_, l_ = small.pop(), large.pop()
                    thr[i, s_], alias[i, s_] = q[s_], l_
                    q[l_] -= 1.0 - q[s_]
                    (small if q[l_] < 1.0 else large).append(l_)
                for j in small + large:  # rounding leftovers: keep the bin
                    thr[i, j] = 1.0
            self._lut = (thr.astype(np.float32), (EST_VALUES[alias]).astype(np.int16),
                         EST_VALUES.astype(np.int16))
        return self._lut

    def sample(self, true_dot, rng=None) -> np.ndarray:
        """Estimates for an array of true 64-row dots, one independent draw per element.

        Parameters
        ----------
        true_dot : array_like of int
            Even values in -64..64, any shape.
        rng : numpy.random.Generator or int or None
            Source of the draws (seeded generator or seed).

        Returns
        -------
        numpy.ndarray of int16, same shape
        """
        t = np.asarray(true_dot)
        if t.size and (t.min() < -ROWS or t.max() > ROWS):
            raise ValueError(f"true dots must lie in -{ROWS}..{ROWS}, got {t.min()}..{t.max()}")
        t32 = t.astype(np.int32)
        if t.size and np.any(t32 & 1):
            raise ValueError("true dots of a 64-row column are even; got an odd value")
        rng = np.random.default_rng(rng)
        thr, alias, values = self._table()
        u = rng.random(size=t.shape, dtype=np.float32) * np.float32(EST_VALUES.size)
        k = u.astype(np.int32)
        np.minimum(k, EST_VALUES.size - 1, out=k)
        flat = ((t32 + ROWS) >> 1) * EST_VALUES.size + k
        keep = (u - k) < thr.ravel()[flat]
        return np.where(keep, values[k], alias.ravel()[flat])

    # ------------------------------------------------------------------- files

    def save(self, path) -> Path:
        """Write ``counts`` and ``meta`` (JSON) to an ``.npz``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, counts=self.counts, true_dots=TRUE_DOTS, est_values=EST_VALUES,
                            meta=np.array(json.dumps(self.meta)))
        return path

    @classmethod
    def load(cls, path) -> "ErrorModel":
        """Read a model written by :meth:`save`."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no error model at {path}: run python -m apps.error_model")
        with np.load(path) as f:
            return cls(f["counts"], json.loads(str(f["meta"])))


def load_error_model(path=None) -> ErrorModel:
    """The long-run model: ``path``, else build/error_model/long.npz, else the committed copy."""
    if path is not None:
        return ErrorModel.load(path)
    built = BUILD_DIR / "long.npz"
    return ErrorModel.load(built if built.exists() else COMMITTED_PATH)


# ----------------------------------------------------------------- measurement

def design_inputs(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` input vectors: a random column's weights with a uniform number of rows flipped."""
    rows, cols = weights.shape
    j = rng.integers(0, cols, n)
    m = rng.integers(0, rows + 1, n)
    # Flip exactly m rows: the m smallest of a random key per row.
    keys = rng.random((n, rows))
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    flip = rank < m[:, None]
    base = weights[:, j].T
    return np.where(flip, -base, base).astype(np.int8)


def _config(preset_name: str, overrides: dict | None):
    from analog_models.config import preset
    return preset(preset_name, **(overrides or {}))


def measure_fast(n_dots: int, *, preset_name: str = "paper", overrides: dict | None = None,
                 chips: int = 4, programmings: int = 4, seed: int = 0, supply_v: float | None = None,
                 temperature_k: float | None = None, return_samples: bool = False):
    """Long run on the fast model: ``n_dots`` dot products over ``chips`` x ``programmings``.

    Each chip (seed ``seed + c``) is opened, configured from the config's register settings and
    calibrated at the nominal operating point; then, if given, moved to ``supply_v`` /
    ``temperature_k`` (a chip calibrated once and then operated elsewhere, as in a supply sweep).

    Returns
    -------
    ErrorModel, or (ErrorModel, true, est) with ``return_samples``
    """
    from macro_spec.params import MacroParams
    from firmware.driver import SyncMacroDriver
    from firmware.model import FastMacroModel

    t0 = time.time()
    params = MacroParams()
    cfg = _config(preset_name, overrides)
    per_prog = max(1, -(-n_dots // (ROWS * chips * programmings)))
    rng = np.random.default_rng(seed)
    trues, ests = [], []
    timeouts = write_failures = 0
    for c in range(chips):
        model = FastMacroModel(params, cfg, seed=seed + c)
        drv = SyncMacroDriver(model)
        drv.open()
        drv.configure(cfg.register_settings(params))
        drv.calibrate(seed=seed + c)
        if supply_v is not None or temperature_k is not None:
            model.array.set_operating_point(supply_v=supply_v, temperature_k=temperature_k)
        for _ in range(programmings):
            w = rng.choice(np.array([-1, 1], np.int8), size=(params.rows, params.cols))
            rep = drv.program_weights(w, raise_on_failure=False)
            write_failures += int(rep.fail_mask.sum())
            x = design_inputs(w, per_prog, rng)
            res = drv.matvec(x, allow_timeouts=True)
            timeouts += int(res.timeouts.sum())
            # Truth is the intended weights: a bit the write left wrong counts as dot error, as it
            # would on the bench.
            trues.append(x.astype(np.int32) @ w.astype(np.int32))
            ests.append(np.asarray(res.dot))
        if c == 0:
            # Energy of the analog core on this chip's real workload (the design inputs).
            bits = x[:256] > 0
            energy_j = float(np.mean(model.array.energy_per_evaluation_j(bits)))
    true, est = np.concatenate(trues), np.concatenate(ests)
    meta = dict(energy_per_evaluation_j=energy_j, registers=cfg.register_settings(params), source="fast model", preset=preset_name, overrides=overrides or {}, chips=chips,
                programmings=programmings, seed=seed, n=int(true.size), timeouts=timeouts,
                write_failures=write_failures, supply_v=supply_v, temperature_k=temperature_k,
                seconds=round(time.time() - t0, 2))
    em = ErrorModel.from_samples(true, est, meta)
    return (em, true, est) if return_samples else em


def measure_cosim(n_dots: int = 1600, *, sim: str = "verilator", preset_name: str = "paper",
                  seed: int = 1, check_fast: bool = True) -> tuple[ErrorModel, dict]:
    """Short run through the co-simulated RTL: ``n_dots`` (a multiple of 64) dot products.

    Runs the firmware job ``matvec`` (open, configure, calibrate, program, compute) in the
    simulator and, with ``check_fast``, the same job on the fast model with the same seed.

    Returns
    -------
    (ErrorModel, info) where info holds ``true``, ``est``, ``est_fast``, ``identical`` and seconds.
    """
    from macro_spec.params import MacroParams
    from firmware.cosim import run_job
    from firmware.driver import MacroDriver, run_sync
    from firmware.jobs import matvec_job
    from firmware.model import FastMacroModel

    params = MacroParams()
    rng = np.random.default_rng(seed)
    w = rng.choice(np.array([-1, 1], np.int8), size=(params.rows, params.cols))
    x = design_inputs(w, -(-n_dots // params.cols), rng)
    t0 = time.time()
    res = run_job("matvec", sim=sim, params=params, preset=preset_name, seed=seed,
                  arrays={"weights": w, "inputs": x}, options={"calibrate": True})
    t_cosim = time.time() - t0
    info = dict(true=x.astype(np.int32) @ w.astype(np.int32), est=res["dot"], seconds_cosim=round(t_cosim, 1),
                write_failures=int(res["write_failures"]), sim=sim)
    if check_fast:
        cfg = _config(preset_name, None)
        fast = run_sync(matvec_job([MacroDriver(FastMacroModel(params, cfg, seed=seed))], cfg, w, x,
                                   calibrate=True, seed=seed))
        info["est_fast"] = fast["dot"]
        info["identical"] = bool(np.array_equal(fast["dot"], res["dot"]))
    meta = dict(source=f"co-simulation ({sim})", preset=preset_name, seed=seed, n=int(info["true"].size),
                seconds=info["seconds_cosim"], identical_to_fast_model=info.get("identical"))
    return ErrorModel.from_samples(info["true"], info["est"], meta), info


# --------------------------------------------------------------------- figures

def plot_error_model(em: ErrorModel, path, title: str, short: ErrorModel | None = None) -> Path:
    """Heat map of P(estimate | true) and the histogram of (estimate - true)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    p = em.counts / np.maximum(em.counts.sum(1, keepdims=True), 1)
    im = ax[0].imshow(np.log10(p.T + 1e-7), origin="lower", aspect="auto", cmap="viridis", vmin=-6, vmax=0,
                      extent=[TRUE_DOTS[0] - 1, TRUE_DOTS[-1] + 1, EST_MIN - 0.5, EST_MAX + 0.5])
    ax[0].plot([-64, 64], [-64, 64], "w:", lw=0.8)
    ax[0].set_xlabel("true dot product")
    ax[0].set_ylabel("estimated dot product")
    ax[0].set_ylim(-80, 80)
    ax[0].set_title("log10 P(estimate | true)")
    fig.colorbar(im, ax=ax[0])
    err = EST_VALUES[None, :] - TRUE_DOTS[:, None]
    bins = np.arange(-24, 25)
    for m, lab in ((em, f"long run, {em.n:,} dots"), (short, f"short run, {short.n:,} dots" if short else "")):
        if m is None:
            continue
        h = np.array([m.counts[err == b].sum() for b in bins], np.float64)
        ax[1].step(bins, h / h.sum(), where="mid", label=f"{lab}: mean |err| {m.mean_abs_error():.2f}")
    ax[1].set_yscale("log")
    ax[1].set_xlabel("estimate - true (dot units)")
    ax[1].set_ylabel("fraction")
    ax[1].legend(fontsize=8)
    ax[1].set_title("dot-product error")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = OneLineArgumentParser(prog="python -m apps.error_model", description=__doc__.split("\n")[0])
    ap.add_argument("--long", type=int, default=4_000_000, help="dot products on the fast model (0: skip)")
    ap.add_argument("--short", action="store_true", help="also 1,600 dot products through the co-simulation")
    ap.add_argument("--sim", default="verilator", choices=("icarus", "verilator"))
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=BUILD_DIR)
    ap.add_argument("--commit-copy", action="store_true", help=f"also write {COMMITTED_PATH}")
    a = ap.parse_args(argv)
    summary = {}
    short = None
    if a.short:
        short, info = measure_cosim(1600, sim=a.sim, preset_name=a.preset, seed=a.seed + 1)
        short.save(a.out / "short.npz")
        summary["short"] = dict(n=short.n, mean_abs_error=short.mean_abs_error(), identical_to_fast_model=info.get("identical"),
                                seconds=info["seconds_cosim"])
    if a.long:
        em = measure_fast(a.long, preset_name=a.preset, seed=a.seed)
        em.save(a.out / "long.npz")
        if a.commit_copy:
            em.save(COMMITTED_PATH)
        mean, sd = em.error_moments()
        summary["long"] = dict(n=em.n, mean_abs_error=em.mean_abs_error(),
                               mean_abs_error_random_inputs=em.mean_abs_error_random_inputs(),
                               sd_at_0=float(sd[ROWS // 2]), seconds=em.meta["seconds"])
        plot_error_model(em, a.out / "error_model.png", f"dot-product error, preset '{a.preset}'", short)
    (a.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
