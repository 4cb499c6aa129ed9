"""``make sim``: run cocotb tests of the whole macro on one simulator, optionally with waves.

    python -m tb.run --sim icarus|verilator [--test NAME[,NAME]] [--waves 0|1]
                     [--preset ideal|paper|fine] [--seed N] [--rows R --cols C]

Without ``--test`` it runs the short ``smoke`` test. With ``--waves 1`` the dump is left at
``build/sim/<sim>/last.fst`` (``make waves`` opens it).
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
from pathlib import Path

from macro_spec.cli import OneLineArgumentParser, UsageError
from macro_spec.params import MacroParams

from .runner import BUILD_ROOT, SIMULATORS, SimulatorError, build_dir, check_simulator, run

TEST_MODULE = "tb.test_macro"
TEST_FILE = Path(__file__).with_name("test_macro.py")


class CliError(Exception):
    """User error: one line, exit status 2."""


def cocotb_tests() -> list[str]:
    """Names of the cocotb tests in :data:`TEST_MODULE` (read from the source, not imported)."""
    tree = ast.parse(TEST_FILE.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(target, ast.Attribute) and target.attr == "test":
                    names.append(node.name)
    return names


def _int(name, text, lo, hi):
    try:
        v = int(str(text), 0)
    except ValueError:
        raise CliError(f"{name} must be an integer, not {text!r}") from None
    if not lo <= v <= hi:
        raise CliError(f"{name} must be between {lo} and {hi}, not {v}")
    return v


def dump_path(sim: str, params: MacroParams) -> Path:
    """Where each simulator leaves its FST in the waves build directory."""
    d = build_dir(sim, params, waves=True)
    return d / ("mram_cim.fst" if sim == "icarus" else "dump.fst")


def last_dump(sim: str) -> Path:
    """The FST that ``make waves`` opens for ``sim``."""
    return BUILD_ROOT / sim / "last.fst"


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    p = OneLineArgumentParser(prog="make sim", description="Run cocotb tests of mram_cim on one simulator.",
                              raise_errors=True)
    p.add_argument("--sim", default="icarus", help=f"simulator: {' or '.join(SIMULATORS)}")
    p.add_argument("--test", default="", help="cocotb test name(s), comma separated (default: smoke)")
    p.add_argument("--waves", default="0", help="1 to dump an FST (build/sim/<sim>/last.fst)")
    p.add_argument("--preset", default="paper", help="analog preset: ideal, paper or fine")
    p.add_argument("--seed", default="1", help="random seed of the analog model and stimuli")
    p.add_argument("--rows", default="64", help="array rows")
    p.add_argument("--cols", default="64", help="array columns")
    try:
        a = p.parse_args(argv)
        try:
            sim = check_simulator(a.sim)
        except SimulatorError as e:
            raise CliError(str(e)) from None
        if a.waves not in ("0", "1", ""):
            raise CliError(f"WAVES must be 0 or 1, not {a.waves!r}")
        waves = a.waves == "1"
        known = cocotb_tests()
        tests = [t.strip() for t in (a.test or "smoke").split(",") if t.strip()]
        unknown = [t for t in tests if t not in known]
        if unknown:
            raise CliError(f"unknown test {unknown[0]!r}; known tests: {', '.join(known)}")
        from analog_models.config import PRESETS

        if a.preset not in PRESETS:
            raise CliError(f"unknown preset {a.preset!r}; choose one of {', '.join(PRESETS)}")
        seed = _int("seed", a.seed, 0, 2**31 - 1)
        try:
            params = MacroParams(rows=_int("rows", a.rows, 0, 10**6), cols=_int("cols", a.cols, 0, 10**6))
        except ValueError as e:
            raise CliError(str(e)) from None
        n, failed, results = run(sim, params, TEST_MODULE, testcase=",".join(tests),
                                 config={"preset": a.preset, "seed": seed, "n_ops": 50}, waves=waves,
                                 results_name="results_make_sim")
        if waves:
            src = dump_path(sim, params)
            if not src.exists():
                raise CliError(f"the simulator left no waveform at {src}")
            shutil.copyfile(src, last_dump(sim))
            print(f"waveform: {last_dump(sim)} (open with: make waves SIM={sim})")
        print(f"{n - failed} passed, {failed} failed")
        return 1 if failed or n == 0 else 0
    except (CliError, UsageError, SimulatorError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
