"""Operating-condition sweeps, like the paper's supply and frequency study.

For each point of each sweep a fresh set of simulated chips is built from the ``paper`` (or
``fine``) preset with one or more config overrides, configured from that config's register
settings and calibrated **at that operating point** (the firmware recalibrates after a change of
conditions, as the MCU of the evaluation board would). Then:

* **dot-product error**: :func:`apps.error_model.measure_fast` (``n_dots`` dot products over 2
  chips x 2 programmings), reported as mean |estimate - true| for uniformly random ±1 inputs
  and weights (the binomial weighting of the conditional table);
* **accuracy**: the two-layer perceptron of :mod:`apps.mnist_mlp` run on the fast model
  (``run_on_model(..., config=...)``) when its weights exist, and the binary VGG-8 emulated
  with the error table measured at that point (:mod:`apps.vgg8`), both on the first
  ``n_digits`` test digits;
* **energy efficiency**: 2 x 64 x 64 operations per evaluation (one multiply and one add per
  cell) divided by (a) the analog core's energy from ``MramArray.energy_per_evaluation_j`` on
  the measurement's inputs, and (b) that plus an **assumed** TDC energy: every column's counter
  is clocked for TDC_TIMEOUT cycles at :data:`TDC_ENERGY_PER_COLUMN_CYCLE_J` (2 fJ at 1.0 V, a
  few flip-flops' clock load in 28 nm, scaling with V²). Control, clock tree and I/O are not
  included, so both figures are upper bounds on what a chip would show.

Sweeps (:data:`SWEEPS`): TDC clock period under ``paper`` (4-bit counter; a longer period is a
coarser TDC), TDC step under ``fine`` (mismatches per code), supply voltage, temperature, and
device spread (both resistance sigmas scaled).

Command: ``python -m apps.sweeps --out build/paper [--n-digits 1000] [--n-dots 262144]``.
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import json
import sys
import time
from pathlib import Path

import numpy as np

from .error_model import ROWS, measure_fast

#: Assumed TDC energy per column per clock cycle at the nominal 1.0 V (not in the analog model).
TDC_ENERGY_PER_COLUMN_CYCLE_J = 2e-15
OPS_PER_EVALUATION = 2 * ROWS * 64

#: name -> (preset, x label, list of (x value, overrides)).
SWEEPS = {
    "clock": ("paper", "TDC clock period (ns), 4-bit counter",
              [(t / 1000, {"clock_period_ps": t}) for t in (500, 1000, 1250, 2000, 2500)]),
    "tdc_step": ("fine", "TDC step (clock cycles per code, 250 ps clock)",
                 [(s, {"controller.tdc_step_cycles": s}) for s in (1, 2, 4, 8)]),
    "supply": ("paper", "supply voltage (V)",
               [(v, {"env.supply_v": v}) for v in (0.8, 0.9, 1.0, 1.1, 1.2)]),
    "temperature": ("paper", "temperature (K)",
                    [(t, {"env.temperature_k": t}) for t in (250.0, 300.0, 350.0, 400.0)]),
    "spread": ("paper", "device spread (x paper sigma 1.6/2.0 kOhm)",
               [(k, {"device.r_low_sigma_ohm": 1600.0 * k, "device.r_high_sigma_ohm": 2000.0 * k})
                for k in (0.0, 0.5, 1.0, 1.5, 2.0)]),
}


def _network(label: str, load_weights, n_digits: int, log):
    """(weights, test images, labels) of a network, or None (with the reason logged) when its
    weights or the first ``n_digits`` MNIST test digits cannot be read."""
    from .mnist import MnistError, load_mnist
    try:
        w = load_weights()
        x, y = load_mnist("test", limit=n_digits)
    except (OSError, MnistError) as exc:
        log(f"{label} accuracy left out of the sweeps: {exc}")
        return None
    return w, x, y


def _mlp(n_digits: int, log=print):
    """(weights, preprocessed inputs, labels) of the two-layer perceptron of
    :mod:`apps.mnist_mlp`, or None (see :func:`_network`)."""
    from .mnist_mlp import load_weights, preprocess
    net = _network("MLP", load_weights, n_digits, log)
    if net is None:
        return None
    w, x, y = net
    return w, preprocess(x, w), y


def _vgg(n_digits: int, log=print):
    """(parameters, images, labels) of the binary VGG-8 of :mod:`apps.vgg8`, or None (see
    :func:`_network`)."""
    from . import vgg8
    return _network("VGG-8", vgg8.load_weights, n_digits, log)


def run_point(preset_name: str, overrides: dict, *, n_dots: int, n_digits: int, seed: int, vgg, mlp) -> dict:
    """Error, accuracies and efficiency at one operating point."""
    from analog_models.config import preset
    t0 = time.time()
    em = measure_fast(n_dots, preset_name=preset_name, overrides=overrides, chips=2, programmings=2, seed=seed)
    cfg = preset(preset_name, **overrides)
    regs = em.meta["registers"]
    e_analog = em.meta["energy_per_evaluation_j"]
    v = cfg.env.supply_v / cfg.env.nominal_supply_v
    e_tdc = 64 * regs["TDC_TIMEOUT"] * TDC_ENERGY_PER_COLUMN_CYCLE_J * v * v
    out = dict(preset=preset_name, overrides=overrides, n_dots=em.n,
               mean_abs_error=em.mean_abs_error_random_inputs(), timeouts=em.meta["timeouts"],
               energy_analog_pj=e_analog * 1e12, energy_tdc_pj=e_tdc * 1e12,
               tops_per_w_analog=OPS_PER_EVALUATION / e_analog / 1e12,
               tops_per_w_with_tdc=OPS_PER_EVALUATION / (e_analog + e_tdc) / 1e12,
               evaluation_ns=(regs["TDC_TIMEOUT"] + regs["PRECHARGE"]) * cfg.clock_period_ps / 1000)
    if vgg is not None:
        from . import vgg8
        p, x, y = vgg
        out["vgg8_emulated"] = vgg8.accuracy(p, x, y, em, seed=seed)
    if mlp is not None:
        from .mnist_mlp import accuracy, run_on_model
        w, x, y = mlp
        r = run_on_model(w, x, config=cfg, seed=seed)
        out["mlp_hardware"] = accuracy(r["pred"], y)
    out["seconds"] = round(time.time() - t0, 1)
    return out


def run_sweeps(out_dir: Path, *, n_dots: int = 262_144, n_digits: int = 1000, seed: int = 0,
               names=None, log=print) -> dict:
    """Run the sweeps, write ``sweeps.json`` and one PNG per sweep into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    vgg, mlp = _vgg(n_digits, log), _mlp(n_digits, log)
    results = dict(n_digits=n_digits, n_dots=n_dots, seed=seed, mlp_available=mlp is not None,
                   vgg8_available=vgg is not None,
                   tdc_energy_per_column_cycle_j=TDC_ENERGY_PER_COLUMN_CYCLE_J, sweeps={})
    for name in names or SWEEPS:
        preset_name, xlabel, points = SWEEPS[name]
        rows = []
        for xv, over in points:
            r = run_point(preset_name, over, n_dots=n_dots, n_digits=n_digits, seed=seed, vgg=vgg, mlp=mlp)
            r["x"] = xv
            rows.append(r)
            log(f"{name} {xv}: " + json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                                              for k, v in r.items() if k not in ("overrides",)}))
        results["sweeps"][name] = dict(preset=preset_name, xlabel=xlabel, points=rows)
        plot_sweep(name, results["sweeps"][name], out_dir / f"sweep_{name}.png")
    (out_dir / "sweeps.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def plot_sweep(name: str, sweep: dict, path: Path) -> Path:
    """Three panels against the swept parameter: mean |error|, accuracy, TOPS/W."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sweep["points"]
    x = [p["x"] for p in pts]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(x, [p["mean_abs_error"] for p in pts], "o-")
    ax[0].set_ylabel("mean |dot error| (random inputs)")
    for key, lab in (("vgg8_emulated", "VGG-8 emulated"), ("mlp_hardware", "MLP on the model")):
        if key in pts[0]:
            ax[1].plot(x, [100 * p[key] for p in pts], "o-", label=lab)
    ax[1].set_ylabel("MNIST accuracy (%)")
    if ax[1].lines:
        ax[1].legend(fontsize=8)
    else:  # no weights or no MNIST: the run logged why
        ax[1].text(0.5, 0.5, "no network accuracy\n(weights or MNIST missing)", ha="center", va="center",
                   transform=ax[1].transAxes)
    ax[2].plot(x, [p["tops_per_w_analog"] for p in pts], "o-", label="analog core")
    ax[2].plot(x, [p["tops_per_w_with_tdc"] for p in pts], "s--", label="+ assumed TDC")
    ax[2].set_ylabel("TOPS/W")
    ax[2].set_yscale("log")
    ax[2].legend(fontsize=8)
    for a in ax:
        a.set_xlabel(sweep["xlabel"])
        a.grid(alpha=0.3)
    fig.suptitle(f"sweep '{name}' (preset {sweep['preset']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = OneLineArgumentParser(prog="python -m apps.sweeps", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("build") / "paper")
    ap.add_argument("--n-dots", type=int, default=262_144)
    ap.add_argument("--n-digits", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", choices=sorted(SWEEPS), default=None)
    a = ap.parse_args(argv)
    if a.n_dots < 1 or a.n_digits < 1:
        ap.error(f"--n-dots and --n-digits must be at least 1, not {a.n_dots} and {a.n_digits}")
    try:
        run_sweeps(a.out, n_dots=a.n_dots, n_digits=a.n_digits, seed=a.seed, names=a.only)
    except OSError as exc:  # the output folder cannot be written
        print(f"python -m apps.sweeps: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
