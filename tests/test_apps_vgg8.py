"""Binary VGG-8: numpy inference of the committed weights and error injection (no torch)."""

import numpy as np
import pytest

from apps import vgg8
from apps.error_model import ErrorModel, load_error_model


@pytest.fixture(scope="module")
def weights():
    return vgg8.load_weights()


@pytest.fixture(scope="module")
def sample():
    from apps.mnist import load_sample
    return load_sample()


def test_committed_weights_classify_the_committed_sample(weights, sample):
    x, y = sample
    assert vgg8.accuracy(weights, x, y) >= 0.98


def test_binary_layers_are_binary(weights):
    for name, *_ in vgg8.BINARY_CONVS:
        assert set(np.unique(weights[f"{name}.wbin"])) == {-1, 1}
    assert weights["fc7.wbin"].shape == (vgg8.FC7_IN, vgg8.FC7_OUT)


def test_zero_error_injection_equals_software_exactly(weights, sample):
    x = sample[0][:40]
    assert np.array_equal(vgg8.forward(weights, x), vgg8.forward(weights, x, ErrorModel.exact(), seed=3))


def test_emulation_with_measured_errors_stays_accurate_but_differs(weights, sample):
    x, y = sample[0][:200], sample[1][:200]
    em = load_error_model()
    sw, hw = vgg8.forward(weights, x), vgg8.forward(weights, x, em, seed=0)
    assert not np.array_equal(sw, hw)
    assert (hw.argmax(1) == y).mean() >= 0.96


def test_every_64_row_partial_sum_gets_its_own_error():
    # A model that always adds +2 to a 64-row partial sum: K inputs span ceil(K/64) tiles.
    counts = np.zeros_like(ErrorModel.exact().counts)
    from apps.error_model import EST_MIN, TRUE_DOTS
    counts[np.arange(TRUE_DOTS.size), np.minimum(TRUE_DOTS + 2, 96) - EST_MIN] = 1
    plus2 = ErrorModel(counts)
    rng = np.random.default_rng(0)
    for k in (64, 100, 129, 288):
        x = rng.choice(np.array([-1, 1], np.int8), size=(30, k))
        w = rng.choice(np.array([-1, 1], np.int8), size=(k, 7))
        exact = vgg8.binary_dot(x, w)
        assert np.array_equal(exact, x.astype(np.float32) @ w)
        assert np.array_equal(vgg8.binary_dot(x, w, ErrorModel.exact(), 0), exact)
        tiles = -(-k // 64)
        got = vgg8.binary_dot(x, w, plus2, 0) - exact
        assert np.all(got == 2 * tiles), k
