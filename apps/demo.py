"""``make demo``: the paper's two-layer perceptron on the macro, end to end.

1. Software: exact ±1 arithmetic on all 10,000 MNIST test digits.
2. Fast bit-exact model, ``paper`` preset, one 64 x 64 array reprogrammed tile by tile (with
   verify), all 10,000 digits, with each hardware-aware measure added in turn:
   bare (the design's nominal code line), + per-column calibration (offsets and gains),
   + thresholds retuned against errors measured on 2,000 training digits, the weights trained
   with the measured error model (when ``apps/weights/mnist_mlp_noise.npz`` exists), and the
   headline: + the output layer read twice with dither (:class:`apps.bnn.MacroDense`); and, on
   the model only, the hidden layer read twice with dither as well.
3. RTL co-simulation (Verilator) of the final configuration on the first 200 test digits, in a
   child process while the model runs (its output goes to ``build/demo_cosim.log``); the model then repeats exactly that job (same digits,
   seed, config) and every TDC code of both layers is compared bit for bit.

Writes ``build/demo.json``; prints a progress bar and a table. A missing data set is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser, redirect_output
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path

import numpy as np

from .mnist import PROJECT_ROOT, MnistError, load_mnist
from .mnist_mlp import (DEFAULT_WEIGHTS, WEIGHTS_DIR, accuracy, load_weights, preprocess, retune,
                        run_on_cosim, run_on_model, software_forward)

NOISE_WEIGHTS = WEIGHTS_DIR / "mnist_mlp_noise.npz"
#: Reads per output-layer vector in the headline configuration (apps.bnn.MacroDense dither).
OUTPUT_DITHER = 2
#: Reads per hidden-layer vector in the best, model-only configuration.
HIDDEN_DITHER = 2
PAPER = {"hardware": 0.9323, "software": 0.9524}


class Progress:
    """A one-line text progress bar on stderr (no dependency); ``update(done, total)``."""

    def __init__(self, label: str, width: int = 30):
        self.label, self.width, self.t0 = label, width, time.time()
        self._last = ""

    def update(self, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        fill = int(round(frac * self.width))
        line = (f"\r  {self.label:<34} [{'#' * fill}{'.' * (self.width - fill)}] "
                f"{done:>5}/{total:<5} {time.time() - self.t0:6.1f} s")
        if line != self._last:
            sys.stderr.write(line)
            sys.stderr.flush()
            self._last = line

    def done(self) -> float:
        sys.stderr.write("\n")
        return time.time() - self.t0


def _cosim_task(weights, x, sim: str, seed: int, progress_file: str, output_dither: int) -> dict:
    """Runs in the child process: the perceptron on the co-simulated RTL."""
    return run_on_cosim(weights, x, sim=sim, seed=seed, calibrate=True, progress_file=progress_file,
                        output_dither=output_dither)


def _read_progress(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _run_model(label, weights, x, **kw) -> tuple[dict, float]:
    bar = Progress(label)
    bar.update(0, x.shape[0])
    out = run_on_model(weights, x, progress=bar.update, **kw)
    return out, bar.done()


def main(argv=None) -> int:
    """Run the demonstration; returns the exit status."""
    ap = OneLineArgumentParser(prog="python -m apps.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1, help="chip seed (device draws, noise, calibration)")
    ap.add_argument("--cosim-images", type=int, default=200)
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--limit", type=int, default=None, help="test digits on the model (default all)")
    ap.add_argument("--tune-images", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "demo.json")
    args = ap.parse_args(argv)
    t_start = time.time()
    try:
        images, labels = load_mnist("test", limit=args.limit)
        tune_images, _ = load_mnist("train", limit=args.tune_images)
        weights = load_weights(DEFAULT_WEIGHTS)
    except (MnistError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    x = preprocess(images, weights)
    n = x.shape[0]
    print(f"two-layer binary perceptron {x.shape[1]}-{weights.hidden}-10 on MNIST "
          f"({n} test digits), paper preset, chip seed {args.seed}", file=sys.stderr)
    seed = args.seed

    # --- software
    t0 = time.time()
    sw = software_forward(weights, x)
    sw_acc = accuracy(sw["pred"], labels)

    # --- the headline network: trained with the error model when its weights exist
    noise_w = load_weights(NOISE_WEIGHTS) if NOISE_WEIGHTS.is_file() else None
    head_w = noise_w or weights
    head_x = preprocess(images, head_w)

    # --- tuning run (training digits) on the same chip, then the co-simulation in the background
    x_tune = preprocess(tune_images, weights)
    tune_hw, _ = _run_model(f"retune: {x_tune.shape[0]} train digits", weights, x_tune, seed=seed,
                            calibrate=True)
    tuned = retune(weights, x_tune, tune_hw)
    head_dither = OUTPUT_DITHER
    xn_tune = preprocess(tune_images, head_w)
    if noise_w is not None:
        tn_hw, _ = _run_model("retune (error-model net)", noise_w, xn_tune, seed=seed, calibrate=True)
        noise_tuned = retune(noise_w, xn_tune, tn_hw)
    # The headline configuration retunes against errors measured with its own read scheme.
    th_hw, _ = _run_model("retune (headline, dithered)", head_w, xn_tune, seed=seed, calibrate=True,
                          output_dither=head_dither)
    head_tuned = retune(head_w, xn_tune, th_hw)
    n_co = min(args.cosim_images, n)
    cosim: dict = {}

    # The simulator runs in a child process whose output goes to a log file (the build chatter of
    # Verilator and cocotb would garble the progress bars); it reports progress through a file.
    log_path = args.out.parent / "demo_cosim.log"
    progress_path = args.out.parent / "demo_cosim.progress"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    progress_path.unlink(missing_ok=True)
    pool = future = None
    t_cosim = time.time()
    if n_co:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=redirect_output, initargs=(str(log_path),))
        future = pool.submit(_cosim_task, head_tuned, head_x[:n_co], args.sim, seed, str(progress_path),
                             head_dither)

    # --- the model, each measure in turn
    measures = {}
    bare, t = _run_model("model: bare", weights, x, seed=seed, calibrate=False)
    measures["bare"] = accuracy(bare["pred"], labels)
    cal, t = _run_model("model: + calibration", weights, x, seed=seed, calibrate=True)
    measures["calibrated"] = accuracy(cal["pred"], labels)
    tun, t = _run_model("model: + retuned thresholds", tuned, x, seed=seed, calibrate=True)
    measures["calibrated_retuned"] = accuracy(tun["pred"], labels)
    head_sw = sw_acc
    if noise_w is not None:
        head_sw = accuracy(software_forward(noise_w, head_x)["pred"], labels)
        measures["error_model_software"] = head_sw
        nb, t = _run_model("model: error-model net, bare", noise_w, head_x, seed=seed, calibrate=False)
        measures["error_model_bare"] = accuracy(nb["pred"], labels)
        nt, t = _run_model("model: error-model net, cal+retuned", noise_tuned, head_x, seed=seed,
                           calibrate=True)
        measures["error_model_calibrated_retuned"] = accuracy(nt["pred"], labels)
    head_out, t = _run_model(f"model: headline (+ output dither {head_dither})", head_tuned, head_x,
                             seed=seed, calibrate=True, output_dither=head_dither)
    model_acc = accuracy(head_out["pred"], labels)
    measures["headline_output_dither"] = model_acc
    # Model only: dithering the hidden layer too doubles its computes (80 instead of 36 per digit),
    # which the co-simulation cannot afford within the demo's time.
    hd_hw, _ = _run_model("retune (hidden dither too)", head_w, xn_tune, seed=seed, calibrate=True,
                          output_dither=head_dither, hidden_dither=HIDDEN_DITHER)
    hd_out, t = _run_model(f"model: + hidden dither {HIDDEN_DITHER} (model only)",
                           retune(head_w, xn_tune, hd_hw), head_x, seed=seed, calibrate=True,
                           output_dither=head_dither, hidden_dither=HIDDEN_DITHER)
    best_acc = accuracy(hd_out["pred"], labels)
    measures["hidden_and_output_dither"] = best_acc

    # --- co-simulation and the model on exactly the same job
    mismatches = None
    co_acc = None
    codes_compared = 0
    if n_co:
        bar = Progress(f"co-simulation ({args.sim}): {n_co} digits")
        bar.t0 = t_cosim
        while True:
            try:
                cosim["out"] = future.result(timeout=1.0)
                break
            except FuturesTimeout:
                bar.update(_read_progress(progress_path), n_co)
            except Exception as exc:  # reported in the table and the JSON, never a traceback
                cosim["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0] + f" (log: {log_path})"
                break
        cosim["seconds"] = time.time() - t_cosim
        pool.shutdown()
        bar.update(_read_progress(progress_path) if "out" not in cosim else n_co, n_co)
        bar.done()
        ref = run_on_model(head_tuned, head_x[:n_co], seed=seed, calibrate=True, chunk=None,
                           output_dither=head_dither)
        if "out" in cosim:
            co = cosim["out"]
            co_acc = accuracy(co["pred"], labels[:n_co])
            mismatches = int(np.count_nonzero(co["codes1"] != ref["codes1"])
                             + np.count_nonzero(co["codes2"] != ref["codes2"]))
            codes_compared = int(co["codes1"].size + co["codes2"].size)

    result = dict(
        software_accuracy=head_sw, model_accuracy=model_acc, model_images=n,
        model_configuration=("paper preset, one array reprogrammed per tile with verify, per-column "
                             f"calibration, thresholds retuned on {x_tune.shape[0]} training digits, "
                             f"output layer read {head_dither} times with dither, "
                             + ("weights trained with the error model" if noise_w is not None else "plain weights")),
        output_dither=head_dither,
        hardware_loss_points=round(100 * (head_sw - model_acc), 2),
        best_model_accuracy=best_acc,
        best_model_configuration=(f"as model_configuration, and the hidden layer read {HIDDEN_DITHER} times "
                                  "with dither (80 instead of 36 hidden-layer computes per digit; model only)"),
        best_hardware_loss_points=round(100 * (head_sw - best_acc), 2),
        baseline_software_accuracy=sw_acc,
        model_accuracy_by_measure=measures,
        cosim_accuracy=co_acc, cosim_images=n_co if co_acc is not None else 0,
        cosim_model_mismatches=mismatches, cosim_codes_compared=codes_compared,
        cosim_simulator=args.sim, cosim_error=cosim.get("error"),
        cosim_model_accuracy=accuracy(ref["pred"], labels[:n_co]) if n_co else None,
        cosim_software_accuracy=(accuracy(software_forward(head_w, head_x[:n_co])["pred"], labels[:n_co])
                                 if n_co else None),
        write_failures=int(head_out["write_failures"]), column_timeouts=int(head_out["timeouts"]),
        seed=seed, hidden=head_w.hidden, inputs=int(head_x.shape[1]),
        weights=str((NOISE_WEIGHTS if noise_w is not None else DEFAULT_WEIGHTS).relative_to(PROJECT_ROOT)),
        paper=PAPER, runtime_seconds=round(time.time() - t_start, 1),
        cosim_seconds=round(cosim.get("seconds", 0.0), 1),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    # --- table
    print()
    print(f"{'measure':<56} {'digits':>6} {'accuracy':>9} {'loss':>7}   (loss: points below software)")
    print("-" * 82)

    def line(name, digits, acc, ref=None):
        ref = sw_acc if ref is None else ref
        loss = "" if acc is None or ref is None else f"{100 * (ref - acc):+.2f}"
        a = "failed" if acc is None else f"{100 * acc:.2f} %"
        print(f"{name:<56} {digits:>6} {a:>9} {loss:>7}")

    line("software, exact ±1 (plain weights)", n, sw_acc)
    line("model, bare (nominal code line)", n, measures["bare"])
    line("model, + per-column calibration", n, measures["calibrated"])
    line("model, + thresholds retuned (train digits)", n, measures["calibrated_retuned"])
    if noise_w is not None:
        sw_acc = head_sw   # losses below: against the error-model net's own software
        line("software, error-model-trained weights", n, head_sw)
        line("model, error-model net, bare", n, measures["error_model_bare"])
        line("model, error-model net, cal + retuned", n, measures["error_model_calibrated_retuned"])
    line(f"model, + output layer dithered ({head_dither} reads)", n, model_acc)
    line(f"model, + hidden layer dithered ({HIDDEN_DITHER} reads), model only", n, best_acc)
    if n_co:
        co_sw = result["cosim_software_accuracy"]
        line("software on the co-simulated digits", n_co, co_sw, ref=co_sw)
        line(f"RTL co-simulation ({args.sim}), headline config", n_co, co_acc, ref=co_sw)
        print(f"co-simulation vs model: {mismatches} of {result['cosim_codes_compared']} codes differ"
              if mismatches is not None else f"co-simulation failed: {cosim.get('error')}")
    print(f"paper: hardware {100 * PAPER['hardware']:.2f} %, software {100 * PAPER['software']:.2f} %")
    print(f"wrote {args.out} in {result['runtime_seconds']:.0f} s")
    if n_co and (mismatches is None or mismatches):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
