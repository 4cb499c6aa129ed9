"""cocotb side of ``make bench``: operations per second of the co-simulated macro.

One operation is one matrix-vector product through the firmware driver's register path:
inputs in, start, completion (interrupt), every code and activation out.
"""

from __future__ import annotations

import ctypes
import gc
import json
import time
from pathlib import Path

import cocotb
import numpy as np

from firmware.driver import MacroDriver

from .env import MacroTB, load_config


@cocotb.test()
async def bench_ops(dut):
    """Time ``n_ops`` operations after ``warmup`` of them; write the figures to ``out``.

    With ``batch`` > 1 in the configuration the driver hands the macro ``batch`` input vectors
    at a time, which it runs through the hardware queue (COMPUTE_BATCH); otherwise one
    COMPUTE per operation.
    """
    cfg = load_config()
    tb = MacroTB.from_env(dut)
    await tb.start()
    drv = MacroDriver(tb.regs)
    await drv.open()
    settings = tb.config.register_settings(tb.params)
    await drv.configure(settings)
    tb.scoreboard.settings.update(settings)  # the golden model must know the registers in force
    p = tb.params
    rng = np.random.default_rng(tb.seed)
    tb.program_ideal(rng.choice([-1, 1], size=(p.rows, p.cols)))
    n_ops, warmup = int(cfg.get("n_ops", 1000)), int(cfg.get("warmup", 50))
    batch = int(cfg.get("batch", 1))
    x = rng.integers(0, 2, size=(n_ops + warmup, p.rows)).astype(bool)
    for k in range(0, warmup, batch):
        await drv._compute_bits(x[k:min(k + batch, warmup)])
    # Objects made so far (model tables, logs) need not be rescanned by every collection.
    gc.collect()
    gc.freeze()
    # make simcost: Callgrind counts only what lies between the two marks (tb/simcost_marks.c).
    marks = ctypes.CDLL(cfg["callgrind_marks"]) if cfg.get("callgrind_marks") else None
    tx0 = tb.regs.transactions
    if marks is not None:
        marks.simcost_start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    codes = []
    for k in range(warmup, warmup + n_ops, batch):
        c, _a, _t = await drv._compute_bits(x[k:min(k + batch, warmup + n_ops)])
        codes.extend(c)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if marks is not None:
        marks.simcost_stop()
    # Every result is still checked: speed never changes a result.
    for k, c in enumerate(codes):
        tb.scoreboard._next = warmup + k
        e_codes, _, _ = tb.scoreboard.expected(tb.adapter.log.evaluations[warmup + k].fire_ps)
        assert list(c) == list(e_codes), f"operation {k}: codes differ from the golden model"
    result = dict(n_ops=n_ops, wall_s=wall, cpu_s=cpu, ops_per_s=n_ops / wall, ops_per_cpu_s=n_ops / cpu,
                  transactions_per_op=(tb.regs.transactions - tx0) / n_ops)
    Path(cfg["out"]).write_text(json.dumps(result))
