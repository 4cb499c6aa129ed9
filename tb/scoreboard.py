"""Scoreboard: every compute checked bit for bit against the golden model.

The golden model is the analog model (the fire times the adapter obtained from it at the pins)
followed by the controller's digital reference :func:`rtl.reference.tdc_codes` applied with the
register settings in force. Any difference fails with the operation's inputs, weights and seed.
"""

from __future__ import annotations

import numpy as np

from macro_spec.params import MacroParams
from macro_spec.regmap import BY_NAME
from rtl.reference import tdc_codes


class ScoreboardMismatch(AssertionError):
    """The RTL's result differs from the golden model."""


class ComputeScoreboard:
    """Checks each compute result against the golden model.

    Parameters
    ----------
    params : MacroParams
    config : MacroConfig
    adapter : ArrayAdapter
        Source of the fire times seen at the pins, in order.
    seed : int
        Printed in mismatch messages so a failure can be replayed.
    """

    def __init__(self, params: MacroParams, config, adapter, seed: int):
        self.params = params
        self.config = config
        self.adapter = adapter
        self.seed = seed
        self.settings = {r.name: r.reset_value(params) for r in BY_NAME.values()
                         if r.name in ("TDC_WINDOW", "TDC_TIMEOUT", "TDC_STEP", "TDC_CODE_MAX")}
        self.offsets = np.zeros(params.cols, dtype=np.int64)
        self.thresholds = np.zeros(params.cols, dtype=np.int64)
        self.checked = 0
        self._next = 0

    def expected(self, fire_ps):
        """Golden (codes, act, tmo) for one vector of fire times."""
        s = self.settings
        return tdc_codes(fire_ps, clock_period_ps=int(self.config.clock_period_ps),
                         sync_stages=self.params.sync_stages, tdc_bits=self.params.tdc_bits,
                         window_start_cycles=s["TDC_WINDOW"], timeout_cycles=s["TDC_TIMEOUT"],
                         step_cycles=s["TDC_STEP"], code_max=s["TDC_CODE_MAX"],
                         offsets=self.offsets, thresholds=self.thresholds)

    def check(self, codes, act, tmo, timeout_flag: bool | None = None):
        """Compare one compute result with the next evaluation seen at the pins.

        Raises
        ------
        ScoreboardMismatch
            With the inputs, the stored weights and the seed of the failing operation.
        """
        log = self.adapter.log.evaluations
        if self._next >= len(log):
            raise ScoreboardMismatch("a compute result was read but the array saw no evaluation for it")
        ev = log[self._next]
        self._next += 1
        e_codes, e_act, e_tmo = self.expected(ev.fire_ps)
        problems = []
        if list(np.asarray(codes)) != list(e_codes):
            bad = np.flatnonzero(np.asarray(codes) != e_codes)
            problems.append(f"codes differ in columns {bad.tolist()}: got {np.asarray(codes)[bad].tolist()}, "
                            f"expected {e_codes[bad].tolist()}")
        if list(np.asarray(act, bool)) != list(e_act):
            problems.append(f"activations differ in columns {np.flatnonzero(np.asarray(act, bool) != e_act).tolist()}")
        if list(np.asarray(tmo, bool)) != list(e_tmo):
            problems.append(f"timeout mask differs in columns {np.flatnonzero(np.asarray(tmo, bool) != e_tmo).tolist()}")
        if timeout_flag is not None and bool(timeout_flag) != bool(e_tmo.any()):
            problems.append(f"TIMEOUT flag is {bool(timeout_flag)}, expected {bool(e_tmo.any())}")
        if problems:
            x = "".join("1" if b else "0" for b in ev.x_bits)
            w = self.adapter.array.weights()
            raise ScoreboardMismatch(
                f"compute #{self._next - 1} (seed {self.seed}, preset {self.config.name}): " + "; ".join(problems)
                + f"; inputs x={x}; fire_ps={ev.fire_ps.tolist()}; settings={self.settings}; "
                f"weights row-major={''.join('+' if v > 0 else '-' if v < 0 else '0' for v in w.ravel())}")
        self.checked += 1
