"""``make bench``: how fast the co-simulation and the fast model run, written to build/bench/bench.json.

One operation is one 64 x 64 matrix-vector product including the host's bus traffic (inputs
in, start, completion, every code and activation out), ``paper`` preset, random weights and
inputs, after a warm-up. Every result of the timed run is still checked against the golden
model, so speed can never change a result unnoticed.

Keys that this project does not implement yet (the hardware batch mode) are written as ``null``
with the reason under ``notes``; nothing is estimated.
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from macro_spec.params import MacroParams

from .runner import ROOT, SIMULATORS, build, run

OUT = ROOT / "build" / "bench" / "bench.json"
TARGETS = {"cosim_ops_per_s.verilator": 400, "cosim_ops_per_s.icarus": 200,
           "cosim_batch_ops_per_s.verilator": 1500, "cosim_batch_ops_per_s.icarus": 750,
           "model_mnist10k_seconds": 2.0}


def bench_cosim(sim: str, n_ops: int, seed: int) -> dict:
    """Single-operation throughput through cocotb, the adapter and the edge shim."""
    params = MacroParams()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cosim.json"
        tests, failed, results = run(sim, params, "tb.test_bench", testcase="bench_ops", shim=True,
                                     config={"preset": "paper", "seed": seed, "n_ops": n_ops, "out": str(out)},
                                     results_name="bench")
        if failed or not out.exists():
            raise RuntimeError(f"the {sim} benchmark failed; see {results}")
        return json.loads(out.read_text())


def bench_build(sim: str) -> float:
    """Seconds for a clean build of the default macro (with the shim, as the benchmark uses it)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        build(sim, MacroParams(), shim=True, root=Path(tmp))
        return time.perf_counter() - t0


def bench_model(n_ops: int, seed: int) -> dict:
    """Fast-model throughput: a batch of computes through the driver."""
    from analog_models.config import preset
    from firmware.driver import SyncMacroDriver
    from firmware.model import FastMacroModel

    params, cfg = MacroParams(), preset("paper")
    drv = SyncMacroDriver(FastMacroModel(params, cfg, seed=seed))
    drv.open()
    drv.configure(cfg.register_settings(params))
    rng = np.random.default_rng(seed)
    drv.program_weights(rng.choice([-1, 1], size=(params.rows, params.cols)), raise_on_failure=False)
    x = rng.choice([-1, 1], size=(n_ops, params.rows))
    drv.matvec(x[:100])
    t0 = time.perf_counter()
    drv.matvec(x)
    wall = time.perf_counter() - t0
    return {"ops_per_s": n_ops / wall}


def bench_mnist_model() -> float | None:
    """Seconds for the two-layer perceptron over all 10,000 test digits on the fast model."""
    try:
        from apps.mnist import MnistError, load_mnist
        from apps.mnist_mlp import load_weights, preprocess, run_on_model
    except ImportError:
        return None
    try:
        images, _labels = load_mnist("test")
    except MnistError:
        return None
    weights = load_weights()
    run_on_model(weights, preprocess(images[:200], weights))  # warm-up: imports, tables
    t0 = time.perf_counter()
    # All digits in one pass: each tile is programmed (with verify) once, not once per chunk.
    run_on_model(weights, preprocess(images, weights), chunk=None)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    """Run every benchmark, print a table, write :data:`OUT`."""
    p = OneLineArgumentParser(prog="make bench")
    p.add_argument("--ops", type=int, default=2000, help="timed co-simulation operations per simulator")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.ops < 1:
        print("error: --ops must be at least 1", file=sys.stderr)
        return 2
    res: dict = {"cosim_ops_per_s": {}, "cosim_cpu_ops_per_s": {}, "cosim_transactions_per_op": {},
                 "cosim_batch_ops_per_s": {s: None for s in SIMULATORS}, "raw_verilator_ops_per_s": None,
                 "build_seconds": {}}
    for sim in SIMULATORS:
        res["build_seconds"][sim] = round(bench_build(sim), 2)
        c = bench_cosim(sim, a.ops, a.seed)
        res["cosim_ops_per_s"][sim] = round(c["ops_per_s"], 1)
        res["cosim_cpu_ops_per_s"][sim] = round(c["ops_per_cpu_s"], 1)
        res["cosim_transactions_per_op"][sim] = c["transactions_per_op"]
    from .raw_bench import raw_verilator_ops_per_s

    res["raw_verilator_ops_per_s"] = round(raw_verilator_ops_per_s(20_000, a.seed)["ops_per_s"], 1)
    res["cosim_fraction_of_raw_verilator"] = round(res["cosim_ops_per_s"]["verilator"] / res["raw_verilator_ops_per_s"], 3)
    res["model_ops_per_s"] = round(bench_model(100_000, a.seed)["ops_per_s"])
    t = bench_mnist_model()
    res["model_mnist10k_seconds"] = None if t is None else round(t, 3)
    res["notes"] = {
        "cosim_batch_ops_per_s": "not implemented: the controller has no hardware batch queue yet",
        "raw_verilator_ops_per_s": "tb/raw/harness.cpp: same RTL and operations, no Python; codes checked",
        "cosim_cpu_ops_per_s": "operations per CPU second of the simulator process (robust to a loaded machine)",
        "model_mnist10k_seconds": "null when apps.mnist_mlp or the MNIST files are not available",
    }
    res["machine"] = {"cpus": __import__("os").cpu_count(), "python": sys.version.split()[0]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    rows = [(f"cosim_ops_per_s.{s}", res["cosim_ops_per_s"][s]) for s in SIMULATORS]
    rows += [(f"cosim_batch_ops_per_s.{s}", None) for s in SIMULATORS]
    rows += [("raw_verilator_ops_per_s", res["raw_verilator_ops_per_s"]),
             ("cosim_fraction_of_raw_verilator", res["cosim_fraction_of_raw_verilator"]),
             ("model_ops_per_s", res["model_ops_per_s"]),
             ("model_mnist10k_seconds", res["model_mnist10k_seconds"])]
    rows += [(f"build_seconds.{s}", res["build_seconds"][s]) for s in SIMULATORS]
    print(f"{'figure':34} {'measured':>12} {'target':>10}")
    for key, value in rows:
        target = TARGETS.get(key)
        shown = "n/a" if value is None else f"{value:,}"
        print(f"{key:34} {shown:>12} {'' if target is None else format(target, ','):>10}")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
