"""Characterise the analog model like the chip was characterised: draw an array, measure it.

Usage::

    python -m analog_models.characterize --out build/characterize [--preset paper] [--seed 0]
                                         [--rows 64] [--cols 64] [--evals 4000]

Writes ``stats.json`` (device statistics, delays, write error rate, dot-product error, energy) and
four PNG figures: ``resistance_hist.png``, ``fire_time_vs_mismatch.png``, ``dot_error_hist.png``
and ``wer_vs_pulse.png``.
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import json
import sys
from pathlib import Path

import numpy as np

from . import physics
from .array import FIRE_NEVER, MramArray
from .config import PRESETS, preset


def measure(preset_name: str = "paper", rows: int = 64, cols: int = 64, seed: int = 0,
            evals: int = 4000) -> tuple[dict, dict]:
    """Run the characterisation; returns (stats, raw data for the figures)."""
    cfg = preset(preset_name)
    arr = MramArray(cfg, rows, cols, seed=seed)
    lo, hi = arr.device_resistance_ohm()
    gen = np.random.default_rng(seed)  # test-pattern generator only, not the device model

    # Fire time versus mismatches: all-+1 weights, inputs with the first m rows at -1.
    arr.program_ideal(np.ones((rows, cols), dtype=np.int8))
    reps = 8
    ms = np.arange(rows + 1)
    x = np.ones((rows + 1, rows), dtype=bool)
    for m in ms:
        x[m, :m] = False
    fire = arr.evaluate(np.repeat(x, reps, axis=0)).reshape(rows + 1, reps, cols).astype(float)
    fire[fire >= FIRE_NEVER] = np.nan
    fire_mean_ns = np.nanmean(fire, axis=(1, 2)) / 1000.0
    fire_std_ns = np.nanstd(fire, axis=(1, 2)) / 1000.0

    # Dot products with random weights and inputs; estimate dot from fire time via a linear fit
    # (global fit, then per-column offsets as the chip does digitally).
    w = np.where(gen.random((rows, cols)) < 0.5, 1, -1).astype(np.int8)
    arr.program_ideal(w)
    xr = gen.random((evals, rows)) < 0.5
    t = arr.evaluate(xr).astype(float)
    dot = (np.where(xr, 1, -1) @ w.astype(np.int64)).astype(float)
    ok = t < FIRE_NEVER
    slope, icpt = np.polyfit(t[ok], dot[ok], 1)
    est = slope * t + icpt
    col_off = np.nanmean(np.where(ok, dot - est, np.nan), axis=0)
    err = (est + col_off - dot)[ok]
    err_global = (est - dot)[ok]

    # Write error rate: analytic curve and a Monte-Carlo check at the nominal pulse.
    pw_nom = cfg.write.nominal_pulse_width_ps
    pws = np.linspace(0.25, 2.0, 36) * pw_nom
    wer_curve = physics.write_error_rate(cfg, pws)
    arr.program_ideal(-np.ones((rows, cols), dtype=np.int8))  # A high, B low
    failures = attempts = 0
    for rnd in range(4):
        for r in range(rows):
            for side in (0, 1):
                state = arr.state_a if side == 0 else arr.state_b
                target = ~state[r]
                sw = arr.write_pulse(r, side, target, np.ones(cols, bool), pw_nom)
                failures += int(np.count_nonzero(~sw))
                attempts += cols
    wer_mc = failures / attempts

    e_eval = arr.energy_per_evaluation_j(xr[:256]).mean()
    ops = 2 * rows * cols
    stats = {
        "preset": preset_name, "rows": rows, "cols": cols, "seed": seed,
        "n_devices": int(lo.size),
        "r_low_mean_ohm": float(lo.mean()), "r_low_sigma_ohm": float(lo.std()),
        "r_high_mean_ohm": float(hi.mean()), "r_high_sigma_ohm": float(hi.std()),
        "delay_ns_all_match": float(fire_mean_ns[0]),
        "delay_ns_all_mismatch": float(fire_mean_ns[-1]),
        "delay_sigma_ns_all_match": float(fire_std_ns[0]),
        "delay_sigma_ns_all_mismatch": float(fire_std_ns[-1]),
        "delay_ps_per_mismatch": float(np.polyfit(ms, fire_mean_ns * 1000.0, 1)[0]),
        "write_error_rate": float(physics.write_error_rate(cfg, pw_nom)),
        "write_error_rate_monte_carlo": wer_mc, "write_attempts_monte_carlo": attempts,
        "nominal_pulse_width_ps": pw_nom,
        "dot_error_rms_global_fit": float(np.sqrt(np.mean(err_global ** 2))),
        "dot_error_rms_after_column_offsets": float(np.sqrt(np.mean(err ** 2))),
        "dot_products": int(err.size),
        "energy_per_evaluation_j": float(e_eval),
        "energy_per_write_pulse_j": float(arr.energy_per_write_pulse_j(pw_nom)),
        "tops_per_w_array_core": float(ops / e_eval / 1e12),
    }
    raw = {"lo": lo.ravel(), "hi": hi.ravel(), "ms": ms, "fire_mean_ns": fire_mean_ns,
           "fire_std_ns": fire_std_ns, "err": err, "err_global": err_global, "pws": pws,
           "wer_curve": wer_curve, "pw_nom": pw_nom, "wer_mc": wer_mc}
    return stats, raw


def plot(raw: dict, out: Path) -> list[str]:
    """Write the PNG figures; returns their file names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(raw["lo"] / 1e3, bins=80, alpha=0.7, label="low (P)")
    ax.hist(raw["hi"] / 1e3, bins=80, alpha=0.7, label="high (AP)")
    ax.set_xlabel("branch resistance (kΩ, FET included)")
    ax.set_ylabel("devices")
    ax.legend()
    ax.set_title(f"{raw['lo'].size} MTJ branches, each drawn in both states")
    fig.tight_layout()
    fig.savefig(out / "resistance_hist.png", dpi=110)
    names.append("resistance_hist.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(raw["ms"], raw["fire_mean_ns"], yerr=raw["fire_std_ns"], fmt=".", capsize=2)
    ax.set_xlabel("mismatches in the column")
    ax.set_ylabel("comparator fire time (ns)")
    ax.set_title("fire time vs mismatches (mean ± σ over columns and repeats)")
    fig.tight_layout()
    fig.savefig(out / "fire_time_vs_mismatch.png", dpi=110)
    names.append("fire_time_vs_mismatch.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-12, 12, 49)
    ax.hist(raw["err_global"], bins=bins, alpha=0.6, label="global linear fit")
    ax.hist(raw["err"], bins=bins, alpha=0.6, label="plus per-column offsets")
    ax.set_xlabel("estimated − true dot product")
    ax.set_ylabel("count")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "dot_error_hist.png", dpi=110)
    names.append("dot_error_hist.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(raw["pws"] / 1000.0, raw["wer_curve"], "-", label="model")
    ax.semilogy([raw["pw_nom"] / 1000.0], [max(raw["wer_mc"], 1e-6)], "o", label="Monte Carlo")
    ax.set_xlabel("write pulse width (ns)")
    ax.set_ylabel("write error rate per bit per pulse")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "wer_vs_pulse.png", dpi=110)
    names.append("wer_vs_pulse.png")
    plt.close(fig)
    return names


def _positive(lo: int, hi: int):
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is outside {lo}..{hi}")
        return v
    return conv


def main(argv=None) -> int:
    """Command-line entry point."""
    p = OneLineArgumentParser(prog="python -m analog_models.characterize", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--preset", default="paper", choices=PRESETS)
    p.add_argument("--seed", type=_positive(0, 2 ** 63), default=0)
    p.add_argument("--rows", type=_positive(8, 128), default=64)
    p.add_argument("--cols", type=_positive(8, 128), default=64)
    p.add_argument("--evals", type=_positive(16, 10_000_000), default=4000,
                   help="random dot-product evaluations for the error histogram")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    a = p.parse_args(argv)
    out = Path(a.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        p.error(f"cannot create {out}: {e.strerror}")
    stats, raw = measure(a.preset, a.rows, a.cols, a.seed, a.evals)
    stats["figures"] = [] if a.no_plots else plot(raw, out)
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(f"wrote {out / 'stats.json'}: all-match {stats['delay_ns_all_match']:.2f} ns, "
          f"all-mismatch {stats['delay_ns_all_mismatch']:.2f} ns, "
          f"WER {stats['write_error_rate']:.2e}, dot error rms "
          f"{stats['dot_error_rms_after_column_offsets']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
