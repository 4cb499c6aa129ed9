"""MNIST reader, binary-network helpers and the two-layer perceptron (software and on the macro)."""

import gzip

import numpy as np
import pytest

from apps import mnist
from apps.bnn import (MacroDense, binarize_images, binary_activation, dense_pm1, fold_batchnorm, sign)
from apps.mnist import MnistError, load_mnist, load_sample, read_idx, write_idx
from apps.mnist_mlp import (DEFAULT_WEIGHTS, accuracy, load_weights, preprocess, retune, run_on_model,
                            software_forward)

# ----------------------------------------------------------------------------- IDX reader


def _write_split(folder, n=5, split="t10k", gz=True, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    sfx = ".gz" if gz else ""
    write_idx(folder / f"{split}-images-idx3-ubyte{sfx}", images)
    write_idx(folder / f"{split}-labels-idx1-ubyte{sfx}", labels)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip_from_mnist_dir(tmp_path, monkeypatch, gz):
    images, labels = _write_split(tmp_path, n=7, gz=gz)
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    got_i, got_l = load_mnist("test")
    assert got_i.dtype == np.uint8 and got_i.shape == (7, 28, 28)
    np.testing.assert_array_equal(got_i, images)
    np.testing.assert_array_equal(got_l, labels)
    got_i, got_l = load_mnist("test", limit=3)
    assert got_i.shape == (3, 28, 28) and got_l.shape == (3,)
    assert mnist.mnist_dir("test") == tmp_path


def test_missing_file_names_file_and_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(MnistError) as e:
        load_mnist("test")
    msg = str(e.value)
    assert "\n" not in msg and "t10k-images-idx3-ubyte" in msg and str(tmp_path / "nowhere") in msg
    # Without MNIST_DIR both default places are listed.
    monkeypatch.delenv("MNIST_DIR")
    monkeypatch.setattr(mnist, "PROJECT_ROOT", tmp_path / "proj")
    with pytest.raises(MnistError) as e:
        load_mnist("train")
    msg = str(e.value)
    assert str(tmp_path / "proj" / "data" / "mnist") in msg
    assert str(tmp_path / "shared" / "datasets" / "mnist") in msg


def test_only_labels_missing(tmp_path, monkeypatch):
    _write_split(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    with pytest.raises(MnistError, match="t10k-labels-idx1-ubyte"):
        load_mnist("test")


def _corrupt(path, raw: bytes):
    with gzip.open(path, "wb") as fh:
        fh.write(raw)


@pytest.mark.parametrize("what, match", [
    ("magic", "magic number"),
    ("dims", "dimensions"),
    ("truncated", "data bytes"),
    ("header", "truncated"),
    ("notgzip", "cannot read"),
])
def test_corrupt_images_file(tmp_path, monkeypatch, what, match):
    images, _ = _write_split(tmp_path, n=4)
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    hdr = lambda magic, n, r, c: b"".join(v.to_bytes(4, "big") for v in (magic, n, r, c))  # noqa: E731
    if what == "magic":
        _corrupt(p, hdr(0x801, 4, 28, 28) + images.tobytes())
    elif what == "dims":
        _corrupt(p, hdr(0x803, 4, 28, 27) + images.tobytes()[: 4 * 28 * 27])
    elif what == "truncated":
        _corrupt(p, hdr(0x803, 4, 28, 28) + images.tobytes()[:-10])
    elif what == "header":
        _corrupt(p, b"\x00\x00\x08")
    else:
        p.write_bytes(b"this is not gzip data")
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    with pytest.raises(MnistError, match=match) as e:
        load_mnist("test")
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_images_and_labels_disagree(tmp_path, monkeypatch):
    _write_split(tmp_path, n=4)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    with pytest.raises(MnistError, match="4 images.*5 labels"):
        load_mnist("test")


def test_label_out_of_range(tmp_path, monkeypatch):
    _write_split(tmp_path, n=3)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 12, 3], np.uint8))
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    with pytest.raises(MnistError, match="label 12"):
        load_mnist("test")


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="limit"):
        load_sample(limit=-1)


