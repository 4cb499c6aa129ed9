"""Energy estimates per evaluation and per write pulse."""

import numpy as np
import pytest

from analog_models import FaultMap, MramArray, preset


def _arr(name="paper", **kw):
    arr = MramArray(preset(name, **kw), 64, 64, seed=3)
    arr.program_ideal(np.where(np.random.default_rng(0).random((64, 64)) < 0.5, 1, -1))
    return arr


def test_evaluation_energy_terms():
    arr = _arr()
    x = np.random.default_rng(1).random((20, 64)) < 0.5
    e = arr.energy_breakdown_evaluation_j(x)
    parts = ("row_lines_j", "mtj_chain_j", "precharge_j", "comparators_j")
    assert all(np.all(e[p] > 0) for p in parts)
    np.testing.assert_allclose(sum(e[p] for p in parts), e["total_j"])
    tot = arr.energy_per_evaluation_j(x)
    np.testing.assert_allclose(tot, e["total_j"])
    assert isinstance(arr.energy_per_evaluation_j(x[0]), float)
    # order of magnitude: a few pJ per 64x64 evaluation (8192 ops): 100..10000 TOPS/W
    tops_w = 2 * 64 * 64 / tot.mean() / 1e12
    assert 100 < tops_w < 10_000
    # the capacitor energy a column dumps into its chain is at least C/2 (V^2 - V_ref^2)
    c = preset("paper").readout.slope_ps_per_ohm * 1e-12 / np.log(2.0)
    assert np.all(e["mtj_chain_j"] >= 64 * 0.5 * c * (1.0 - 0.25) * (1 - 1e-9))
    # comparators scale with V^2, and the supply raises the total
    hi = _arr(**{"env.supply_v": 1.1}).energy_breakdown_evaluation_j(x)
    np.testing.assert_allclose(hi["comparators_j"], e["comparators_j"] * 1.21)
    assert np.all(hi["total_j"] > e["total_j"])


def test_never_firing_column_costs_no_discharge():
    fm = FaultMap.empty(64, 64).add_column(0, "open")
    arr = MramArray(preset("ideal"), 64, 64, fault_map=fm)
    ok = MramArray(preset("ideal"), 64, 64)
    for a in (arr, ok):
        a.program_ideal(np.ones((64, 64), int))
    x = np.ones(64, bool)
    d = ok.energy_breakdown_evaluation_j(x)["mtj_chain_j"] - arr.energy_breakdown_evaluation_j(x)["mtj_chain_j"]
    assert d == pytest.approx(ok.energy_breakdown_evaluation_j(x)["mtj_chain_j"] / 64)


def test_write_pulse_energy():
    arr = _arr()
    e10, e20, e40 = (arr.energy_per_write_pulse_j(t) for t in (10_000, 20_000, 40_000))
    assert e10 < e20 < e40
    assert e40 - e20 == pytest.approx(2 * (e20 - e10))  # Joule heating linear in the pulse width
    b = arr.energy_breakdown_write_pulse_j(20_000)
    assert b["total_j"] == pytest.approx(b["joule_j"] + b["lines_j"] + b["row_gate_j"])
    # 64 bits at ~1.5 V, ~60-100 uA, 20 ns: of order 100 pJ
    assert 20e-12 < b["joule_j"] < 500e-12
    none = arr.energy_breakdown_write_pulse_j(20_000, row=0, side=0, enable=np.zeros(64, bool))
    assert none["joule_j"] == 0 and none["lines_j"] == 0 and none["row_gate_j"] > 0
    # a low device draws more current than a high one
    ea = arr.energy_breakdown_write_pulse_j(20_000, 0, 0, arr.state_a[0])["joule_j"]
    eb = arr.energy_breakdown_write_pulse_j(20_000, 0, 0, ~arr.state_a[0])["joule_j"]
    na, nb = arr.state_a[0].sum(), (~arr.state_a[0]).sum()
    assert ea / na > eb / nb
    with pytest.raises(ValueError, match="pulse_width_ps"):
        arr.energy_per_write_pulse_j(float("inf"))
