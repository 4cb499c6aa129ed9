"""Counter-based random numbers: batching, column order, seeds, persistence, speed."""

import time

import numpy as np
import pytest

from analog_models import MramArray, preset
from analog_models import rng
from analog_models.array import FIRE_ALREADY, FIRE_NEVER


def _array(seed=7, cols=64, name="paper", **kw):
    arr = MramArray(preset(name), 64, cols, seed=seed, **kw)
    arr.program_ideal(np.where(np.random.default_rng(1).random((64, 64))[:, :cols] < 0.5, 1, -1))
    return arr


def test_batch_equals_one_at_a_time():
    x = np.random.default_rng(2).random((37, 64)) < 0.5
    a, b, c = _array(), _array(), _array()
    batch = a.evaluate(x)
    single = np.stack([b.evaluate(xi) for xi in x])
    chunks = np.concatenate([c.evaluate(x[i:i + 10]) for i in range(0, 37, 10)])
    np.testing.assert_array_equal(batch, single)
    np.testing.assert_array_equal(batch, chunks)
    assert a.eval_count == b.eval_count == c.eval_count == 37
    assert batch.dtype == np.int64 and single.shape == (37, 64)


def test_one_at_a_time_across_noise_blocks():
    """Evaluations one at a time take their read noise from blocks drawn ahead (the
    co-simulation's path); every fire time must still equal the batch's, across block edges,
    after a batch that left the counter unaligned, and after rewinding the counter."""
    from analog_models import array as array_mod

    x = np.random.default_rng(5).random((3 * array_mod._NOISE_AHEAD + 50, 64)) < 0.5
    ref = _array().evaluate(x)
    a = _array()
    got = [a.evaluate(x[:7])]                                # a batch: counter now 7
    got += [a.evaluate(xi)[None] for xi in x[7:150]]         # one at a time over block edges
    got += [a.evaluate(x[150:152])]                          # a small batch from the same block
    st = a.get_state()
    got += [a.evaluate(xi)[None] for xi in x[152:]]
    np.testing.assert_array_equal(np.concatenate(got), ref)
    a.set_state(st)                                          # rewind: earlier counters again
    again = np.stack([a.evaluate(xi) for xi in x[152:]])
    np.testing.assert_array_equal(again, ref[152:])
    assert a._noise_block[1] is not None                     # the path under test was taken


@pytest.mark.parametrize("name,overrides", [
    ("paper", {"faults.open_rate": 0.01, "faults.column_open_rate": 0.05,
               "faults.comparator_stuck_high_rate": 0.05, "faults.comparator_stuck_low_rate": 0.05}),
    ("ideal", {})], ids=["paper-faults", "ideal-noiseless"])
def test_single_evaluation_path_equals_batch(name, overrides):
    """One input vector takes the model's single-evaluation path (the co-simulation's): the
    same bits as a batch with faulty devices and columns, and without noise; and a fresh array
    each time (the adapter keeps what it gets)."""
    cfg = preset(name, **overrides)
    arrays = []
    for _ in range(2):
        arr = MramArray(cfg, 64, 64, seed=11)
        arr.program_ideal(np.where(np.random.default_rng(1).random((64, 64)) < 0.5, 1, -1))
        arrays.append(arr)
    x = np.random.default_rng(4).random((90, 64)) < 0.5
    ref = arrays[0].evaluate(x)
    got = [arrays[1].evaluate(xi) for xi in x]
    np.testing.assert_array_equal(np.stack(got), ref)
    assert got[0] is not got[1] and not np.shares_memory(got[0], got[1])
    if overrides:
        col = arrays[1].faults.column
        assert (col != 0).any() and (ref == FIRE_NEVER).any() and (ref == FIRE_ALREADY).any()
        assert arrays[1]._any_open


def test_draws_keyed_by_column_position_not_order():
    # The first 32 columns of a 64-column chip are the 32-column chip with the same seed:
    # devices, offsets and per-evaluation noise are keyed by column index.
    x = np.random.default_rng(3).random((20, 64)) < 0.5
    wide, narrow = _array(cols=64), _array(cols=32)
    np.testing.assert_array_equal(wide.comparator_offset_ps[:32], narrow.comparator_offset_ps)
    np.testing.assert_array_equal(wide.device_resistance_ohm()[0][:, :, :32], narrow.device_resistance_ohm()[0])
    np.testing.assert_array_equal(wide.evaluate(x)[:, :32], narrow.evaluate(x))


