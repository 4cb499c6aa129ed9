"""``make simcost``: machine instructions per co-simulated operation, counted by Valgrind.

Wall-clock figures of ``make bench`` move by a third from run to run on a shared virtual
machine; an instruction count does not. This runs the benchmark's cocotb test (``tb.test_bench``,
``bench_ops``: the driver's batch path, every result checked against the golden model) once
under ``valgrind --tool=callgrind``, one batch of warm-up and then ``--batches`` timed batches.
The test marks the timed phase with two Callgrind client requests (``tb/simcost_marks.c``,
compiled like the cast memo): the counts are zeroed as the timed operations start and dumped as
they end, so start-up, imports, programming and warm-up are not in the figure, and neither is
their run-to-run jitter (which, on Verilator, was as large as the timed operations' own count
when the figure was a difference of two whole runs). The result counts everything the simulator
process executes per operation in that phase (the simulator kernel, cocotb, the analog model),
so a change to the RTL, the generated Verilog, the wrapper or the Python side shows up as a
change of this number. Writes ``build/bench/simcost.json``.

Valgrind makes the simulator about 50 times slower: the default run takes one to two minutes.
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
from .clib import CLibError, shared_library
from .runner import BUILD_ROOT, ROOT, SIMULATORS, SimulatorError, check_simulator, run

OUT = ROOT / "build" / "bench" / "simcost.json"
#: The C source of the marks around the timed operations.
MARKS_SOURCE = Path(__file__).with_name("simcost_marks.c")


def callgrind_total(path: Path) -> int:
    """The program's instruction total from a callgrind output file."""
    m = re.search(r"(?m)^(?:totals|summary): (\d+)", Path(path).read_text(errors="replace"))
    if not m:
        raise ValueError(f"{path}: no instruction total in the callgrind output")
    return int(m.group(1))


def timed_dump(out: Path) -> Path:
    """The dump that the ``simcost_stop`` mark wrote next to Callgrind's output file ``out``."""
    parts = sorted(out.parent.glob(out.name + ".*"), key=lambda p: p.name)
    for part in parts:
        with part.open(errors="replace") as f:
            head = f.read(4096)     # the trigger is in the header; a dump may be megabytes
        if "Trigger: Client Request: timed operations" in head:
            return part
    raise ValueError(f"{out}: Callgrind wrote no dump of the timed operations (were the marks called?)")


def instructions(sim: str, n_ops: int, batch: int, seed: int, tmp: Path, marks: Path) -> int:
    """Instructions of the ``n_ops`` timed operations of one simulator run (after one batch of
    warm-up), between the marks of ``marks`` (the compiled ``tb/simcost_marks.c``)."""
    out = tmp / "callgrind.out"
    old = os.environ.get("SIM_CMD_PREFIX")
    # cocotb's runners put SIM_CMD_PREFIX in front of the simulator command.
    os.environ["SIM_CMD_PREFIX"] = f"valgrind --tool=callgrind --callgrind-out-file={out}"
    try:
        _, failed, results = run(sim, MacroParams(), "tb.test_bench", testcase="bench_ops", shim=True,
                                 config={"preset": "paper", "seed": seed, "n_ops": n_ops, "warmup": batch,
                                         "batch": batch, "bus": "engine", "out": str(tmp / "ops.json"),
                                         "callgrind_marks": str(marks)},
                                 results_name="simcost")
    finally:
        if old is None:
            del os.environ["SIM_CMD_PREFIX"]
        else:
            os.environ["SIM_CMD_PREFIX"] = old
    if failed or not out.exists():
        raise RuntimeError(f"the {sim} run of {n_ops} operations under Valgrind failed; see {results}")
    return callgrind_total(timed_dump(out))


def main(argv=None) -> int:
    """Count, print and write :data:`OUT`."""
    batch = MacroParams().batch_depth
    p = OneLineArgumentParser(prog="make simcost")
    p.add_argument("--sim", default="icarus", help="simulator: " + " or ".join(SIMULATORS))
    p.add_argument("--batches", type=int, default=4, help="timed batches (after one batch of warm-up)")
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
    try:
        marks = shared_library(MARKS_SOURCE, BUILD_ROOT, "simcost_marks")
    except CLibError as exc:
        print(f"error: {exc} (tb/simcost_marks.c needs valgrind/callgrind.h, which the valgrind package has)",
              file=sys.stderr)
        return 2
    n_ops = batch * a.batches
    with tempfile.TemporaryDirectory() as tmp:
        try:
            total = instructions(a.sim, n_ops, batch, a.seed, Path(tmp), marks)
        except (RuntimeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    per_op = total / n_ops
    res = {"simulator": a.sim, "instructions_per_op": round(per_op), "batch": batch,
           "operations": n_ops, "instructions": total,
           "note": "callgrind instructions of the simulator process between the marks around the timed "
                   "operations (tb.test_bench bench_ops, batch path, paper preset, after one batch of warm-up), "
                   "divided by their number"}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(f"{a.sim}: {per_op / 1e6:.2f} million instructions per operation ({n_ops} timed operations: {total:,})")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
