"""Analog model configuration: presets, overrides, JSON, validation, register settings."""

import json

import numpy as np
import pytest

from analog_models import FIRE_ALREADY, FIRE_NEVER, MacroConfig, MramArray, PRESETS, preset
from macro_spec.params import MacroParams


def tdc_codes(fire_ps, regs, clock_period_ps, sync_stages, tdc_bits):
    """Raw TDC codes by the rules of docs/timing.md, written out independently of the model."""
    fire = np.asarray(fire_ps, dtype=np.int64)
    d = np.where(fire == FIRE_ALREADY, 0, fire // clock_period_ps + sync_stages)
    timed_out = (fire >= FIRE_NEVER) | (d > regs["TDC_TIMEOUT"])
    w, step = regs["TDC_WINDOW"], max(1, regs["TDC_STEP"])
    cmax = min(regs["TDC_CODE_MAX"], 2 ** tdc_bits - 1)
    raw = np.where(d < w, 0, np.minimum((d - w) // step, cmax))
    return np.where(timed_out, cmax, raw), timed_out


REG_KEYS = {"TDC_WINDOW", "TDC_TIMEOUT", "TDC_STEP", "TDC_CODE_MAX", "PRECHARGE", "WRITE_PULSE",
            "READ_PULSE", "WRITE_RETRIES"}


def test_presets_clock_and_latency():
    assert PRESETS == ("ideal", "paper", "fine")
    assert [preset(n).clock_period_ps for n in PRESETS] == [250, 1000, 250]
    for n in PRESETS:
        cfg = preset(n)
        assert cfg.name == n
        assert isinstance(cfg.clock_period_ps, int) and isinstance(cfg.read_latency_ps, int)
        regs = cfg.register_settings(MacroParams())
        assert cfg.read_latency_ps < regs["READ_PULSE"] * cfg.clock_period_ps


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match="ideal.*paper.*fine"):
        preset("typical")


def test_overrides_and_unknown_keys():
    cfg = preset("paper", **{"device.r_low_sigma_ohm": 0.0})
    assert cfg.device.r_low_sigma_ohm == 0.0
    assert preset("paper").device.r_low_sigma_ohm == 1600.0  # presets are not mutated
    assert cfg.replace(clock_period_ps=500).clock_period_ps == 500
    with pytest.raises(ValueError, match="device.r_lo_sigma"):
        preset("paper", **{"device.r_lo_sigma": 1.0})
    with pytest.raises(ValueError, match="bogus"):
        preset("paper").replace(bogus=1)


@pytest.mark.parametrize("name", PRESETS)
def test_json_round_trip(name):
    cfg = preset(name, **{"faults.open_rate": 1e-3, "env.temperature_k": 330.0})
    text = cfg.to_json()
    back = MacroConfig.from_json(text)
    assert back == cfg
    assert MacroConfig.from_dict(json.loads(text)) == cfg
    assert MacroConfig.from_dict(cfg.to_dict()).to_json() == text


def test_from_dict_unknown_key_named():
    d = preset("ideal").to_dict()
    d["readout"]["frobnicate_ps"] = 3
    with pytest.raises(ValueError, match="readout.frobnicate_ps"):
        MacroConfig.from_dict(d)
    d = preset("ideal").to_dict()
    d["colour"] = "red"
    with pytest.raises(ValueError, match="colour"):
        MacroConfig.from_dict(d)


@pytest.mark.parametrize("key,value,field", [
    ("device.r_low_sigma_ohm", -1.0, "r_low_sigma_ohm"),
    ("device.r_high_mean_ohm", 5_000.0, "r_high_mean_ohm"),
    ("faults.open_rate", 1.5, "open_rate"),
    ("readout.slope_ps_per_ohm", 0.0, "slope_ps_per_ohm"),
    ("write.nominal_pulse_width_ps", 1234, "nominal_pulse_width_ps"),
    ("controller.window", "middle", "window"),
    ("clock_period_ps", 0, "clock_period_ps"),
    ("read_latency_ps", 10**6, "read_latency_ps"),
    ("env.temperature_k", float("nan"), "temperature_k"),
])
def test_bad_values_name_the_field(key, value, field):
    with pytest.raises(ValueError, match=field):
        preset("paper", **{key: value})


def test_wrong_types_rejected():
    with pytest.raises(TypeError, match="bias_dependence"):
        preset("paper", **{"device.bias_dependence": 1})
    with pytest.raises(TypeError, match="r_low_mean_ohm"):
        preset("paper", **{"device.r_low_mean_ohm": "13k"})


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("rows", [8, 24, 64, 128])
def test_register_settings_rules(name, rows):
    cfg = preset(name)
    params = MacroParams(rows=rows, cols=16, tdc_bits=8)
    regs = cfg.register_settings(params)
    assert set(regs) == REG_KEYS
    assert all(isinstance(v, int) and 0 <= v <= 65535 for v in regs.values())
    t = cfg.clock_period_ps
    assert regs["WRITE_PULSE"] * t == cfg.write.nominal_pulse_width_ps
    assert 1 <= regs["PRECHARGE"] <= 16 and regs["WRITE_RETRIES"] == 3
    # The timeout leaves room beyond the all-mismatch column's capture cycle (plus spread).
    fmax = cfg.nominal_fire_time_ps(rows, rows)
    d_max = int(fmax // t) + params.sync_stages
    margin_cycles = 4 * cfg.column_time_sigma_ps(rows, rows) / t
    assert regs["TDC_TIMEOUT"] >= d_max + margin_cycles
    if name == "paper":
        assert t == 1000 and regs["TDC_STEP"] == 1 and regs["TDC_CODE_MAX"] == 15
    else:
        assert regs["TDC_STEP"] == 1 and regs["TDC_CODE_MAX"] == rows
        f0 = cfg.nominal_fire_time_ps(rows, 0)
        assert regs["TDC_WINDOW"] == int(f0 // t) + params.sync_stages


@pytest.mark.parametrize("rows", [8, 24, 64, 128])
def test_ideal_code_equals_mismatches(rows):
    cfg = preset("ideal")
    params = MacroParams(rows=rows, cols=16, tdc_bits=8)
    regs = cfg.register_settings(params)
    arr = MramArray(cfg, rows, 16, seed=5)
    gen = np.random.default_rng(rows)
    arr.program_ideal(np.where(gen.random((rows, 16)) < 0.5, 1, -1))
    x = gen.random((400, rows)) < gen.random((400, 1))  # inputs spanning all mismatch counts
    x[0], x[1] = True, False
    fire = arr.evaluate(x)
    m = arr.mismatch_count(x)
    # fire_ps(m) = F0 + m*T exactly, F0 mid-bin
    f0 = cfg.nominal_fire_time_ps(rows, 0)
    assert f0 % cfg.clock_period_ps == cfg.clock_period_ps // 2
    np.testing.assert_array_equal(fire, int(f0) + m * cfg.clock_period_ps)
    code, tmo = tdc_codes(fire, regs, cfg.clock_period_ps, params.sync_stages, params.tdc_bits)
    assert not tmo.any()
    np.testing.assert_array_equal(code, m)
    # every count from 0 to rows appears for all-+1 weights
    arr.program_ideal(np.ones((rows, 16), dtype=int))
    xs = np.ones((rows + 1, rows), dtype=bool)
    for k in range(rows + 1):
        xs[k, :k] = False
    code, _ = tdc_codes(arr.evaluate(xs), regs, cfg.clock_period_ps, params.sync_stages, 8)
    np.testing.assert_array_equal(code, np.repeat(np.arange(rows + 1)[:, None], 16, axis=1))


def test_fine_one_mismatch_per_code_and_paper_centred():
    rows = 64
    for name in ("fine", "paper"):
        cfg = preset(name)
        params = MacroParams(rows=rows, cols=64, tdc_bits=8)
        regs = cfg.register_settings(params)
        arr = MramArray(cfg, rows, 64, seed=11)
        arr.program_ideal(np.ones((rows, 64), dtype=int))
        ms = np.arange(0, rows + 1, 4)
        x = np.ones((len(ms), rows), dtype=bool)
        for k, m in enumerate(ms):
            x[k, :m] = False
        x = np.repeat(x, 20, axis=0)
        code, tmo = tdc_codes(arr.evaluate(x), regs, cfg.clock_period_ps, 2, 8)
        assert not tmo.any()
        mean_code = code.reshape(len(ms), -1).mean(axis=1)
        if name == "fine":
            slope = np.polyfit(ms, mean_code, 1)[0]
            assert 0.9 < slope < 1.1
            assert np.all(np.abs(mean_code[1:-1] - ms[1:-1]) < 1.5)
        else:
            # 4 mismatches per 1 ns code; the middle of the range (m = 32) near code 7.5
            assert 6.0 <= mean_code[len(ms) // 2] <= 9.0
            assert mean_code[0] <= 1.0 and mean_code[-1] >= 14.0
