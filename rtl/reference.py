"""Bit-exact behavioural reference of the controller's TDC and column post-processing.

This is the executable form of the "Codes" rules in ``docs/timing.md``: given the fire times the
array produced and the register settings, it returns exactly the codes, activation bits and
timeout mask the RTL publishes. The fast model (``firmware.model``) and the co-simulation
scoreboard (``tb``) both call it, so the RTL is checked against one definition only.
"""

from __future__ import annotations

import numpy as np

#: Fire-time sentinels shared with the analog model (see docs/timing.md).
FIRE_ALREADY = -1
FIRE_NEVER = 2**62


def detect_cycles(fire_ps, *, clock_period_ps: int, sync_stages: int) -> np.ndarray:
    """Value of the controller's ``elapsed`` counter when each column is captured.

    Parameters
    ----------
    fire_ps : array_like of int
        Fire times in ps after evaluate (``FIRE_ALREADY`` and ``FIRE_NEVER`` allowed).
    clock_period_ps : int
        Controller clock period.
    sync_stages : int
        Synchroniser depth.

    Returns
    -------
    numpy.ndarray of int64
        ``floor(fire_ps / T) + S``; 0 for ``FIRE_ALREADY``; a huge value for ``FIRE_NEVER``.
    """
    if clock_period_ps <= 0:
        raise ValueError(f"clock_period_ps must be positive, not {clock_period_ps}")
    fire = np.asarray(fire_ps, dtype=np.int64)
    d = fire // np.int64(clock_period_ps) + np.int64(sync_stages)
    d = np.where(fire < 0, 0, d)
    return np.where(fire >= FIRE_NEVER, np.int64(FIRE_NEVER), d)


def tdc_codes(fire_ps, *, clock_period_ps: int, sync_stages: int, tdc_bits: int,
              window_start_cycles: int, timeout_cycles: int, step_cycles: int, code_max: int,
              offsets=0, thresholds=0):
    """Codes, activations and timeout mask of a compute, exactly as the RTL makes them.

    Parameters
    ----------
    fire_ps : array_like of int, shape (..., cols)
        Fire times from the analog model.
    clock_period_ps, sync_stages : int
        Clock period and synchroniser depth.
    tdc_bits : int
        Counter width of the instance (``CAPS.TDC_BITS``).
    window_start_cycles, timeout_cycles, step_cycles, code_max : int
        The TDC_WINDOW, TDC_TIMEOUT, TDC_STEP and TDC_CODE_MAX register values as written.
    offsets, thresholds : array_like of int, shape (cols,)
        COL_OFFSET (signed) and COL_THRESH values.

    Returns
    -------
    codes : numpy.ndarray of int64
        Corrected codes (what the CODE window reports).
    act : numpy.ndarray of bool
        Activation bits.
    tmo : numpy.ndarray of bool
        Columns that had not fired by the timeout.
    """
    d = detect_cycles(fire_ps, clock_period_ps=clock_period_ps, sync_stages=sync_stages)
    # Register fields are 16 bits (8 for the step); the RTL sees only those bits.
    window = int(window_start_cycles) & 0xFFFF
    timeout = int(timeout_cycles) & 0xFFFF
    step = max(1, int(step_cycles) & 0xFF)
    cmax = min(int(code_max) & 0xFFFF, (1 << tdc_bits) - 1)
    tmo = d > timeout
    raw = np.clip((d - window) // step, 0, cmax)
    raw = np.where(tmo, cmax, raw)
    offs = np.asarray(offsets, dtype=np.int64)
    codes = np.clip(raw + offs, 0, cmax)
    act = (codes <= np.asarray(thresholds, dtype=np.int64)) & ~tmo
    return codes.astype(np.int64), act, tmo
