"""Write switching (thermal activation) and the verify sense."""

import numpy as np
import pytest

from analog_models import MramArray, preset
from analog_models import physics


def test_wer_at_nominal_pulse_is_1e_3():
    for name in ("paper", "fine"):
        cfg = preset(name)
        pw = cfg.write.nominal_pulse_width_ps
        assert physics.write_error_rate(cfg, pw) == pytest.approx(1e-3, rel=1e-6)
        # P->AP is the harder direction
        assert physics.write_error_rate(cfg, pw, direction="p_to_ap") == pytest.approx(1.6e-3, rel=1e-6)
        assert physics.write_error_rate(cfg, pw, direction="ap_to_p") == pytest.approx(0.4e-3, rel=1e-6)
    assert physics.write_error_rate(preset("ideal"), 20_000) == 0.0


def test_wer_falls_with_pulse_width_and_voltage():
    cfg = preset("paper")
    pws = np.array([2_000, 5_000, 10_000, 20_000, 40_000])
    wer = physics.write_error_rate(cfg, pws)
    assert np.all(np.diff(wer) < 0)
    for d in ("p_to_ap", "ap_to_p"):  # exp(-t/tau): doubling the pulse squares the error rate
        w20, w40 = (physics.write_error_rate(cfg, t, direction=d) for t in (20_000, 40_000))
        assert w40 == pytest.approx(w20 ** 2, rel=1e-6)
    v = [physics.write_error_rate(cfg, 20_000, write_voltage_v=u) for u in (1.4, 1.5, 1.6)]
    assert v[0] > v[1] > v[2]
    a = physics.write_error_rate(cfg, 20_000, 1.4, direction="p_to_ap")
    b = physics.write_error_rate(cfg, 20_000, 1.4, direction="ap_to_p")
    assert a > b
    assert cfg.write.ic0_p_to_ap_a > cfg.write.ic0_ap_to_p_a
    # hotter: lower barrier, easier switching
    hot = cfg.replace(**{"env.temperature_k": 350.0})
    assert physics.write_error_rate(hot, 20_000) < 1e-3
    with pytest.raises(ValueError, match="pulse_width_ps"):
        physics.switching_probability(cfg, True, -1.0)


def test_monte_carlo_switching_matches_probability():
    cfg = preset("paper")
    arr = MramArray(cfg, 64, 64, seed=21)
    pw = 6_000.0
    p_pap = float(physics.switching_probability(cfg, True, pw))
    p_app = float(physics.switching_probability(cfg, False, pw))
    assert 0.5 < p_pap < p_app < 0.95
    p = 0.5 * (p_pap + p_app)  # every row switches one A (P->AP) and one B (AP->P) per column
    trials = switched = 0
    for rnd in range(3):
        arr.program_ideal(np.ones((64, 64), int))  # A low, B high
        for r in range(64):
            switched += arr.write_pulse(r, 0, np.zeros(64, bool), np.ones(64, bool), pw).sum()
            switched += arr.write_pulse(r, 1, np.ones(64, bool), np.ones(64, bool), pw).sum()
            trials += 128
    assert arr.pulse_count == 3 * 128
    sd = np.sqrt(trials / 2 * (p_pap * (1 - p_pap) + p_app * (1 - p_app)))
    assert abs(switched - trials * p) < 4 * sd


def test_nominal_pulse_monte_carlo_wer():
    cfg = preset("paper")
    arr = MramArray(cfg, 64, 64, seed=5)
    fails = tries = 0
    for rnd in range(6):
        arr.program_ideal(np.full((64, 64), 1 if rnd % 2 else -1))
        for r in range(64):
            for side in (0, 1):
                target = ~(arr.state_a if side == 0 else arr.state_b)[r]
                fails += (~arr.write_pulse(r, side, target, np.ones(64, bool), 20_000)).sum()
                tries += 64
    # 49152 tries, 49 errors expected
    assert 25 <= fails <= 80