def test_seed_and_instance_change_the_chip_and_noise():
    x = np.random.default_rng(4).random((5, 64)) < 0.5
    base = _array(seed=7).evaluate(x)
    np.testing.assert_array_equal(base, _array(seed=7).evaluate(x))
    assert not np.array_equal(base, _array(seed=8).evaluate(x))
    assert not np.array_equal(base, _array(seed=7, instance=1).evaluate(x))
    # consecutive evaluations of the same vector differ (noise advances with the counter)
    a = _array()
    assert not np.array_equal(a.evaluate(x[0]), a.evaluate(x[0]))


def test_rng_distributions():
    u = rng.uniform(1, 0, 5, np.arange(200_000), 0)
    assert u.min() > 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    z = rng.normal(1, 0, 5, 0, np.arange(200_000))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.mean(np.abs(z) > 3) - 0.0027) < 0.0008
    h1 = rng.hash_u64(1, 0, 5, np.arange(1000)[:, None], np.arange(1000)[None, :])
    assert np.unique(h1).size == 10**6  # no collisions across counters and indices


def _ops(arr):
    x = np.random.default_rng(5).random((6, 64)) < 0.5
    out = [arr.evaluate(x)]
    for r in (0, 5):
        arr.write_pulse(r, 0, np.arange(64) % 3 == 0, np.ones(64, bool), 12_000)
        out.append(arr.sense(r, 0))
    out.append(arr.evaluate(x))
    return out


def test_power_cycle_restores_exactly(tmp_path):
    a = _array(name="paper")
    _ops(a)
    path = tmp_path / "chip.npz"
    a.save(path)
    expected = _ops(a)
    b = _array(name="paper")  # a fresh object for the same chip, then load
    b.load(path)
    got = _ops(b)
    c = MramArray.restore(path)
    got_c = _ops(c)
    for e, g, h in zip(expected, got, got_c):
        np.testing.assert_array_equal(e, g)
        np.testing.assert_array_equal(e, h)
    np.testing.assert_array_equal(a.state_a, b.state_a)
    assert (a.eval_count, a.pulse_count, a.sense_count) == (b.eval_count, b.pulse_count, b.sense_count)


def test_get_set_state_and_mismatch():
    a = _array()
    _ops(a)
    st = a.get_state()
    b = _array()
    b.set_state(st)
    np.testing.assert_array_equal(_ops(a)[0], _ops(b)[0])
    other = MramArray(preset("paper"), 64, 64, seed=99)
    with pytest.raises(ValueError, match="seed"):
        other.set_state(st)


def test_ten_thousand_evaluations_fast():
    a = _array()
    x = np.random.default_rng(6).random((10_000, 64)) < 0.5
    a.evaluate(x[:10])
    t0 = time.perf_counter()
    a.evaluate(x)
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize("name", ["ideal", "paper", "fine"])
def test_write_row_rounds_equal_pulses_and_senses(name):
    """The fused write rounds (all draws made together) are the plain pin operations, bit for
    bit: results, states and counters, with skipped pulses, faults and discarded rounds."""
    from analog_models import FaultMap

    fm = FaultMap.empty(16, 12)
    for row, col, side, kind in [(1, 2, "A", "open"), (2, 3, "B", "shorted"), (3, 4, "A", "stuck_low"),
                                 (4, 5, "B", "stuck_high")]:
        fm.add_device(row, col, side, kind)
    cfg = preset(name).replace(**{"sense.noise_rel": 0.05})
    fused, plain = (MramArray(cfg, 16, 12, seed=3, fault_map=fm) for _ in range(2))
    g = np.random.default_rng(4)
    for step in range(60):
        n = int(g.integers(1, 6))
        rows = g.permutation(16)[:n]
        data_a, data_b = g.random((n, 12)) < 0.5, g.random((n, 12)) < 0.5
        en_a, en_b = g.random((n, 12)) < 0.6, g.random((n, 12)) < 0.6
        en_b[g.random(n) < 0.2] = False  # some rounds skip a pulse
        pw = float(g.choice([3_000, 20_000]))
        sense = bool(g.random() < 0.8)
        kept = int(g.integers(0, n + 1))
        sw, pulsed, sensed = fused.write_row_rounds(rows, data_a, en_a, data_b, en_b, pw, sense=sense,
                                                    keep=lambda a, b: kept)
        assert sw.shape == (kept, 2, 12) and pulsed.shape == (kept, 2)
        for k in range(kept):
            for side, data, en in ((0, data_a, en_a), (1, data_b, en_b)):
                assert pulsed[k, side] == en[k].any()
                if en[k].any():
                    np.testing.assert_array_equal(sw[k, side], plain.write_pulse(rows[k], side, data[k], en[k], pw))
            if sense:
                for side in (0, 1):
                    np.testing.assert_array_equal(sensed[k, side], plain.sense(rows[k], side))
        np.testing.assert_array_equal(fused.state_a, plain.state_a)
        np.testing.assert_array_equal(fused.state_b, plain.state_b)
        assert (fused.pulse_count, fused.sense_count) == (plain.pulse_count, plain.sense_count)
    with pytest.raises(ValueError, match="distinct"):
        fused.write_row_rounds([1, 1], *(np.ones((2, 12), bool),) * 4, 1000)


