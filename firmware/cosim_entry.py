"""cocotb entry point for firmware jobs on the co-simulated macro (see :func:`firmware.cosim.run_job`).

Each job is the same driver code the fast model runs, awaited over the AXI4-Lite master.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import cocotb
import numpy as np

from tb.env import MacroTB, load_config

from .driver import MacroDriver
from .jobs import matvec_job


async def _matvec(tb, folder: Path, options: dict) -> dict:
    w = np.load(folder / "weights.npy")
    x = np.load(folder / "inputs.npy")
    drv = MacroDriver(tb.regs)
    return await matvec_job([drv], tb.config, w, x, calibrate=bool(options.get("calibrate")), seed=tb.seed)


async def _sequence(tb, folder: Path, options: dict) -> dict:
    """Program with verify, read back, matvec: the sequence the equivalence tests compare."""
    from .jobs import program_and_matvec_job

    w = np.load(folder / "weights.npy")
    x = np.load(folder / "inputs.npy")
    return await program_and_matvec_job(MacroDriver(tb.regs), tb.config, w, x)


async def _program_strict(tb, folder: Path, options: dict) -> dict:
    """Program with verify and let a verify failure raise, as an application would see it."""
    drv = MacroDriver(tb.regs)
    await drv.open()
    await drv.configure(tb.config.register_settings(drv.params))
    report = await drv.program_weights(np.load(folder / "weights.npy"))
    return dict(retry_rounds=np.asarray(report.retry_rounds))


async def _calibrate(tb, folder: Path, options: dict) -> dict:
    """Calibration flow, then a batch with the calibrated offsets."""
    from .jobs import calibrate_job

    w = np.load(folder / "weights.npy")
    x = np.load(folder / "inputs.npy")
    return await calibrate_job(MacroDriver(tb.regs), tb.config, w, x, seed=tb.seed)


JOBS = {"matvec": _matvec, "sequence": _sequence, "calibrate": _calibrate, "program_strict": _program_strict}


def resolve_job(name: str):
    """A job of :data:`JOBS`, or ``"package.module:function"`` supplied by a layer above.

    Applications pass their own job this way, so firmware never imports them.
    """
    if ":" in name:
        import importlib

        module, _, func = name.partition(":")
        return getattr(importlib.import_module(module), func)
    return JOBS[name]


@cocotb.test()
async def firmware_job(dut):
    """Run the job named in the runner's configuration and save its result."""
    cfg = load_config()
    folder = Path(cfg["folder"])
    tb = MacroTB.from_env(dut)
    await tb.start()
    try:
        result = await resolve_job(cfg["job"])(tb, folder, cfg.get("options", {}))
    except Exception as exc:
        (folder / "error.txt").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        raise
    np.savez(folder / "result.npz", **{k: np.asarray(v) for k, v in result.items()})
