"""Command line of the firmware: ``python -m firmware matvec ...``.

Every failure the user can cause (missing or malformed files, wrong shapes or values, unknown
preset, bad numbers) ends with one line on stderr and a non-zero exit status, never a
traceback, and never a partial output file: results are written to a temporary file in the
output directory and renamed into place only when complete.

Exit status: 0 success, 2 bad arguments or input files (and cosim backend not available),
1 a hardware error reported by the macro (verify failure, calibration failure, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from macro_spec.cli import OneLineArgumentParser
from macro_spec.cli import UsageError as ArgumentUsageError

EXIT_USAGE = 2
EXIT_HARDWARE = 1


class CliError(Exception):
    """A user error: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def _preset_names() -> str:
    try:
        from analog_models.config import PRESETS
        return ", ".join(sorted(PRESETS))
    except Exception:  # the analog model may be missing; --help must still work
        return "ideal, paper, fine"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also documents every option in ``--help``)."""
    parser = OneLineArgumentParser(raise_errors=True, prog="python -m firmware",
                     description="Driver of the MRAM in-memory-computing macro.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mv = sub.add_parser(
        "matvec", help="multiply a batch of ±1 input vectors by a ±1 weight matrix",
        description="Compute Y = X @ W on the macro, tiling W over as many 64 x 64 arrays "
                    "(or the geometry given) as needed and accumulating partial sums. "
                    "Writes an .npz with 'dot' (batch x outputs, estimated dot products, exact "
                    "under the ideal preset) and, per row tile, 'codes', 'activations' and "
                    "'timeouts' (row_tiles x batch x outputs).")
    mv.add_argument("--weights", required=True, metavar="W.npy",
                    help="weights, a 2-D .npy array (inputs x outputs) of -1/+1")
    mv.add_argument("--inputs", required=True, metavar="X.npy",
                    help="inputs, a 2-D .npy array (batch x inputs) of -1/+1")
    mv.add_argument("--out", required=True, metavar="Y.npz",
                    help="result file (.npz), written only when the run succeeds")
    mv.add_argument("--backend", choices=("model", "cosim"), default="model",
                    help="'model': the fast bit-exact model (default); 'cosim': the RTL in a "
                         "Verilog simulator through cocotb")
    mv.add_argument("--sim", choices=("icarus", "verilator"), default="icarus",
                    help="simulator of the cosim backend (default icarus; ignored by 'model')")
    mv.add_argument("--preset", default="ideal",
                    help=f"analog preset, one of: {_preset_names()} (default ideal)")
    mv.add_argument("--seed", default="0",
                    help="seed of the analog model's random streams, a non-negative integer "
                         "(default 0)")
    mv.add_argument("--arrays", default="1",
                    help="arrays used side by side (default 1: one array reprogrammed per tile)")
    mv.add_argument("--rows", default=None,
                    help="rows per array (default from macro_spec: 64)")
    mv.add_argument("--cols", default=None,
                    help="columns per array (default from macro_spec: 64)")
    mv.add_argument("--calibration", choices=("auto", "on", "off"), default="auto",
                    help="per-column offset/gain calibration before computing: 'auto' (default) "
                         "calibrates except under the ideal preset")
    return parser


def _int_arg(name: str, text: str, minimum: int) -> int:
    try:
        v = int(text)
    except (TypeError, ValueError):
        raise CliError(f"--{name} must be an integer, not {text!r}") from None
    if v < minimum:
        raise CliError(f"--{name} must be at least {minimum}, not {v}")
    return v


def load_pm1(path_text: str, what: str, ndim: int = 2) -> np.ndarray:
    """Load a ±1 .npy array, with one-line errors naming the file and the problem."""
    path = Path(path_text)
    if path.suffix != ".npy":
        raise CliError(f"{what} file {path_text!r} is not a .npy file")
    if not path.is_file():
        raise CliError(f"{what} file {path_text!r} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(f"{what} file {path_text!r} is not a valid .npy file: {reason}") from None
    if not isinstance(arr, np.ndarray):
        raise CliError(f"{what} file {path_text!r} does not hold a single array")
    from .driver import UsageError, as_pm1
    try:
        return as_pm1(arr, what, ndim)
    except UsageError as exc:
        raise CliError(f"{what} file {path_text!r}: {exc}") from None


def _check_out(path_text: str) -> Path:
    out = Path(path_text)
    if out.suffix != ".npz":
        raise CliError(f"--out {path_text!r} must end in .npz")
    if not out.parent.is_dir():
        raise CliError(f"--out directory {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise CliError(f"--out {path_text!r} is a directory")
    return out


def save_npz_atomic(out: Path, **arrays) -> None:
    """Write an .npz to a temporary file beside ``out`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def run_model_matvec(weights: np.ndarray, inputs: np.ndarray, *, preset: str, seed: int,
                     params, arrays: int = 1, calibrate: bool = False) -> dict:
    """Run a tiled matvec on fast models; return the arrays the CLI saves.

    Parameters
    ----------
    weights : numpy.ndarray, shape (inputs, outputs)
    inputs : numpy.ndarray, shape (batch, inputs)
    preset : str
        Analog preset name.
    seed : int
        Seed of every array (instances 0..arrays-1 differ).
    params : MacroParams
        Geometry of each array.
    arrays : int
        Arrays side by side.
    calibrate : bool
        Calibrate each array before use.

    Returns
    -------
    dict
        See :func:`firmware.jobs.matvec_job`.
    """
    from analog_models.config import preset as get_preset

    from .driver import MacroDriver, run_sync
    from .jobs import matvec_job
    from .model import FastMacroModel

    cfg = get_preset(preset)
    drivers = [MacroDriver(FastMacroModel(params, cfg, seed=seed, instance=k)) for k in range(arrays)]
    return run_sync(matvec_job(drivers, cfg, weights, inputs, calibrate=calibrate, seed=seed))


def _matvec(args) -> int:
    from macro_spec.params import MacroParams

    seed = _int_arg("seed", args.seed, 0)
    arrays = _int_arg("arrays", args.arrays, 1)
    geom = {}
    for name in ("rows", "cols"):
        if getattr(args, name) is not None:
            geom[name] = _int_arg(name, getattr(args, name), 1)
    try:
        params = MacroParams(**geom)
    except (TypeError, ValueError) as exc:
        raise CliError(f"bad geometry: {exc}") from None
    out = _check_out(args.out)
    w = load_pm1(args.weights, "weights")
    x = load_pm1(args.inputs, "inputs")
    if x.shape[1] != w.shape[0]:
        raise CliError(f"inputs have {x.shape[1]} columns but weights have {w.shape[0]} rows "
                       "(X is batch x inputs, W is inputs x outputs)")
    try:
        from analog_models.config import PRESETS
    except Exception as exc:
        raise CliError(f"analog model not available: {exc}", EXIT_HARDWARE) from None
    if args.preset not in PRESETS:
        raise CliError(f"unknown preset {args.preset!r}; choose one of {_preset_names()}")
    calibrate = args.calibration == "on" or (args.calibration == "auto"
                                             and args.preset != "ideal")
    if args.backend == "cosim":
        try:
            from .cosim import run_matvec
        except Exception as exc:
            raise CliError(f"cosim backend not available: {exc}") from None
        try:
            result = run_matvec(w, x, sim=args.sim, preset=args.preset, seed=seed, params=params,
                                arrays=arrays, calibrate=calibrate)
        except RuntimeError as exc:  # the simulation failed; the message names its results file
            raise CliError(str(exc), EXIT_HARDWARE) from None
        except ValueError as exc:    # the simulator set-up (tb.runner.SimulatorError), e.g. a bad variable
            raise CliError(f"cosim backend: {exc}") from None
    else:
        result = run_model_matvec(w, x, preset=args.preset, seed=seed, params=params,
                                  arrays=arrays, calibrate=calibrate)
    save_npz_atomic(out, **{k: np.asarray(v) for k, v in result.items()})
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    from .driver import MacroError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise CliError("a command is required (matvec); see --help")
        return _matvec(args)
    except (CliError, ArgumentUsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "code", EXIT_USAGE)
    except MacroError as exc:
        print(f"error: macro: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_HARDWARE
