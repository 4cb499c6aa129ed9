"""Cell, column and readout: resistance sums, calibration, monotone delay, offset and noise."""

import numpy as np
import pytest

from analog_models import MramArray, preset


def _mismatch_inputs(rows, ms):
    x = np.ones((len(ms), rows), dtype=bool)
    for k, m in enumerate(ms):
        x[k, :m] = False
    return x


def test_cell_truth_table_and_column_sum_ideal():
    arr = MramArray(preset("ideal"), 8, 8)
    w = np.ones((8, 8), int)
    w[:, 1::2] = -1
    arr.program_ideal(w)
    assert np.array_equal(arr.weights(), w)
    assert np.all(arr.state_a == (w > 0)) and np.all(arr.state_b == (w < 0))
    x = np.array([1, 1, 1, 0, 0, 0, 0, 1], bool)  # 4 rows +1, 4 rows -1
    r = arr.column_resistance(x)
    # even columns (W=+1): rows with x=1 match (low); odd columns the reverse
    np.testing.assert_array_equal(r, np.where(np.arange(8) % 2 == 0, 4 * 13e3 + 4 * 26e3, 4 * 13e3 + 4 * 26e3))
    x2 = np.ones(8, bool)
    np.testing.assert_array_equal(arr.column_resistance(x2), np.where(np.arange(8) % 2 == 0, 8 * 13e3, 8 * 26e3))
    np.testing.assert_array_equal(arr.mismatch_count(x2), np.where(np.arange(8) % 2 == 0, 0, 8))


def test_column_resistance_is_sum_of_conducting_branches():
    cfg = preset("paper")
    arr = MramArray(cfg, 32, 16, seed=9)
    gen = np.random.default_rng(0)
    arr.program_ideal(np.where(gen.random((32, 16)) < 0.5, 1, -1))
    x = gen.random((5, 32)) < 0.5
    lo, hi = arr.device_resistance_ohm()
    ra = np.where(arr.state_a, lo[0], hi[0])
    rb = np.where(arr.state_b, lo[1], hi[1])
    expect = np.array([[sum(ra[i, j] if xi[i] else rb[i, j] for i in range(32)) for j in range(16)]
                       for xi in x]) + 32 * cfg.readout.wire_ohm_per_cell
    np.testing.assert_allclose(arr.column_resistance(x), expect, atol=0.01)


@pytest.mark.parametrize("name", ["ideal", "paper", "fine"])
def test_fire_time_positive_and_strictly_increasing_for_all_rows(name):
    cfg = preset(name)
    for rows in range(8, 129):
        t = cfg.nominal_fire_time_ps(rows, np.arange(rows + 1))
        assert t[0] > 0
        assert np.all(np.diff(t) > 0)


def test_calibration_13_and_29_ns_at_64_rows():
    for name in ("paper", "fine", "ideal"):
        cfg = preset(name)
        assert cfg.nominal_fire_time_ps(64, 0) == pytest.approx(13_000, abs=200)
        assert cfg.nominal_fire_time_ps(64, 64) == pytest.approx(29_000, abs=200)
    # measured on a drawn array (spread, offsets, noise) the means stay there
    arr = MramArray(preset("paper"), 64, 64, seed=1)
    arr.program_ideal(np.ones((64, 64), int))
    f = arr.evaluate(np.repeat(_mismatch_inputs(64, [0, 64]), 10, axis=0)).reshape(2, -1)
    assert f[0].mean() == pytest.approx(13_125, abs=150)
    assert f[1].mean() == pytest.approx(29_125, abs=150)


def test_static_delay_monotone_per_column():
    arr = MramArray(preset("paper"), 64, 64, seed=2)
    arr.program_ideal(np.ones((64, 64), int))
    t = arr.static_fire_time_ps(_mismatch_inputs(64, range(65)))
    assert np.all(np.diff(t, axis=0) > 0)  # each added mismatch delays every column


def test_offset_and_noise_statistics():
    cfg = preset("paper")
    arr = MramArray(cfg, 64, 64, seed=6)
    arr.program_ideal(np.ones((64, 64), int))
    x = np.repeat(_mismatch_inputs(64, [32]), 2000, axis=0)
    f = arr.evaluate(x).astype(float)
    static = arr.static_fire_time_ps(x[0])
    # per-evaluation noise: read noise of the 64 conducting branches plus jitter, in quadrature
    lo, hi = arr.device_resistance_ohm()
    r = np.where(x[0][:, None], np.where(arr.state_a, lo[0], hi[0]), np.where(arr.state_b, lo[1], hi[1]))
    k = cfg.readout.slope_ps_per_ohm
    sigma = np.sqrt((k * cfg.device.read_noise_rel) ** 2 * (r ** 2).sum(0) + cfg.readout.jitter_sigma_ps ** 2)
    ratio = f.std(axis=0) / sigma
    assert abs(ratio.mean() - 1) < 0.03 and ratio.min() > 0.85 and ratio.max() < 1.15
    # the floor to 1 ps removes 0.5 ps on average
    assert np.abs(f.mean(axis=0) + 0.5 - static).max() < 5 * sigma.max() / np.sqrt(2000)
    # the static comparator offsets have the configured spread and do not change between runs
    off = arr.comparator_offset_ps
    assert 0.6 < off.std() / cfg.readout.comparator_offset_sigma_ps < 1.4
    x_ref = arr.static_fire_time_ps(x[0]) - off
    np.testing.assert_allclose(static - x_ref, off)


def test_noise_free_preset_is_exact_and_repeatable():
    arr = MramArray(preset("ideal"), 64, 8, seed=1)
    arr.program_ideal(np.ones((64, 8), int))
    f = arr.evaluate(np.repeat(_mismatch_inputs(64, [10]), 5, axis=0))
    assert np.all(f == 12_875 + 10 * 250)


def test_bad_inputs_rejected():
    arr = MramArray(preset("ideal"), 8, 8)
    with pytest.raises(ValueError, match="shape"):
        arr.evaluate(np.ones((2, 7), bool))
    with pytest.raises(TypeError, match="bool"):
        arr.evaluate(np.full((2, 8), 0.5))
    with pytest.raises(ValueError, match=r"\+1 or -1"):
        arr.program_ideal(np.zeros((8, 8), int))
    with pytest.raises(ValueError, match="shape"):
        arr.program_ideal(np.ones((8, 9), int))
    with pytest.raises(TypeError, match="config"):
        MramArray("paper", 8, 8)
    with pytest.raises(ValueError, match="rows"):
        MramArray(preset("ideal"), 0, 8)
