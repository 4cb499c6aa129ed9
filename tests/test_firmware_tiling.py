"""Tiling layers larger than one array, over one array or several."""

import numpy as np
import pytest

from macro_spec.params import MacroParams
from firmware.driver import SyncMacroDriver, UsageError
from firmware.model import FastMacroModel
from firmware.tiling import TiledMatvec

P = MacroParams()


def _drivers(n, preset="ideal"):
    from analog_models.config import preset as get_preset
    cfg = get_preset(preset)
    out = []
    for k in range(n):
        d = SyncMacroDriver(FastMacroModel(P, cfg, seed=1, instance=k))
        d.open()
        d.configure(cfg.register_settings(P))
        out.append(d)
    return out


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(8)
    return rng.choice([-1, 1], size=(150, 70)), rng.choice([-1, 1], size=(25, 150))


def test_150x70_on_one_array_exact(problem):
    w, x = problem
    layer = TiledMatvec(_drivers(1), w)
    assert (layer.row_tiles, layer.col_tiles) == (3, 2)
    res = layer.matvec_sync(x)
    assert np.array_equal(res.dot, x @ w)
    assert res.codes.shape == (3, 25, 70)
    c = res.cost
    assert c.computes == 6 * 25 and c.programmings == 6 and c.reprogrammings == 5
    assert c.row_writes == 6 * P.rows
    # The second product starts with the resident tile: one programming fewer.
    res2 = layer.matvec_sync(x[:3])
    assert np.array_equal(res2.dot, x[:3] @ w) and res2.cost.programmings == 5


def test_150x70_on_six_arrays_programs_once(problem):
    w, x = problem
    layer = TiledMatvec(_drivers(6), w)
    assert layer.resident
    first = layer.matvec_sync(x)
    again = layer.matvec_sync(x)
    assert np.array_equal(first.dot, x @ w) and np.array_equal(again.dot, x @ w)
    assert first.cost.programmings == 6 and first.cost.reprogrammings == 0
    assert again.cost.programmings == 0 and again.cost.row_writes == 0


def test_tiling_rejects_bad_shapes(problem):
    w, x = problem
    layer = TiledMatvec(_drivers(1), w)
    with pytest.raises(UsageError, match="150 rows"):
        layer.matvec_sync(x[:, :149])
    with pytest.raises(UsageError, match="-1 or \\+1"):
        TiledMatvec(_drivers(1), np.zeros((3, 3)))


def test_codes_out_receives_the_codes(problem):
    """codes_out: the codes written straight into a caller's (narrower) array, the rest alike."""
    w, x = problem
    ref = TiledMatvec(_drivers(1, "paper"), w, raise_on_failure=False).matvec_sync(x)
    big = np.zeros((3, 25, 80), dtype=np.int16)
    res = TiledMatvec(_drivers(1, "paper"), w, raise_on_failure=False).matvec_sync(x, codes_out=big[:, :, 5:75])
    assert res.codes.base is big and np.array_equal(big[:, :, 5:75], ref.codes)
    assert not big[:, :, :5].any() and not big[:, :, 75:].any()
    assert np.array_equal(res.dot, ref.dot) and np.array_equal(res.timeouts, ref.timeouts)
    with pytest.raises(UsageError, match="codes_out"):
        TiledMatvec(_drivers(1), w).matvec_sync(x, codes_out=np.zeros((3, 25, 70)))
