"""The limit for ``make bench``: the same RTL and operations in a plain C++ Verilator harness.

The analog model precomputes every operation's fire times into a file; ``tb/raw/harness.cpp``
drives the AXI4-Lite bus and the comparator edges itself, with no Python in the loop. The codes
it reads back are checked against :func:`rtl.reference.tdc_codes`, like every other benchmark.
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from macro_spec.params import MacroParams
from macro_spec.regmap import reg
from rtl.build import LINT_WAIVERS, TOP_NAME, write_verilog
from rtl.reference import tdc_codes
from rtl.toolchain import verilator_bin, verilator_env

HARNESS = Path(__file__).resolve().parent / "raw" / "harness.cpp"


def raw_verilator_ops_per_s(n_ops: int = 20000, seed: int = 1, workdir: Path | None = None) -> dict:
    """Build and run the harness; returns ops/s and the number of operations checked."""
    from analog_models.array import MramArray
    from analog_models.config import preset

    params, cfg = MacroParams(), preset("paper")
    settings = cfg.register_settings(params)
    rng = np.random.default_rng(seed)
    array = MramArray(cfg, params.rows, params.cols, seed=seed)
    array.program_ideal(rng.choice([-1, 1], size=(params.rows, params.cols)))
    x = rng.integers(0, 2, size=(n_ops, params.rows)).astype(bool)
    fire = array.evaluate(x)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(workdir or tmp)
        verilog = write_verilog(params, d / f"{TOP_NAME}.v")
        blob = [struct.pack("<5I", n_ops, params.rows, params.cols, int(cfg.clock_period_ps), len(settings))]
        blob += [struct.pack("<2I", reg(name).address(), int(v)) for name, v in settings.items()]
        xbytes = np.packbits(x, axis=1, bitorder="little")
        for k in range(n_ops):
            blob.append(xbytes[k].tobytes())
            blob.append(fire[k].astype("<i8").tobytes())
        (d / "ops.bin").write_bytes(b"".join(blob))
        env = verilator_env()
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2"  # see tb.runner
        subprocess.run([verilator_bin(), "--cc", "--exe", "--build", "-O2", "-Mdir", str(d / "obj"),
                        "--top-module", TOP_NAME, "-o", "harness", str(LINT_WAIVERS), str(verilog),
                        str(HARNESS), "-CFLAGS", "-O2"], check=True, env=env, capture_output=True, text=True)
        out = subprocess.run([str(d / "obj" / "harness"), str(d / "ops.bin"), str(d / "codes.bin")],
                             check=True, capture_output=True, text=True).stdout.split()
        seconds = float(out[3])
        words = np.frombuffer((d / "codes.bin").read_bytes(), dtype="<u4").reshape(n_ops, -1)
    codes = np.stack([(words[:, j // 4] >> (8 * (j % 4))) & 0xFF for j in range(params.cols)], axis=1)
    ref, _, _ = tdc_codes(fire, clock_period_ps=int(cfg.clock_period_ps), sync_stages=params.sync_stages,
                          tdc_bits=params.tdc_bits, window_start_cycles=settings["TDC_WINDOW"],
                          timeout_cycles=settings["TDC_TIMEOUT"], step_cycles=settings["TDC_STEP"],
                          code_max=settings["TDC_CODE_MAX"])
    bad = int((codes != ref).any(axis=1).sum())
    if bad:
        raise RuntimeError(f"the C++ harness read {bad} of {n_ops} operations differently from the reference")
    return {"ops_per_s": n_ops / seconds, "checked": n_ops}


if __name__ == "__main__":
    print(raw_verilator_ops_per_s(2000))
