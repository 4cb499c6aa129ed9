"""Command line of the RTL: ``python -m rtl verilog|lint|docs``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from macro_spec.cli import OneLineArgumentParser, UsageError
from macro_spec.params import MacroParams
from macro_spec.regmap import render_c_header, render_markdown

from .toolchain import ToolMissing

ROOT = Path(__file__).resolve().parent.parent
REGISTERS_MD = ROOT / "docs" / "registers.md"


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _int(name: str, text: str) -> int:
    try:
        return int(str(text).strip(), 0)
    except ValueError:
        raise CliError(f"{name} must be an integer, not {text!r}") from None


def _params(args) -> MacroParams:
    values = {k: _int(k.upper(), getattr(args, k)) for k in ("rows", "cols", "tdc_bits", "sync_stages", "batch_depth",
                                                           "post_lanes")}
    try:
        return MacroParams(**values)
    except (TypeError, ValueError) as e:
        raise CliError(str(e)) from None


def _add_params(p):
    p.add_argument("--rows", default="64", help="cells per column, 8..128 (default 64)")
    p.add_argument("--cols", default="64", help="columns, 8..128 (default 64)")
    p.add_argument("--tdc-bits", default="8", help="TDC counter width, 4..16 (default 8)")
    p.add_argument("--sync-stages", default="2", help="comparator synchroniser depth, 2..4 (default 2)")
    p.add_argument("--batch-depth", default="32", help="batch queue depth in input vectors, 0..255 (0: no queue; default 32)")
    p.add_argument("--post-lanes", default="8", help="columns post-processed per cycle: 4, 8 or 16 (default 8)")


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    parser = OneLineArgumentParser(prog="python -m rtl", description="Generate, lint and document the mram_cim controller.",
                                   raise_errors=True)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_v = sub.add_parser("verilog", help="write the Verilog of mram_cim")
    _add_params(p_v)
    p_v.add_argument("--out", default="build/rtl/mram_cim.v", help="output file (default build/rtl/mram_cim.v)")
    p_l = sub.add_parser("lint", help="generate, then verilator --lint-only -Wall and iverilog -g2005")
    _add_params(p_l)
    p_l.add_argument("--out", default="build/rtl/mram_cim.v", help="where to write the Verilog first")
    sub.add_parser("docs", help="regenerate docs/registers.md")
    try:
        args = parser.parse_args(argv)
        if args.cmd == "docs":
            REGISTERS_MD.write_text(render_markdown())
            print(f"wrote {REGISTERS_MD.relative_to(ROOT)}")
            return 0
        params = _params(args)
        from .build import lint, write_verilog  # amaranth import only when needed
        out = write_verilog(params, Path(args.out))
        out.with_name("mram_cim_regs.h").write_text(render_c_header(params))
        if args.cmd == "verilog":
            print(f"wrote {out} ({params.rows} rows x {params.cols} columns, {params.tdc_bits}-bit TDC)")
            return 0
        problems = lint(out)
        for line in problems:
            print(line)
        if problems:
            print(f"error: lint found {len(problems)} problem(s) in {out}", file=sys.stderr)
            return 1
        print(f"lint clean: {out} (verilator -Wall with rtl/lint.vlt, iverilog -g2005)")
        return 0
    except (CliError, UsageError, ToolMissing) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
