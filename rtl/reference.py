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
              offsets=0, thresholds=0, out=None):
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
    out : (codes, act, tmo) arrays, optional
        Where to write the results (int64, bool, bool, of the result's shape); they are also
        what is returned.

    Returns
    -------
    codes : numpy.ndarray of int64
        Corrected codes (what the CODE window reports).
    act : numpy.ndarray of bool
        Activation bits.
    tmo : numpy.ndarray of bool
        Columns that had not fired by the timeout.

    Notes
    -----
    :func:`_tdc_codes_plain` is the rule written as one numpy expression per step. This
    function computes the same integers with fewer passes over a large batch (in place, and
    skipping the steps that cannot change anything: no fire-time sentinel, a step of 1, no
    offsets); odd shapes (a scalar, offsets that broadcast the result wider) take the plain path.
    """
    if clock_period_ps <= 0:
        raise ValueError(f"clock_period_ps must be positive, not {clock_period_ps}")
    fire = np.asarray(fire_ps, dtype=np.int64)
    offs = np.asarray(offsets, dtype=np.int64)
    thr = np.asarray(thresholds, dtype=np.int64)
    if fire.ndim == 0 or not _broadcasts_to(fire.shape, offs.shape, thr.shape):
        result = _tdc_codes_plain(fire, clock_period_ps=clock_period_ps, sync_stages=sync_stages,
                                  tdc_bits=tdc_bits, window_start_cycles=window_start_cycles,
                                  timeout_cycles=timeout_cycles, step_cycles=step_cycles,
                                  code_max=code_max, offsets=offs, thresholds=thr)
        if out is None:
            return result
        for dst, src in zip(out, result):
            dst[...] = src
        return tuple(out)
    window, timeout, step, cmax = _fields(window_start_cycles, timeout_cycles, step_cycles,
                                          code_max, tdc_bits)
    codes, act, tmo = (None, None, None) if out is None else out
    # e = d - window, with d the detect_cycles count (floor(fire / T) + S, 0 for FIRE_ALREADY,
    # FIRE_NEVER for FIRE_NEVER): d > timeout is e > timeout - window.
    e = np.floor_divide(fire, np.int64(clock_period_ps), out=codes)
    e += np.int64(sync_stages) - window
    if fire.size:
        if fire.min() < 0:
            np.putmask(e, fire < 0, -window)  # FIRE_ALREADY: captured at once
        if fire.max() >= FIRE_NEVER:
            np.putmask(e, fire >= FIRE_NEVER, FIRE_NEVER - window)
    tmo = np.greater(e, timeout - window, out=tmo)
    # raw = clip(e // step, 0, cmax), cmax where timed out (in place: e is not needed after).
    raw = e
    if step != 1:
        raw //= step
    np.clip(raw, 0, cmax, out=raw)
    any_tmo = bool(tmo.any())
    if any_tmo:
        np.putmask(raw, tmo, cmax)
    codes = raw
    if offs.any():
        codes += offs
        np.clip(codes, 0, cmax, out=codes)
    # (without offsets raw is already within [0, cmax], so the clip would change nothing)
    act = np.less_equal(codes, thr, out=act)
    if any_tmo:
        np.putmask(act, tmo, False)  # act &= ~tmo
    return codes, act, tmo


def _broadcasts_to(shape, *others) -> bool:
    """Whether arrays of shapes ``others`` broadcast against ``shape`` without widening it."""
    if all(o == () or o == shape[-1:] for o in others):  # the usual scalars and per-column rows
        return True
    try:
        return np.broadcast_shapes(shape, *others) == shape
    except ValueError:
        return False


def _fields(window_start_cycles, timeout_cycles, step_cycles, code_max, tdc_bits):
    """The register values as the RTL sees them: fields are 16 bits (8 for the step), a step
    of 0 acts as 1, and the code saturates at the counter's width too."""
    window = int(window_start_cycles) & 0xFFFF
    timeout = int(timeout_cycles) & 0xFFFF
    step = max(1, int(step_cycles) & 0xFF)
    cmax = min(int(code_max) & 0xFFFF, (1 << tdc_bits) - 1)
    return window, timeout, step, cmax


def _tdc_codes_plain(fire_ps, *, clock_period_ps: int, sync_stages: int, tdc_bits: int,
                     window_start_cycles: int, timeout_cycles: int, step_cycles: int, code_max: int,
                     offsets=0, thresholds=0):
    """:func:`tdc_codes` as the plain sequence of rules (the specification it is checked against)."""
    d = detect_cycles(fire_ps, clock_period_ps=clock_period_ps, sync_stages=sync_stages)
    window, timeout, step, cmax = _fields(window_start_cycles, timeout_cycles, step_cycles,
                                          code_max, tdc_bits)
    tmo = d > timeout
    raw = np.clip((d - window) // step, 0, cmax)
    raw = np.where(tmo, cmax, raw)
    offs = np.asarray(offsets, dtype=np.int64)
    codes = np.clip(raw + offs, 0, cmax)
    act = (codes <= np.asarray(thresholds, dtype=np.int64)) & ~tmo
    return codes.astype(np.int64), act, tmo