@pytest.mark.parametrize("name", ["paper", "fine"])
def test_binned_evaluation_keeps_every_bin(name):
    """evaluate(post, resolution_ps) decides most bins in float32 with margins; every bin (and
    sentinel) is the exact evaluation's, also for wide noise, negative and huge times, faults."""
    from analog_models import FaultMap

    g = np.random.default_rng(5)
    for jitter, offset, res in [(30.0, 0.0, 1000), (30.0, 0.0, 250), (400.0, 2e4, 7), (3000.0, 3e6, 1 << 21),
                                (30.0, 3e6, 4096), (0.0, 0.0, 250)]:
        cfg = preset(name).replace(**{"readout.jitter_sigma_ps": jitter,
                                      "readout.comparator_offset_sigma_ps": offset})
        fm = FaultMap.empty(32, 24).add_device(1, 2, "A", "open").add_column(3, "comparator_stuck_high")
        fm.add_column(5, "open")
        exact_arr, binned_arr = (MramArray(cfg, 32, 24, seed=9, fault_map=fm) for _ in range(2))
        w = np.where(g.random((32, 24)) < 0.5, 1, -1)
        exact_arr.program_ideal(w)
        binned_arr.program_ideal(w)
        x = g.random((3000, 32)) < 0.5
        exact = exact_arr.evaluate(x)
        got = np.empty_like(exact)

        def post(fire, r0, r1):
            got[r0:r1] = fire

        binned_arr.evaluate(x, post=post, resolution_ps=res)
        special = (exact < 0) | (exact >= 2 ** 62)
        np.testing.assert_array_equal(got[special], exact[special])
        np.testing.assert_array_equal(got[~special] // res, exact[~special] // res)
        assert binned_arr.eval_count == exact_arr.eval_count == 3000


def test_rng_batched_forms_equal_uniform_and_normal():
    idx = np.arange(3 * 2 * 8, dtype=np.uint64).reshape(3, 2, 8)
    golden = idx * np.uint64(rng._GOLDEN)
    c = np.arange(12, dtype=np.uint64).reshape(2, 3, 2, 1) + np.uint64(2 ** 63)
    u = rng.uniform_golden(5, 2, [(30, 0), (40, 1)], c, golden)
    np.testing.assert_array_equal(u, np.stack([rng.uniform(5, 2, 30, c[0], idx, 0),
                                               rng.uniform(5, 2, 40, c[1], idx, 1)]))
    np.testing.assert_array_equal(rng.uniform_golden(5, 2, [(30, 0)], [7], golden[0, 0])[0],
                                  rng.uniform(5, 2, 30, 7, idx[0, 0]))
    counters, cols = np.arange(50, dtype=np.uint64) + np.uint64(9), np.arange(16, dtype=np.uint64)
    r, k = np.random.default_rng(6).integers(0, 50, 300), np.random.default_rng(7).integers(0, 16, 300)
    np.testing.assert_array_equal(rng.uniform_gather(1, 0, 20, 1, counters, cols * np.uint64(rng._GOLDEN), r, k),
                                  rng.uniform(1, 0, 20, counters[r], cols[k], lane=1))
    bits = rng.uniform_bits_into(np.empty((50, 16), np.uint64), 1, 0, 20, 0, counters, cols * np.uint64(rng._GOLDEN),
                                 np.empty((50, 16), np.uint64))
    u1 = rng.uniform(1, 0, 20, counters[:, None], cols[None, :], lane=0)
    np.testing.assert_array_equal((bits.astype(np.float64) + 0.5) * 2.0 ** -53, u1)
    radius = rng.normal_radius(bits)
    np.testing.assert_array_equal(radius, np.sqrt(-2.0 * np.log(u1)))
    bound = rng.normal_radius_bound_f32(bits, np.empty((50, 16), np.float32))
    assert (bound >= radius).all() and (bound <= radius * 1.01 + 0.01).all()
    edge = np.array([1, 2, 2 ** 52, 2 ** 53 - 1, 2 ** 53 - 2 ** 20], dtype=np.uint64)  # u1 near 0 and near 1
    assert (rng.normal_radius_bound_f32(edge, np.empty(5, np.float32)) >= rng.normal_radius(edge)).all()
