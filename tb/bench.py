"""``make bench``: how fast the co-simulation and the fast model run, written to build/bench/bench.json.

One operation is one 64 x 64 matrix-vector product including the host's bus traffic (inputs
in, start, completion, every code and activation out), ``paper`` preset, random weights and
inputs, after a warm-up. Every result of the timed run is still checked against the golden
model, so speed can never change a result unnoticed.

Both one operation at a time (one COMPUTE each) and the hardware batch mode (the driver hands
the macro ``BATCH`` vectors, which it runs as one COMPUTE_BATCH with one completion) are
measured, through the in-simulator AXI4-Lite burst master of :mod:`tb.bus_engine` (Python wakes
once per block of bus transfers; every transfer still crosses the macro's AXI pins cycle by
cycle). Each co-simulation figure is the median of ``REPEATS`` runs, each a simulator process
of its own; every run's figure is in the JSON too. A figure that is not measured in a run
(``cosim_mnist10k_seconds`` without ``--full 1``) is written as ``null`` with the reason under
``notes``; nothing is estimated.
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser, redirect_output
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from macro_spec.params import MacroParams

from .castcache import CastCacheError, cast_cache_enabled, preload_env
from .runner import BUILD_ROOT, ROOT, SIMULATORS, build, run

#: Runs of each co-simulation figure; the median is reported (``--repeats``).
REPEATS = 3
#: Vectors per COMPUTE_BATCH in the batch figures (the default queue depth).
BATCH = MacroParams().batch_depth
#: The bus master of the timed runs (see the module docstring).
BENCH_BUS = "engine"

OUT = ROOT / "build" / "bench" / "bench.json"
TARGETS = {"cosim_ops_per_s.verilator": 400, "cosim_ops_per_s.icarus": 200,
           "cosim_batch_ops_per_s.verilator": 1500, "cosim_batch_ops_per_s.icarus": 750,
           "model_mnist10k_seconds": 2.0, "cosim_mnist10k_seconds": 300.0}


def bench_cosim(sim: str, n_ops: int, seed: int, batch: int = 1, bus: str = "lean") -> dict:
    """Throughput through cocotb, the adapter and the edge shim: one operation at a time
    (``batch`` 1) or ``batch`` vectors per COMPUTE_BATCH, with the given bus master."""
    params = MacroParams()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cosim.json"
        tests, failed, results = run(sim, params, "tb.test_bench", testcase="bench_ops", shim=True,
                                     config={"preset": "paper", "seed": seed, "n_ops": n_ops, "out": str(out),
                                             "batch": batch, "bus": bus},
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


def bench_mnist_cosim(shards: int, seed: int) -> dict:
    """All 10,000 test digits through the Verilator co-simulation, ``shards`` simulator processes
    at once (a contiguous slice of the digits each, same chip seed), with the driver's batch path.

    Each shard's codes are compared with the fast model running the same digits with the same
    seed: speed must not change a result. Returns seconds (after the build), accuracy and the
    number of differing codes.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from apps.mnist import load_mnist
    from apps.mnist_mlp import load_weights, preprocess, run_on_cosim, run_on_model

    images, labels = load_mnist("test")
    weights = load_weights()
    x = preprocess(images, weights)
    build("verilator", MacroParams(), shim=True)  # once, before the clock starts
    parts = np.array_split(np.arange(x.shape[0]), shards)
    log = ROOT / "build" / "bench" / "mnist_cosim.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(shards, mp_context=multiprocessing.get_context("spawn"),
                             initializer=redirect_output, initargs=(str(log), True)) as pool:
        futures = [pool.submit(run_on_cosim, weights, x[idx], sim="verilator", seed=seed, calibrate=False,
                               results_tag=f"_shard{k}") for k, idx in enumerate(parts)]
        outs = [f.result() for f in futures]
    seconds = time.perf_counter() - t0
    differing = compared = 0
    for idx, co in zip(parts, outs):
        ref = run_on_model(weights, x[idx], seed=seed, calibrate=False, chunk=None)  # as the co-simulation
        for key in ("codes1", "codes2"):
            differing += int(np.count_nonzero(ref[key] != co[key]))
            compared += int(ref[key].size)
    pred = np.concatenate([o["pred"] for o in outs])
    return dict(seconds=seconds, digits=int(x.shape[0]), shards=shards,
                accuracy=float(np.mean(pred == labels)), codes_compared=compared, codes_differing=differing)


