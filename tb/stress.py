"""``make stress``: the long randomised stress run on both simulators, with coverage.

    python -m tb.stress [--transactions N] [--seed S] [--sim icarus|verilator|both]
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import json
import sys

from macro_spec.params import MacroParams

from .runner import ROOT, SIMULATORS, run


def main(argv=None) -> int:
    """Run ``stress_random`` with at least ``--transactions`` bus transactions per simulator."""
    p = OneLineArgumentParser(prog="make stress")
    p.add_argument("--transactions", type=int, default=12_000)
    p.add_argument("--seed", type=int, default=31)
    p.add_argument("--sim", default="both", help="icarus, verilator or both")
    a = p.parse_args(argv)
    sims = SIMULATORS if a.sim == "both" else (a.sim,)
    if any(s not in SIMULATORS for s in sims) or a.transactions < 1:
        print(f"error: --sim must be one of {', '.join(SIMULATORS)} or both, --transactions positive", file=sys.stderr)
        return 2
    status = 0
    for sim in sims:
        out = ROOT / "build" / "coverage" / f"stress_long_{sim}.json"
        tests, failed, results = run(sim, MacroParams(), "tb.test_macro", testcase="stress_random",
                                     config={"preset": "paper", "seed": a.seed, "transactions": a.transactions,
                                             "stall": 0.3, "coverage_out": str(out)},
                                     results_name="results_stress_long")
        cov = json.loads(out.read_text()) if out.exists() else {"missing": ["(no coverage written)"], "transactions": 0}
        ok = tests == 1 and failed == 0 and not cov["missing"]
        status |= 0 if ok else 1
        print(f"{sim}: {'PASS' if ok else 'FAIL'}  {cov['transactions']} transactions, "
              f"missing coverage bins: {cov['missing'] or 'none'}  ({results})")
    return status


if __name__ == "__main__":
    sys.exit(main())
