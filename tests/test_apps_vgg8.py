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


def test_docstring_tile_table_matches_the_layers():
    # Each binary layer's row of the module docstring: K = 9 * in (conv) or FC7_IN, tiles = ceil(K / 64).
    rows = {line.split()[0]: line.split() for line in vgg8.__doc__.splitlines()
            if line.strip().startswith(("conv", "fc"))}
    for name, cin, cout, _pool in vgg8.BINARY_CONVS:
        k = 9 * cin
        assert f"{cin}" in rows[name] and f"{cout}" in rows[name] and str(k) in rows[name], name
        assert rows[name][rows[name].index(str(k)) + 1] == str(-(-k // 64)), name
    fc7 = rows["fc7"]
    assert fc7[-2] == str(vgg8.FC7_IN) and fc7[-1] == str(-(-vgg8.FC7_IN // 64))


def test_validation_split_is_the_fixed_tail_of_the_training_set():
    x = np.arange(100 * 4, dtype=np.uint8).reshape(100, 2, 2)
    y = np.arange(100)
    (xt, yt), (xv, yv) = vgg8.split_train_val(x, y, 30)
    assert np.array_equal(yt, np.arange(70)) and np.array_equal(yv, np.arange(70, 100))
    assert np.array_equal(np.concatenate([xt, xv]), x)
    for bad in (0, 100, -5):
        with pytest.raises(ValueError):
            vgg8.split_train_val(x, y, bad)


def test_committed_weights_were_selected_on_validation_not_test():
    import json
    meta = json.loads(vgg8.WEIGHTS_PATH.with_suffix(".json").read_text())
    log = meta["log"]
    assert log and all("val_software" in e for e in log)
    # Only the final, chosen weights may carry a test figure.
    assert not any(k.startswith("test") for e in log for k in e)
    chosen = [e for e in log if e["epoch"] == meta["selected_epoch"]]
    assert len(chosen) == 1 and chosen[0]["val_software"] == max(e["val_software"] for e in log)
    assert meta["validation_digits"].startswith("MNIST train")


def test_per_image_shifts_move_each_image_by_its_own_offset():
    torch = pytest.importorskip("torch")
    x = torch.full((64, 1, 28, 28), -0.5)
    x[:, 0, 14, 14] = 1.0  # one bright pixel in the middle
    out = vgg8.shift_batch(x, np.random.default_rng(0))
    assert out.shape == x.shape and torch.all(out.sum((1, 2, 3)) == x.sum((1, 2, 3)))
    pos = [divmod(int(i), 28) for i in out.reshape(64, -1).argmax(1)]
    assert all(abs(r - 14) <= 2 and abs(c - 14) <= 2 for r, c in pos)
    assert len(set(pos)) > 5  # not one shift for the whole batch


def test_torch_net_reproduces_numpy_inference(weights, sample):
    torch = pytest.importorskip("torch")
    net = vgg8._build_torch(0.0).eval()
    vgg8.import_params(net, {k: v for k, v in weights.items() if not k.endswith(".wbin")})
    x = sample[0][:100]
    with torch.no_grad():
        t = net(torch.tensor(x, dtype=torch.float32)[:, None] / 255.0 - 0.5).numpy()
    np.testing.assert_allclose(t, vgg8.forward(weights, x), atol=1e-4)


def test_bad_arguments_are_one_line_errors(tmp_path):
    import subprocess
    import sys
    for args in (["eval", "--limit", "0"], ["eval", "--weights", str(tmp_path / "none.npz")],
                 ["train", "--label-smoothing", "1.5"], ["train", "--val", "60000"], ["train", "--epochs", "x"]):
        res = subprocess.run([sys.executable, "-m", "apps.vgg8", *args], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
        assert "Traceback" not in res.stderr