def main(argv=None) -> int:
    """Run every benchmark, print a table, write :data:`OUT`."""
    import os

    p = OneLineArgumentParser(prog="make bench")
    p.add_argument("--ops", type=int, default=2000, help="timed co-simulation operations per simulator and mode")
    p.add_argument("--repeats", type=int, default=REPEATS,
                   help=f"runs of each co-simulation figure, the median reported (default {REPEATS})")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--full", default="0", help="1: also all 10,000 MNIST digits through the Verilator co-simulation")
    a = p.parse_args(argv)
    if a.ops < BATCH:
        print(f"error: --ops must be at least {BATCH} (one batch)", file=sys.stderr)
        return 2
    if not 1 <= a.repeats <= 15:
        print(f"error: --repeats must be 1 to 15, not {a.repeats}", file=sys.stderr)
        return 2
    if a.full not in ("0", "1"):
        print(f"error: FULL must be 0 or 1, not {a.full!r}", file=sys.stderr)
        return 2
    try:
        cast_cache_enabled()
    except CastCacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res: dict = {"cosim_ops_per_s": {}, "cosim_batch_ops_per_s": {}, "cosim_cpu_ops_per_s": {},
                 "cosim_batch_cpu_ops_per_s": {}, "cosim_runs_ops_per_s": {}, "cosim_batch_runs_ops_per_s": {},
                 "repeats": a.repeats, "cosim_transactions_per_op": {},
                 "cosim_batch_transactions_per_op": {}, "raw_verilator_ops_per_s": None, "build_seconds": {}}
    for sim in SIMULATORS:
        res["build_seconds"][sim] = round(bench_build(sim), 2)
        for key, batch in (("cosim", 1), ("cosim_batch", BATCH)):
            runs = [bench_cosim(sim, a.ops, a.seed, batch=batch, bus=BENCH_BUS) for _ in range(a.repeats)]
            res[f"{key}_ops_per_s"][sim] = round(statistics.median(c["ops_per_s"] for c in runs), 1)
            res[f"{key}_cpu_ops_per_s"][sim] = round(statistics.median(c["ops_per_cpu_s"] for c in runs), 1)
            res[f"{key}_runs_ops_per_s"][sim] = [round(c["ops_per_s"], 1) for c in runs]
            res[f"{key}_transactions_per_op"][sim] = round(runs[0]["transactions_per_op"], 2)
    from .raw_bench import raw_verilator_ops_per_s

    res["raw_verilator_ops_per_s"] = round(raw_verilator_ops_per_s(20_000, a.seed)["ops_per_s"], 1)
    res["cosim_fraction_of_raw_verilator"] = round(res["cosim_ops_per_s"]["verilator"] / res["raw_verilator_ops_per_s"], 3)
    res["model_ops_per_s"] = round(bench_model(100_000, a.seed)["ops_per_s"])
    t = bench_mnist_model()
    res["model_mnist10k_seconds"] = None if t is None else round(t, 3)
    res["cosim_mnist10k_seconds"] = None
    if a.full == "1":
        m = bench_mnist_cosim(os.cpu_count() or 1, a.seed)
        res["cosim_mnist10k_seconds"] = round(m["seconds"], 1)
        res["cosim_mnist10k"] = m
        if m["codes_differing"]:
            print(f"error: {m['codes_differing']} of {m['codes_compared']} codes differ between the "
                  "co-simulation and the fast model", file=sys.stderr)
            return 1
    res["notes"] = {
        "bus": f"{BENCH_BUS}: tb/bus_engine.py, an AXI4-Lite master inside the simulator that Python drives "
               "one block of transfers at a time",
        "cosim_batch_ops_per_s": f"{BATCH} vectors per COMPUTE_BATCH (hardware queue), one completion per batch",
        "raw_verilator_ops_per_s": "tb/raw/harness.cpp: same RTL and single operations, no Python; codes checked",
        "icarus_cast_cache": "whether the Icarus runs preloaded tb/castcache.c, the memo of the dynamic_cast "
                             "Icarus 11 performs on every signal read (MRAM_ICARUS_CAST_CACHE=0 turns it off)",
        "cosim_cpu_ops_per_s": "operations per CPU second of the simulator process (robust to a loaded machine)",
        "repeats": "each co-simulation figure is the median of this many runs, each its own simulator process "
                   "timing --ops operations after its warm-up; every run's figure is under *_runs_ops_per_s "
                   "(a shared virtual machine's speed moves by a third from minute to minute)",
        "model_mnist10k_seconds": "null when apps.mnist_mlp or the MNIST files are not available",
        "cosim_mnist10k_seconds": "measured with FULL=1 only (make bench FULL=1): the perceptron on all 10,000 "
                                  "digits, sharded over the machine's cores; codes checked against the fast model",
    }
    res["icarus_cast_cache"] = bool(preload_env(BUILD_ROOT))
    res["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    rows = [(f"cosim_ops_per_s.{s}", res["cosim_ops_per_s"][s]) for s in SIMULATORS]
    rows += [(f"cosim_batch_ops_per_s.{s}", res["cosim_batch_ops_per_s"][s]) for s in SIMULATORS]
    rows += [("raw_verilator_ops_per_s", res["raw_verilator_ops_per_s"]),
             ("cosim_fraction_of_raw_verilator", res["cosim_fraction_of_raw_verilator"]),
             ("model_ops_per_s", res["model_ops_per_s"]),
             ("model_mnist10k_seconds", res["model_mnist10k_seconds"]),
             ("cosim_mnist10k_seconds", res["cosim_mnist10k_seconds"])]
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
