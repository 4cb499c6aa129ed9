"""Face net: committed weights on held-out lfw crops; conv7 on 4 arrays through the firmware."""

import numpy as np
import pytest

from apps import face


@pytest.fixture(scope="module")
def weights():
    return face.load_weights()


@pytest.fixture(scope="module")
def heldout():
    _, te_f, _, te_n, _ = face.lfw_split(0)
    x = np.concatenate([te_f, te_n])[:, :24, :24]
    y = np.concatenate([np.ones(len(te_f)), np.zeros(len(te_n))])
    return x, y


def test_heldout_lfw_crops_are_classified(weights, heldout):
    x, y = heldout
    acc = ((face.forward(weights, x) >= 0) == y).mean()
    assert acc >= 0.85


def test_conv7_fills_four_arrays_and_ideal_macro_equals_numpy(weights, heldout):
    x = heldout[0][:6]
    macro = face.MacroLayer(weights["conv7.wbin"], "ideal", seed=0)
    assert len(macro.drivers) == 4 and macro.layer.resident
    assert np.array_equal(face.forward(weights, x, macro), face.forward(weights, x))
    assert macro.layer.cost.computes == 4 * 6 * 9  # 4 tiles x 6 windows x 3x3 positions


def test_paper_macro_perturbs_conv7_but_keeps_decisions(weights, heldout):
    x, y = heldout
    macro = face.MacroLayer(weights["conv7.wbin"], "paper", seed=0)
    s_hw, s_sw = face.forward(weights, x, macro), face.forward(weights, x)
    assert not np.array_equal(s_hw, s_sw)
    assert ((s_hw >= 0) == (s_sw >= 0)).mean() >= 0.9


def test_torch_net_of_the_shared_builder_reproduces_numpy_inference(weights, heldout):
    torch = pytest.importorskip("torch")
    from apps.vgg8 import import_params
    net = face._build_torch(0.0).eval()
    import_params(net, {k: v for k, v in weights.items() if not k.endswith(".wbin")})
    x = heldout[0][:40]
    with torch.no_grad():
        logits = net(torch.tensor(face.normalise(x), dtype=torch.float32)[:, None]).numpy()
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], face.forward(weights, x), atol=1e-4)
