"""Fault injection: every device and column fault type, explicit maps and drawn rates."""

import numpy as np
import pytest

from analog_models import FIRE_ALREADY, FIRE_NEVER, FaultMap, MramArray, preset


def _ideal(fm, rows=8, cols=8):
    arr = MramArray(preset("ideal"), rows, cols, seed=0, fault_map=fm)
    arr.program_ideal(np.ones((rows, cols), int))  # A low, B high
    return arr


def test_stuck_devices_never_switch():
    fm = FaultMap.empty(8, 8).add_device(2, 3, "A", "stuck_low").add_device(2, 4, "B", "stuck_high")
    arr = _ideal(fm)
    arr.program_ideal(-np.ones((8, 8), int))  # wants A high, B low
    assert arr.state_a[2, 3] and not arr.state_b[2, 4]  # stuck values kept
    assert arr.weights()[2, 3] == 0 and arr.weights()[2, 4] == 0  # both branches agree: corrupt
    assert arr.weights()[2, 5] == -1
    for _ in range(5):
        sw = arr.write_pulse(2, 0, np.zeros(8, bool), np.ones(8, bool), 10**6)
        assert not sw[3]
        sw = arr.write_pulse(2, 1, np.ones(8, bool), np.ones(8, bool), 10**6)
        assert not sw[4]
    assert arr.state_a[2, 3] and not arr.state_b[2, 4]
    assert arr.sense(2, 0)[3] and not arr.sense(2, 1)[4]


def test_stuck_device_changes_dot_product():
    fm = FaultMap.empty(8, 8).add_device(0, 0, "A", "stuck_high")
    arr = _ideal(fm)
    f = arr.evaluate(np.ones(8, bool))  # column 0 has a mismatch the weights do not explain
    assert f[0] == f[1] + 250


def test_shorted_device_lowers_column_resistance():
    cfg = preset("ideal")
    fm = FaultMap.empty(8, 8).add_device(1, 2, "B", "shorted")
    arr = _ideal(fm)
    x = np.ones(8, bool)
    x[1] = False  # row 1 conducts through B (high, mismatch) -> shorted instead
    r = arr.column_resistance(x)
    assert r[3] == 7 * 13e3 + 26e3
    assert r[2] == 7 * 13e3 + cfg.device.fet_ohm + cfg.device.shorted_ohm
    f = arr.evaluate(x)
    assert f[2] < f[3] - 250  # a shorted branch is faster than even a low one
    assert arr.sense(1, 1)[2] and not arr.sense(1, 1)[3]  # shorted reads low
    sw = arr.write_pulse(1, 1, np.ones(8, bool), np.ones(8, bool), 10**6)  # B high -> low
    assert not sw[2] and sw[3]  # the shorted device cannot switch, its healthy neighbour does


def test_open_device_only_matters_when_conducting():
    fm = FaultMap.empty(8, 8).add_device(4, 6, "A", "open")
    arr = _ideal(fm)
    x = np.ones((2, 8), bool)
    x[1, 4] = False  # second vector routes row 4 through B
    f = arr.evaluate(x)
    assert f[0, 6] == FIRE_NEVER and f[1, 6] < FIRE_NEVER
    assert np.all(f[:, 5] < FIRE_NEVER)
    assert np.isinf(arr.column_resistance(x[0])[6])
    assert not arr.sense(4, 0)[6]  # open reads high


@pytest.mark.parametrize("kind,expect", [("open", FIRE_NEVER), ("comparator_stuck_low", FIRE_NEVER),
                                         ("comparator_stuck_high", FIRE_ALREADY)])
def test_column_faults(kind, expect):
    arr = _ideal(FaultMap.empty(8, 8).add_column(5, kind), cols=8)
    f = arr.evaluate(np.random.default_rng(0).random((4, 8)) < 0.5)
    assert np.all(f[:, 5] == expect)
    assert np.all((f[:, [0, 1, 2, 3, 4, 6, 7]] > 0) & (f[:, [0, 1, 2, 3, 4, 6, 7]] < FIRE_NEVER))
    assert f.dtype == np.int64


def test_fault_rates_drawn_from_seed():
    rates = {"faults.stuck_low_rate": 0.02, "faults.stuck_high_rate": 0.03, "faults.shorted_rate": 0.01,
             "faults.open_rate": 0.005, "faults.column_open_rate": 0.1,
             "faults.comparator_stuck_high_rate": 0.1, "faults.comparator_stuck_low_rate": 0.1}
    cfg = preset("paper", **rates)
    arr = MramArray(cfg, 128, 128, seed=4)
    n = 2 * 128 * 128
    for kind, rate in (("stuck_low", 0.02), ("stuck_high", 0.03), ("shorted", 0.01), ("open", 0.005)):
        c = arr.faults.count(kind)
        assert abs(c - n * rate) < 4 * np.sqrt(n * rate) + 1, kind
    for kind in ("open", "comparator_stuck_high", "comparator_stuck_low"):
        assert 2 <= np.count_nonzero(arr.faults.column == ["none", "open", "comparator_stuck_high",
                                                            "comparator_stuck_low"].index(kind)) <= 28
    # same seed -> same faults; the map can be built up front and edited
    fm = FaultMap.from_rates(cfg, 128, 128, seed=4)
    np.testing.assert_array_equal(fm.device, arr.faults.device)
    assert MramArray(preset("paper"), 16, 16).faults.device.max() == 0  # no rates, no faults
    # stuck states are applied to the stored state
    assert np.all(arr.state_a[arr.faults.device[0] == 1]) and not np.any(arr.state_a[arr.faults.device[0] == 2])


def test_fault_map_validation():
    with pytest.raises(ValueError, match="unknown device fault"):
        FaultMap.empty(8, 8).add_device(0, 0, 0, "melted")
    with pytest.raises(ValueError, match="unknown column fault"):
        FaultMap.empty(8, 8).add_column(0, "melted")
    with pytest.raises(ValueError, match="side"):
        FaultMap.empty(8, 8).add_device(0, 0, "C", "open")
    with pytest.raises(ValueError, match="fault_map is for"):
        MramArray(preset("ideal"), 8, 16, fault_map=FaultMap.empty(8, 8))
    with pytest.raises(ValueError, match="device holds an unknown fault code"):
        FaultMap(np.full((2, 8, 8), 9), np.zeros(8))
