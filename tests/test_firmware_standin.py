"""Throwaway stand-in for ``analog_models`` while it is being written.

Installed into ``sys.modules`` only when the real package cannot be imported, so the firmware
tests run either way; once ``analog_models`` exists this module does nothing. It follows the
agreed API (``preset``, ``MacroConfig``, ``MramArray``...) with a deliberately simple physics.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, replace

import numpy as np

FIRE_ALREADY = -1
FIRE_NEVER = 2**62


def real_analog_models_available() -> bool:
    try:
        import analog_models.array  # noqa: F401
        import analog_models.config  # noqa: F401
        return True
    except ImportError:
        return False


@dataclass(frozen=True)
class MacroConfig:
    name: str = "ideal"
    clock_period_ps: int = 250
    read_latency_ps: int = 500
    t0_ps: int = 13000
    ps_per_mismatch: float = 250.0
    gain_sigma: float = 0.0
    offset_sigma_ps: float = 0.0
    noise_ps: float = 0.0
    write_error_rate: float = 0.0
    step_cycles: int = 1
    code_max: int = 255

    def register_settings(self, params):
        s = params.sync_stages
        t = self.clock_period_ps
        if self.step_cycles == 1 and t == self.ps_per_mismatch:
            window = self.t0_ps // t + s
        else:  # centre a narrow counter on half the rows
            mid = (self.t0_ps + self.ps_per_mismatch * params.rows / 2) // t + s
            window = int(mid - self.step_cycles * (self.code_max + 1) // 2)
        timeout = int((self.t0_ps + self.ps_per_mismatch * params.rows * 1.3) // t) + s + 4
        return dict(TDC_WINDOW=int(window), TDC_TIMEOUT=timeout, TDC_STEP=self.step_cycles,
                    TDC_CODE_MAX=self.code_max, PRECHARGE=4, WRITE_PULSE=40, READ_PULSE=8,
                    WRITE_RETRIES=3)

    def to_json(self):
        import json
        return json.dumps(self.__dict__)


PRESETS = {
    "ideal": MacroConfig(),
    "paper": MacroConfig(name="paper", clock_period_ps=1000, gain_sigma=0.05,
                         offset_sigma_ps=400.0, noise_ps=60.0, write_error_rate=0.01,
                         step_cycles=1, code_max=15),
    "fine": MacroConfig(name="fine", clock_period_ps=250, gain_sigma=0.02, offset_sigma_ps=100.0,
                        noise_ps=20.0),
}


def preset(name, **overrides):
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}")
    return replace(PRESETS[name], **overrides)


class MramArray:
    def __init__(self, cfg, rows, cols, seed=0, instance=0, fault_map=None):
        self.cfg, self.rows, self.cols = cfg, rows, cols
        self.seed, self.instance = seed, instance
        rng = np.random.default_rng([seed, instance, 0])
        self.state_a = rng.random((rows, cols)) < 0.5
        self.state_b = ~self.state_a
        self.gain = 1 + cfg.gain_sigma * rng.standard_normal(cols)
        self.offset_ps = cfg.offset_sigma_ps * rng.standard_normal(cols)
        self.eval_count = 0
        self.pulse_count = 0
        self.sense_count = 0
        self.stuck = {}  # (row, side, col) -> bool state
        for (r, side, c), v in (fault_map or {}).items():
            self.stuck[(r, side, c)] = v
        self._apply_stuck()

    def _apply_stuck(self):
        for (r, side, c), v in self.stuck.items():
            (self.state_a if side == 0 else self.state_b)[r, c] = v

    def program_ideal(self, w):
        w = np.asarray(w)
        self.state_a = w > 0
        self.state_b = w < 0
        self._apply_stuck()

    def weights(self):
        return np.where(self.state_a & ~self.state_b, 1, np.where(~self.state_a & self.state_b, -1, 0))

    def write_pulse(self, row, side, data_low, enable, pulse_width_ps):
        rng = np.random.default_rng([self.seed, self.instance, 1, self.pulse_count])
        self.pulse_count += 1
        ok = rng.random(self.cols) >= self.cfg.write_error_rate
        st = self.state_a if side == 0 else self.state_b
        sel = np.asarray(enable, bool) & ok
        st[row, sel] = np.asarray(data_low, bool)[sel]
        self._apply_stuck()

    def sense(self, row, side):
        self.sense_count += 1
        return (self.state_a if side == 0 else self.state_b)[row].copy()

    def evaluate(self, x_bits):
        x = np.asarray(x_bits, bool)
        n = x.shape[0]
        ids = self.eval_count + np.arange(n)
        self.eval_count += n
        # Mismatch: input +1 uses A (high = mismatch), input -1 uses B.
        high_a = ~self.state_a
        high_b = ~self.state_b
        m = x.astype(np.int64) @ high_a.astype(np.int64) + (~x).astype(np.int64) @ high_b.astype(np.int64)
        noise = np.stack([np.random.default_rng([self.seed, self.instance, 2, int(i)]).standard_normal(self.cols)
                          for i in ids]) if self.cfg.noise_ps else 0.0
        fire = self.cfg.t0_ps + self.offset_ps + self.gain * self.cfg.ps_per_mismatch * m + self.cfg.noise_ps * noise
        return np.floor(fire).astype(np.int64)

    def get_state(self):
        return dict(a=self.state_a.copy(), b=self.state_b.copy())

    def set_state(self, s):
        self.state_a, self.state_b = s["a"].copy(), s["b"].copy()


def install() -> bool:
    """Install the stand-in if the real package is missing; return whether it was installed."""
    if real_analog_models_available():
        return False
    pkg = types.ModuleType("analog_models")
    pkg.__path__ = []
    cfg_mod = types.ModuleType("analog_models.config")
    cfg_mod.MacroConfig, cfg_mod.PRESETS, cfg_mod.preset = MacroConfig, PRESETS, preset
    arr_mod = types.ModuleType("analog_models.array")
    arr_mod.MramArray, arr_mod.FIRE_ALREADY, arr_mod.FIRE_NEVER = MramArray, FIRE_ALREADY, FIRE_NEVER
    pkg.config, pkg.array = cfg_mod, arr_mod
    sys.modules.update({"analog_models": pkg, "analog_models.config": cfg_mod,
                        "analog_models.array": arr_mod})
    return True
