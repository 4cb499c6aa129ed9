"""MTJ devices: resistance statistics, bias, temperature and supply dependence."""

import numpy as np
import pytest

from analog_models import MramArray, preset
from analog_models import physics


def test_paper_device_statistics():
    arr = MramArray(preset("paper"), 64, 64, seed=3)
    lo, hi = arr.device_resistance_ohm()
    assert lo.shape == hi.shape == (2, 64, 64)
    n = lo.size  # 8192 MTJs
    # mean within 4 standard errors, sigma within 6 % (sampling error of a sigma is 1/sqrt(2n))
    assert abs(lo.mean() - 13_000) < 4 * 1_600 / np.sqrt(n)
    assert abs(hi.mean() - 26_000) < 4 * 2_000 / np.sqrt(n)
    assert abs(lo.std() / 1_600 - 1) < 0.06
    assert abs(hi.std() / 2_000 - 1) < 0.06
    assert np.all(hi >= lo) and np.all(lo > preset("paper").device.fet_ohm)


def test_ideal_devices_have_no_spread():
    arr = MramArray(preset("ideal"), 16, 16, seed=3)
    lo, hi = arr.device_resistance_ohm()
    assert np.all(lo == 13_000.0) and np.all(hi == 26_000.0)


def test_user_override_of_spread():
    cfg = preset("paper", **{"device.r_low_sigma_ohm": 0.0, "device.r_high_sigma_ohm": 500.0})
    lo, hi = MramArray(cfg, 32, 32, seed=1).device_resistance_ohm()
    assert np.all(lo == 13_000.0)
    assert 450 < hi.std() < 550


def test_tmr_falls_with_bias():
    cfg = preset("paper")
    f = [physics.tmr_bias_factor(cfg, v) for v in (cfg.device.nominal_mtj_bias_v, 0.1, 0.3, 0.6)]
    assert f[0] == 1.0
    assert all(a > b for a, b in zip(f, f[1:]))
    assert abs(f[3] - (1 + (cfg.device.nominal_mtj_bias_v / 0.5) ** 2) / (1 + 1.44)) < 1e-12
    # at the array: a sense at a higher read voltage sees a smaller high-state resistance,
    # and short columns (more volts per cell) show less TMR than long ones
    arr_lo = MramArray(cfg, 16, 16, seed=2)
    arr_hi = MramArray(cfg.replace(**{"sense.read_voltage_v": 0.5}), 16, 16, seed=2)
    arr_lo.program_ideal(-np.ones((16, 16), int))
    arr_hi.program_ideal(-np.ones((16, 16), int))
    assert np.all(arr_hi.sense_resistance_ohm(0, 0) < arr_lo.sense_resistance_ohm(0, 0))
    assert np.all(arr_hi.sense_resistance_ohm(0, 1) == arr_lo.sense_resistance_ohm(0, 1))  # low state
    lo8, hi8 = MramArray(cfg, 8, 16, seed=2).device_resistance_ohm()
    lo64, hi64 = MramArray(cfg, 64, 16, seed=2).device_resistance_ohm()
    assert np.all((hi8 - lo8) < (hi64[:, :8] - lo64[:, :8]))
    # switched off: no dependence
    off = cfg.replace(**{"device.bias_dependence": False})
    assert physics.tmr_bias_factor(off, 0.6) == 1.0


def test_temperature_dependence():
    cold = MramArray(preset("paper", **{"env.temperature_k": 250.0}), 16, 16, seed=4)
    nom = MramArray(preset("paper"), 16, 16, seed=4)
    hot = MramArray(preset("paper", **{"env.temperature_k": 380.0}), 16, 16, seed=4)
    tmr = []
    for a in (cold, nom, hot):
        lo, hi = a.device_resistance_ohm()
        tmr.append(((hi - lo) / lo).mean())
    assert tmr[0] > tmr[1] > tmr[2]  # TMR falls with temperature
    # the same chip: set_operating_point gives the same numbers as building it hot
    nom.set_operating_point(temperature_k=380.0)
    np.testing.assert_array_equal(nom.device_resistance_ohm()[1], hot.device_resistance_ohm()[1])


def test_supply_changes_timing():
    base = preset("paper")
    t = {}
    for v in (0.9, 1.0, 1.1):
        cfg = base.replace(**{"env.supply_v": v})
        t[v] = (cfg.nominal_fire_time_ps(64, 0), cfg.nominal_fire_time_ps(64, 64))
    span = {v: b - a for v, (a, b) in t.items()}
    # the RC part stretches with ln(V/V_ref) (reference fixed), so the span grows with supply
    assert span[0.9] < span[1.0] < span[1.1]
    assert span[1.1] / span[1.0] == pytest.approx(np.log(1.1 / 0.5) / np.log(2.0), rel=0.01)
    # the comparator latency falls with supply (alpha-power law)
    assert physics.fixed_delay_ps(base.replace(**{"env.supply_v": 1.1})) < base.readout.fixed_delay_ps
    with pytest.raises(ValueError, match="supply"):
        physics.slope_ps_per_ohm(base.replace(**{"env.supply_v": 0.5}))
