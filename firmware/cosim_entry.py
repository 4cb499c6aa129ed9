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


async def _mlp(tb, folder: Path, options: dict) -> dict:
    """The MNIST two-layer perceptron (apps.mnist_mlp.mlp_job) over the AXI backend.

    The application is imported here, at the top of the stack, so firmware modules never import
    apps; the job is the same coroutine the fast model runs, so the codes must agree bit for bit.
    """
    from apps.mnist_mlp import MlpWeights, mlp_job

    w = MlpWeights(np.load(folder / "w1.npy"), np.load(folder / "theta1.npy"), np.load(folder / "w2.npy"),
                   np.load(folder / "bias2.npy"), crop=int(options.get("crop", 2)))
    x = np.load(folder / "inputs.npy")
    line = options.get("code_line")
    progress = None
    if options.get("progress_file"):
        def progress(done, total, path=Path(options["progress_file"])):
            path.write_text(f"{done} {total}\n")
    return await mlp_job([MacroDriver(tb.regs)], tb.config, w, x, calibrate=bool(options.get("calibrate")),
                         seed=tb.seed, code_line=tuple(line) if line else None, chunk=options.get("chunk"),
                         progress=progress, output_dither=int(options.get("output_dither", 1)))


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


JOBS = {"matvec": _matvec, "sequence": _sequence, "mlp": _mlp, "calibrate": _calibrate, "program_strict": _program_strict}


@cocotb.test()
async def firmware_job(dut):
    """Run the job named in the runner's configuration and save its result."""
    cfg = load_config()
    folder = Path(cfg["folder"])
    tb = MacroTB.from_env(dut)
    await tb.start()
    try:
        result = await JOBS[cfg["job"]](tb, folder, cfg.get("options", {}))
    except Exception as exc:
        (folder / "error.txt").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        raise
    np.savez(folder / "result.npz", **{k: np.asarray(v) for k, v in result.items()})
