"""Runs the cocotb regression of the whole macro on Icarus Verilog and Verilator."""

import numpy as np
import pytest

from macro_spec.params import MacroParams
from tb.runner import SIMULATORS, run

DEFAULT = MacroParams()
NON_SQUARE = MacroParams(rows=24, cols=40)


def _run(sim, params, testcase, shim=False, **config):
    tests, failed, results = run(sim, params, "tb.test_macro", testcase=testcase, config=config, shim=shim,
                                 results_name=f"results_{testcase.split(',')[0]}_{config.get('preset', 'ideal')}"
                                              f"_{config.get('bus', 'lean')}{'_shim' if shim else ''}")
    assert tests >= 1, f"no cocotb test ran ({results})"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed on {sim}; see {results}"


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("bus", ["lean", "cocotbext-axi"])
def test_registers_and_bus(sim, bus):
    """Both AXI4-Lite masters (ours and cocotbext-axi's) against the slave."""
    _run(sim, DEFAULT, "register_reset_values,register_read_write,bus_errors,refused_bad_and_irq",
         preset="ideal", bus=bus)


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("preset", ["ideal", "paper"])
def test_compute_regression(sim, preset):
    """500 computes per preset and simulator through the comparator-edge shim, every one scoreboarded."""
    _run(sim, DEFAULT, "compute_regression", shim=True, preset=preset, seed=11, n_ops=500)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_compute_regression_python_edges(sim):
    """The same with the comparator edges driven from Python, one wake-up per fire time."""
    _run(sim, DEFAULT, "compute_regression", preset="paper", seed=12, n_ops=100)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_program_timeout_soft_reset(sim):
    _run(sim, DEFAULT, "program_and_read_back,timeout_and_window,soft_reset_mid_compute_and_write",
         preset="paper", seed=5)


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("params,bus", [(DEFAULT, "engine"), (MacroParams(rows=24, cols=40, tdc_bits=10, batch_depth=5, post_lanes=4), "lean")],
                         ids=["64x64-engine", "24x40-4lanes-lean"])
def test_batch_queue(sim, params, bus):
    """COMPUTE_BATCH through the shim: order, one completion, streamed results, refusals,
    overflow, abort; with the in-simulator bus master and with the lean cocotb one."""
    _run(sim, params, "batch_queue", shim=True, preset="paper", seed=8, bus=bus)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_register_bit_bash(sim):
    _run(sim, DEFAULT, "register_bit_bash", preset="ideal")


@pytest.mark.parametrize("sim", SIMULATORS)
def test_non_volatile(sim):
    _run(sim, DEFAULT, "non_volatile", preset="ideal", seed=6)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_non_square_array(sim):
    _run(sim, NON_SQUARE, "smoke,compute_regression,register_reset_values", preset="paper", seed=2, n_ops=100)


FAULTS = {"devices": [[3, 5, "A", "stuck_high"], [3, 11, "B", "stuck_low"], [9, 2, "A", "stuck_low"],
                      [9, 20, "B", "stuck_high"], [12, 40, "A", "open"], [13, 41, "A", "shorted"]],
          "columns": [[7, "open"], [9, "comparator_stuck_high"], [30, "comparator_stuck_low"]]}


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("shim", [False, True], ids=["python-edges", "shim"])
def test_faults_are_flagged(sim, shim):
    """Device and column faults, with the comparator edges from Python and through the shim
    (whose comparator stuck high is its shim_high input, held through every precharge)."""
    _run(sim, DEFAULT, "faults_flagged", shim=shim, preset="paper", seed=4, faults=FAULTS)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_stress_random_with_coverage(sim):
    """Random commands, bus stalls and resets; every coverage bin must be hit (build/coverage/)."""
    import json

    from tb.runner import ROOT

    out = ROOT / "build" / "coverage" / f"stress_{sim}.json"
    if out.exists():
        out.unlink()
    _run(sim, DEFAULT, "stress_random", preset="paper", seed=21, transactions=3000, stall=0.3,
         coverage_out=str(out))
    cov = json.loads(out.read_text())
    assert cov["transactions"] >= 3000
    assert cov["missing"] == [], f"coverage bins never hit: {cov['missing']}"


def test_pins_to_bits():
    """The array adapter's reading of the input pins: bit 0 is the last character; x or z, or a
    wrong width, is an error, not a silent 0."""
    from tb.array_adapter import pins_to_bits

    np.testing.assert_array_equal(pins_to_bits("0010011", 7), [1, 1, 0, 0, 1, 0, 0])
    for bad, n in (("00x1", 4), ("0z01", 4), ("0101", 5)):
        with pytest.raises(ValueError, match="0 and 1"):
            pins_to_bits(bad, n)


def test_shim_delay_binstr():
    """The shim slot's delay text: column j's fire time in bits 32 j + 31 .. 32 j (the last column
    first in the text); never, stuck-high and times beyond 32 bits become SHIM_NEVER; the last
    finite delay sets how long the slot stays busy (-1 when nothing fires)."""
    from analog_models.array import FIRE_ALREADY, FIRE_NEVER
    from tb.array_adapter import shim_delay_binstr
    from tb.shim import SHIM_NEVER

    fire = np.array([5, FIRE_NEVER, FIRE_ALREADY, 1 << 32, SHIM_NEVER - 1, 123_456, 0, 7], dtype=np.int64)
    text, last = shim_delay_binstr(fire)
    assert len(text) == 32 * len(fire) and set(text) <= {"0", "1"}
    value = int(text, 2)
    got = [(value >> (32 * j)) & 0xFFFFFFFF for j in range(len(fire))]
    assert got == [5, SHIM_NEVER, SHIM_NEVER, SHIM_NEVER, SHIM_NEVER - 1, 123_456, 0, 7]
    assert last == SHIM_NEVER - 1
    assert shim_delay_binstr(np.array([3, 9, 4], dtype=np.int64))[1] == 9
    assert shim_delay_binstr(np.full(4, FIRE_NEVER, dtype=np.int64))[1] == -1
