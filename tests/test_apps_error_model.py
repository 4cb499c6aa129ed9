"""The measured dot-product error model: table, sampling statistics, measurement, files."""

import numpy as np
import pytest

from apps.error_model import (COMMITTED_PATH, EST_MIN, EST_VALUES, TRUE_DOTS, ErrorModel, design_inputs,
                              load_error_model, measure_fast)


def test_exact_model_returns_the_true_dot():
    t = np.repeat(TRUE_DOTS, 50)
    assert np.array_equal(ErrorModel.exact().sample(t, 0), t)


def test_committed_model_sampling_matches_its_table():
    em = ErrorModel.load(COMMITTED_PATH)
    assert em.n >= 1_000_000
    mean, sd = em.error_moments()
    for t in (-40, 0, 24):
        s = em.sample(np.full(200_000, t), rng=1).astype(np.float64) - t
        i = (t + 64) // 2
        assert abs(s.mean() - mean[i]) < 0.05
        assert abs(s.std() - sd[i]) < 0.05
        # The whole distribution, not only two moments.
        hist = np.bincount(s.astype(np.int64) + t - EST_MIN, minlength=EST_VALUES.size) / s.size
        assert np.abs(hist - em.pmf()[i]).max() < 0.005


def test_committed_model_is_a_real_measurement():
    em = load_error_model(COMMITTED_PATH)
    assert em.observed().all()
    assert 1.0 < em.mean_abs_error_random_inputs() < 6.0  # the paper preset's 4-bit TDC: not exact, not wild


def test_sampling_is_seeded_and_independent_per_element():
    em = ErrorModel.load(COMMITTED_PATH)
    t = np.zeros(10_000, np.int64)
    assert np.array_equal(em.sample(t, 5), em.sample(t, 5))
    assert not np.array_equal(em.sample(t, 5), em.sample(t, 6))
    a = em.sample(t, 7).astype(float)
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.05


def test_bad_true_dots_raise():
    em = ErrorModel.exact()
    with pytest.raises(ValueError, match="even"):
        em.sample(np.array([3]))
    with pytest.raises(ValueError, match="-64..64"):
        em.sample(np.array([66]))
    with pytest.raises(ValueError, match="even"):
        ErrorModel.from_samples([1], [1.0])


def test_unobserved_rows_borrow_the_nearest_error_distribution():
    em = ErrorModel.from_samples([0] * 4, [-2.0, 0.0, 0.4, 2.0])  # errors -2, 0, 0, +2 at t = 0 only
    s = em.sample(np.full(20_000, 10), 0)
    assert set(np.unique(s)) == {8, 10, 12}
    assert abs((s == 10).mean() - 0.5) < 0.02


def test_save_load_round_trip(tmp_path):
    em = ErrorModel.from_samples([0, 2, -64], [1.2, 2.0, -60.0], meta=dict(x=1))
    back = ErrorModel.load(em.save(tmp_path / "m.npz"))
    assert np.array_equal(back.counts, em.counts) and back.meta == {"x": 1}


def test_design_inputs_cover_every_dot_value():
    rng = np.random.default_rng(0)
    w = rng.choice([-1, 1], size=(64, 64))
    x = design_inputs(w, 3000, rng)
    dots = x.astype(int) @ w
    assert set(np.unique(dots)) == set(TRUE_DOTS)


def test_measurement_ideal_is_exact_and_paper_is_not():
    ideal = measure_fast(8192, preset_name="ideal", chips=1, programmings=1)
    assert ideal.mean_abs_error() == 0.0
    paper = measure_fast(8192, preset_name="paper", chips=1, programmings=1)
    assert paper.mean_abs_error() > 1.0
