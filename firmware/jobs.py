"""Whole jobs the driver runs the same way on every backend (fast model, co-simulation, board)."""

from __future__ import annotations

import numpy as np

from .tiling import TiledMatvec


async def matvec_job(drivers, config, weights, inputs, *, calibrate: bool, seed: int) -> dict:
    """Open, configure, optionally calibrate each array, then run a tiled matvec.

    Parameters
    ----------
    drivers : list of MacroDriver
        One per array, not yet opened.
    config : MacroConfig
        Supplies the register settings.
    weights : array_like, shape (inputs, outputs), ±1
    inputs : array_like, shape (batch, inputs), ±1
    calibrate : bool
        Calibrate each array before use.
    seed : int
        Seed of the calibration patterns.

    Returns
    -------
    dict
        ``dot``, ``codes``, ``activations``, ``timeouts``, the cost counters and
        ``write_failures`` (bits that stayed wrong after all write retries; counted rather
        than raised so a long run is not lost to one bad bit).
    """
    for d in drivers:
        await d.open()
        await d.configure(config.register_settings(d.params))
        if calibrate:
            await d.calibrate(seed=seed)
    layer = TiledMatvec(drivers, weights, raise_on_failure=False)
    res = await layer.matvec(inputs, allow_timeouts=True)
    c = layer.cost
    return dict(dot=np.asarray(res.dot), codes=np.asarray(res.codes), activations=np.asarray(res.activations),
                timeouts=np.asarray(res.timeouts), computes=c.computes, row_writes=c.row_writes,
                programmings=c.programmings, reprogrammings=c.reprogrammings,
                write_failures=layer.write_failures)


async def program_and_matvec_job(driver, config, weights, inputs) -> dict:
    """Open, configure, program with verify, read the weights back, run a batch.

    Everything observable is returned, so two backends can be compared bit for bit.
    """
    await driver.open()
    await driver.configure(config.register_settings(driver.params))
    report = await driver.program_weights(weights, raise_on_failure=False)
    read_back = await driver.read_weights()
    res = await driver.matvec(inputs, allow_timeouts=True)
    retry_total = await driver.regs.read_reg("RETRY_TOTAL")
    op_count = await driver.regs.read_reg("OP_COUNT")
    return dict(codes=np.asarray(res.codes), activations=np.asarray(res.activations),
                timeouts=np.asarray(res.timeouts), dot=np.asarray(res.dot), read_back=np.asarray(read_back),
                retry_rounds=np.asarray(report.retry_rounds), fail_mask=np.asarray(report.fail_mask),
                retry_total=retry_total, op_count=op_count)


async def calibrate_job(driver, config, weights, inputs, *, seed: int) -> dict:
    """Open, configure, calibrate, program, run a batch; returns the calibration and the results."""
    await driver.open()
    await driver.configure(config.register_settings(driver.params))
    cal = await driver.calibrate(seed=seed)
    await driver.program_weights(weights, raise_on_failure=False)
    res = await driver.matvec(inputs, allow_timeouts=True)
    offsets = [await driver.regs.read_field("COL_OFFSET", "VALUE", j) for j in range(driver.params.cols)]
    return dict(intercept=np.asarray(cal.intercept), gain=np.asarray(cal.gain), offsets=np.asarray(cal.offsets),
                offsets_read_back=np.asarray(offsets), codes=np.asarray(res.codes), dot=np.asarray(res.dot))