def test_read_idx_raw_file(tmp_path):
    write_idx(tmp_path / "l", np.arange(10, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(tmp_path / "l", 0x801, ()), np.arange(10))


# --------------------------------------------------------------------------- the sample

def test_sample_loads():
    images, labels = load_sample()
    assert images.shape == (500, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (500,) and set(np.unique(labels)) == set(range(10))
    assert 0 < images.mean() < 60   # MNIST: mostly background


def test_sample_is_the_start_of_the_real_test_set():
    try:
        real_i, real_l = load_mnist("test", limit=500)
    except MnistError:
        pytest.skip("full MNIST not available on this machine")
    images, labels = load_sample()
    np.testing.assert_array_equal(images, real_i)
    np.testing.assert_array_equal(labels, real_l)


# ---------------------------------------------------------------------------- bnn helpers

def test_binarize_and_sign():
    img = np.array([[[0, 127], [128, 255]]], np.uint8)
    np.testing.assert_array_equal(binarize_images(img), [[-1, -1, 1, 1]])
    np.testing.assert_array_equal(binarize_images(img, threshold=100), [[-1, 1, 1, 1]])
    np.testing.assert_array_equal(sign([-2, 0, 3]), [-1, 1, 1])
    np.testing.assert_array_equal(binary_activation([[3, 4, 5]], [4, 4, 6]), [[-1, 1, -1]])


def test_fold_batchnorm_matches_sign_of_batchnorm():
    rng = np.random.default_rng(1)
    w = np.where(rng.random((40, 12)) < 0.5, 1, -1)
    x = np.where(rng.random((300, 40)) < 0.5, 1, -1)
    a = x @ w
    mean, var = rng.normal(0, 3, 12), rng.uniform(1, 30, 12)
    gamma = rng.normal(0, 1, 12)
    gamma[0] = -0.7                      # at least one negative scale
    beta = rng.normal(0, 1, 12)
    ref = sign(gamma * (a - mean) / np.sqrt(var + 1e-5) + beta)
    wf, theta = fold_batchnorm(w, mean, var, gamma, beta)
    assert wf.dtype == np.int8 and (wf[:, 0] == -w[:, 0]).all()
    got = binary_activation(dense_pm1(x, wf), theta)
    np.testing.assert_array_equal(got, ref)


def test_fold_batchnorm_zero_gamma_is_constant():
    _, theta = fold_batchnorm(np.ones((3, 2)), [0, 0], [1, 1], [0, 0], [1, -1])
    assert theta[0] == -np.inf and theta[1] == np.inf


def test_dense_pm1_exact():
    rng = np.random.default_rng(2)
    x = np.where(rng.random((5, 700)) < 0.5, 1, -1)
    w = np.where(rng.random((700, 9)) < 0.5, 1, -1)
    np.testing.assert_array_equal(dense_pm1(x, w), x.astype(np.int64) @ w)


def _ideal_drivers(n=1):
    from analog_models.config import preset
    from firmware.driver import MacroDriver, run_sync
    from firmware.model import FastMacroModel
    from macro_spec.params import MacroParams

    p, cfg = MacroParams(), preset("ideal")
    drivers = [MacroDriver(FastMacroModel(p, cfg, seed=0, instance=k)) for k in range(n)]
    for d in drivers:
        run_sync(d.open())
        run_sync(d.configure(cfg.register_settings(p)))
    return drivers


def test_macro_dense_in_array_threshold_equals_digital():
    """A layer that fits one array: ACT bits from COL_THRESH equal sign(dot - theta)."""
    from firmware.driver import run_sync

    rng = np.random.default_rng(3)
    w = np.where(rng.random((50, 20)) < 0.5, 1, -1)
    x = np.where(rng.random((64, 50)) < 0.5, 1, -1)
    theta = rng.integers(-10, 10, 20) + 0.5
    layer = MacroDense(_ideal_drivers(), w, theta)
    assert layer.in_array
    out = run_sync(layer(x))
    np.testing.assert_array_equal(out.dot, x @ w)
    np.testing.assert_array_equal(out.activations, binary_activation(x @ w, theta))
    assert out.codes.shape == (1, 64, 20)


def test_macro_dense_tiled_over_rows():
    from firmware.driver import run_sync

    rng = np.random.default_rng(4)
    w = np.where(rng.random((150, 70)) < 0.5, 1, -1)   # 3 row tiles x 2 column tiles
    x = np.where(rng.random((10, 150)) < 0.5, 1, -1)
    theta = np.zeros(70)
    layer = MacroDense(_ideal_drivers(2), w, theta)
    assert not layer.in_array
    out = run_sync(layer(x))
    np.testing.assert_array_equal(out.dot, x @ w)
    np.testing.assert_array_equal(out.activations, binary_activation(x @ w, theta))
    assert out.codes.shape == (3, 10, 70) and out.timeouts == 0


# ------------------------------------------------------------------ the trained perceptron

@pytest.fixture(scope="module")
def weights():
    return load_weights(DEFAULT_WEIGHTS)


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def test_committed_weights_record_how_they_were_made(weights):
    assert weights.w1.shape == (576, weights.hidden) and weights.w2.shape == (weights.hidden, 10)
    assert set(np.unique(weights.w1)) == {-1, 1} and set(np.unique(weights.w2)) == {-1, 1}
    meta = weights.meta
    assert meta["command"].startswith("python -m apps.mnist_mlp train") and "seed" in meta
    assert meta["software_test_accuracy"] >= 0.952


def test_software_accuracy_on_sample(weights, sample):
    images, labels = sample
    acc = accuracy(software_forward(weights, preprocess(images, weights))["pred"], labels)
    assert acc >= 0.93, f"software accuracy on the 500-digit sample is {acc:.3f}"


def test_hardware_ideal_equals_software_exactly(weights, sample):
    images, labels = sample
    x = preprocess(images[:40], weights)
    sw = software_forward(weights, x)
    hw = run_on_model(weights, x, preset="ideal", calibrate=False, chunk=None)
    np.testing.assert_array_equal(hw["dot1"], sw["dot1"])
    np.testing.assert_array_equal(hw["h"], sw["h"])
    np.testing.assert_array_equal(hw["dot2"], sw["dot2"])
    np.testing.assert_array_equal(hw["pred"], sw["pred"])
    assert hw["codes1"].shape == (9, 40, weights.hidden) and hw["write_failures"] == 0


def test_paper_hardware_is_sane_and_deterministic(weights, sample):
    """On the paper preset, calibrated and retuned: close to software, and reproducible."""
    images, labels = sample
    x = preprocess(images[:100], weights)
    sw = software_forward(weights, x)
    hw = run_on_model(weights, x, preset="paper", seed=1, calibrate=True, chunk=None)
    again = run_on_model(weights, x, preset="paper", seed=1, calibrate=True, chunk=None)
    np.testing.assert_array_equal(hw["codes1"], again["codes1"])
    err = hw["dot1"] - sw["dot1"]
    assert 0 < np.abs(err).mean() < 20      # errors exist (it is not ideal) but stay small
    assert accuracy(hw["pred"], labels[:100]) >= accuracy(sw["pred"], labels[:100]) - 0.1
    tuned = retune(weights, x, hw)
    # Retuning removes the mean error of every hidden neuron on the digits it was measured on.
    new_err = hw["dot1"] - sw["dot1"] - (tuned.theta1 - weights.theta1)
    np.testing.assert_allclose(new_err.mean(axis=0), 0, atol=1e-9)


@pytest.mark.parametrize("dither", [2, 4])
def test_macro_dense_dither_exact_under_ideal(dither):
    from firmware.driver import run_sync

    rng = np.random.default_rng(5)
    w = np.where(rng.random((130, 12)) < 0.5, 1, -1)
    x = np.where(rng.random((7, 130)) < 0.5, 1, -1)
    layer = MacroDense(_ideal_drivers(), w, None, dither=dither)
    out = run_sync(layer(x))
    np.testing.assert_array_equal(out.dot, x @ w)
    assert out.codes.shape[1] == dither * 7       # every read's codes are kept
    with pytest.raises(ValueError, match="dither"):
        MacroDense(_ideal_drivers(), w, None, dither=0)


def test_dither_shrinks_quantisation_error_on_paper():
    """Under 'paper' one code spans 4 mismatches; 4 dithered reads cut the error clearly."""
    from analog_models.config import preset
    from firmware.driver import MacroDriver, run_sync
    from firmware.model import FastMacroModel
    from macro_spec.params import MacroParams

    rng = np.random.default_rng(6)
    w = np.where(rng.random((61, 10)) < 0.5, 1, -1)
    x = np.where(rng.random((400, 61)) < 0.5, 1, -1)
    errs = {}
    for dither in (1, 4):
        p, cfg = MacroParams(), preset("paper")
        d = MacroDriver(FastMacroModel(p, cfg, seed=2))
        run_sync(d.open())
        run_sync(d.configure(cfg.register_settings(p)))
        run_sync(d.calibrate())
        out = run_sync(MacroDense([d], w, None, dither=dither)(x))
        errs[dither] = np.std(out.dot - x @ w)
    assert errs[4] < 0.75 * errs[1], errs
