"""``make simcost``: machine instructions per co-simulated operation, counted by Valgrind.

Wall-clock figures of ``make bench`` move by a third from run to run on a shared virtual
machine; an instruction count does not. This runs the benchmark's cocotb test (``tb.test_bench``,
``bench_ops``: the driver's batch path, every result checked against the golden model) twice
under ``valgrind --tool=callgrind``, with a short and a long run of the same operations, and
divides the difference of the two programs' instruction totals by the difference of their
operation counts: start-up, imports and warm-up cancel out. The result counts everything the
simulator process executes per operation (the simulator kernel, cocotb, the analog model), so a
change to the RTL, the generated Verilog, the wrapper or the Python side shows up as a change of
this number. Writes ``build/bench/simcost.json``.

Valgrind makes the simulator about 50 times slower: the default runs take a few minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from macro_spec.cli import OneLineArgumentParser
from macro_spec.params import MacroParams

from .castcache import CastCacheError, cast_cache_enabled
from .runner import ROOT, SIMULATORS, SimulatorError, check_simulator, run

OUT = ROOT / "build" / "bench" / "simcost.json"


def callgrind_total(path: Path) -> int:
    """The program's instruction total from a callgrind output file."""
    m = re.search(r"(?m)^(?:totals|summary): (\d+)", Path(path).read_text(errors="replace"))
    if not m:
        raise ValueError(f"{path}: no instruction total in the callgrind output")
    return int(m.group(1))


def instructions(sim: str, n_ops: int, batch: int, seed: int, tmp: Path) -> int:
    """Instructions of one simulator run of ``n_ops`` operations (after one batch of warm-up)."""
    out = tmp / f"callgrind.{n_ops}.out"
    old = os.environ.get("SIM_CMD_PREFIX")
    # cocotb's runners put SIM_CMD_PREFIX in front of the simulator command.
    os.environ["SIM_CMD_PREFIX"] = f"valgrind --tool=callgrind --callgrind-out-file={out}"
    try:
        _, failed, results = run(sim, MacroParams(), "tb.test_bench", testcase="bench_ops", shim=True,
                                 config={"preset": "paper", "seed": seed, "n_ops": n_ops, "warmup": batch,
                                         "batch": batch, "bus": "engine", "out": str(tmp / f"ops.{n_ops}.json")},
                                 results_name=f"simcost_{n_ops}")
    finally:
        if old is None:
            del os.environ["SIM_CMD_PREFIX"]
        else:
            os.environ["SIM_CMD_PREFIX"] = old
    if failed or not out.exists():
        raise RuntimeError(f"the {sim} run of {n_ops} operations under Valgrind failed; see {results}")
    return callgrind_total(out)


def main(argv=None) -> int:
    """Count, print and write :data:`OUT`."""
    batch = MacroParams().batch_depth
    p = OneLineArgumentParser(prog="make simcost")
    p.add_argument("--sim", default="icarus", help="simulator: " + " or ".join(SIMULATORS))
    p.add_argument("--batches", type=int, default=4, help="batches the long run has beyond the short one")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    try:
        check_simulator(a.sim)
        cast_cache_enabled()
    except (SimulatorError, CastCacheError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not 1 <= a.batches <= 100:
        print(f"error: --batches must be 1 to 100, not {a.batches}", file=sys.stderr)
        return 2
    if shutil.which("valgrind") is None:
        print("error: valgrind is missing; install it with: sudo apt-get install -y valgrind", file=sys.stderr)
        return 2
    short_ops, long_ops = batch, batch * (1 + a.batches)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            short = instructions(a.sim, short_ops, batch, a.seed, Path(tmp))
            long = instructions(a.sim, long_ops, batch, a.seed, Path(tmp))
        except (RuntimeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    per_op = (long - short) / (long_ops - short_ops)
    res = {"simulator": a.sim, "instructions_per_op": round(per_op), "batch": batch,
           "operations": [short_ops, long_ops], "instructions": [short, long],
           "note": "callgrind instruction totals of the simulator process (tb.test_bench bench_ops, batch path, "
                   "paper preset); their difference over the difference of the operation counts"}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(f"{a.sim}: {per_op / 1e6:.2f} million instructions per operation "
          f"({short_ops} and {long_ops} operations: {short:,} and {long:,})")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