def test_pulse_only_acts_on_differing_enabled_devices():
    arr = MramArray(preset("ideal"), 8, 16, seed=1)
    w = np.where(np.arange(16) % 2 == 0, 1, -1)[None, :].repeat(8, 0)
    arr.program_ideal(w)
    before_a, before_b = arr.state_a.copy(), arr.state_b.copy()
    # target equals the state: nothing switches however many pulses
    for _ in range(20):
        assert not arr.write_pulse(3, 0, before_a[3], np.ones(16, bool), 10**6).any()
    np.testing.assert_array_equal(arr.state_a, before_a)
    # disabled columns keep their state even when the target differs
    en = np.arange(16) < 8
    sw = arr.write_pulse(3, "A", ~before_a[3], en, 20_000)
    np.testing.assert_array_equal(sw, en)
    np.testing.assert_array_equal(arr.state_a[3], np.where(en, ~before_a[3], before_a[3]))
    np.testing.assert_array_equal(arr.state_b, before_b)  # the other side is untouched
    np.testing.assert_array_equal(np.delete(arr.state_a, 3, 0), np.delete(before_a, 3, 0))
    assert arr.pulse_count == 21 and arr.eval_count == 0 and arr.sense_count == 0
    with pytest.raises(ValueError, match="row"):
        arr.write_pulse(8, 0, np.ones(16, bool), np.ones(16, bool), 1000)
    with pytest.raises(ValueError, match="side"):
        arr.write_pulse(0, 2, np.ones(16, bool), np.ones(16, bool), 1000)
    with pytest.raises(ValueError, match="data_low"):
        arr.write_pulse(0, 0, np.ones(15, bool), np.ones(16, bool), 1000)
    with pytest.raises(ValueError, match="pulse_width_ps"):
        arr.write_pulse(0, 0, np.ones(16, bool), np.ones(16, bool), -5)


def test_sense_ideal_reads_state():
    arr = MramArray(preset("ideal"), 8, 16, seed=1)
    w = np.where(np.random.default_rng(0).random((8, 16)) < 0.5, 1, -1)
    arr.program_ideal(w)
    for r in range(8):
        np.testing.assert_array_equal(arr.sense(r, 0), w[r] > 0)
        np.testing.assert_array_equal(arr.sense(r, 1), w[r] < 0)
    assert arr.sense_count == 16


def test_sense_misread_rate_matches_margin():
    # A reference close to the low state gives a few percent misreads per device.
    cfg = preset("paper", **{"sense.reference_ohm": 14_500.0})
    arr = MramArray(cfg, 8, 64, seed=8)
    arr.program_ideal(np.ones((8, 64), int))  # A low
    r = arr.sense_resistance_ohm(2, 0)
    p = physics.sense_misread_probability(cfg, r, True)
    n = 600
    misreads = np.zeros(64)
    for _ in range(n):
        misreads += ~arr.sense(2, 0)
    expect = n * p.sum()
    assert expect > 100  # the test has statistical power
    assert abs(misreads.sum() - expect) < 4 * np.sqrt(n * (p * (1 - p)).sum())
    # without device spread the default reference leaves a margin of many noise sigma
    arr2 = MramArray(preset("paper", **{"device.r_low_sigma_ohm": 0.0, "device.r_high_sigma_ohm": 0.0}),
                     8, 64, seed=8)
    arr2.program_ideal(np.ones((8, 64), int))
    for _ in range(50):
        assert arr2.sense(2, 0).all() and not arr2.sense(2, 1).any()


def test_default_reference_static_misreads_are_rare():
    # With the paper's spreads some devices sit within a few noise sigma of the reference; the
    # predicted per-sense misread rate over a whole 64x64 chip is well below 1e-3.
    cfg = preset("paper")
    arr = MramArray(cfg, 64, 64, seed=1)
    w = np.where(np.random.default_rng(2).random((64, 64)) < 0.5, 1, -1)
    arr.program_ideal(w)
    p = np.array([physics.sense_misread_probability(cfg, arr.sense_resistance_ohm(r, s),
                                                    (arr.state_a if s == 0 else arr.state_b)[r])
                  for r in range(64) for s in (0, 1)])
    assert p.mean() < 1e-3
    got = sum(int((arr.sense(r, s) != (arr.state_a if s == 0 else arr.state_b)[r]).sum())
              for _ in range(3) for r in range(64) for s in (0, 1))
    expect = 3 * p.sum()
    assert abs(got - expect) <= 4 * np.sqrt(3 * (p * (1 - p)).sum()) + 1


def test_retention_and_type_checks():
    cfg = preset("paper")
    ten_years = 10 * 365 * 86400
    p300 = physics.retention_flip_probability(cfg, ten_years)
    p350 = physics.retention_flip_probability(cfg.replace(**{"env.temperature_k": 350.0}), ten_years)
    assert 1e-3 < p300 < 0.05 and p350 > 10 * p300
    arr = MramArray(cfg, 8, 8)
    with pytest.raises(TypeError, match="pulse_width_ps"):
        arr.write_pulse(0, 0, np.ones(8, bool), np.ones(8, bool), None)
    with pytest.raises(TypeError, match="MacroParams"):
        cfg.register_settings(64)
