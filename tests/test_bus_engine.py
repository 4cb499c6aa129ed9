"""The in-simulator AXI4-Lite bus engine (tb/shim.py, tb/bus_engine.py) on Icarus Verilog and Verilator."""

import subprocess

import pytest

from analog_models.config import preset
from macro_spec.params import MacroParams
from rtl.build import generate_verilog
from tb.runner import SIMULATORS, run
from tb.shim import engine_verilog, ports_of, shim_verilog


@pytest.mark.parametrize("sim", SIMULATORS)
def test_engine_cocotb(sim):
    """Register map, bus errors, long and queue blocks, interleaving with the lean master,
    timeout, interrupt wait and random stalls, all through the engine (tb/test_engine.py)."""
    tests, failed, results = run(sim, MacroParams(), "tb.test_engine", shim=True, config={"preset": "ideal"},
                                 results_name="results_engine")
    assert tests >= 7, f"only {tests} cocotb tests ran ({results})"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed on {sim}; see {results}"


def test_wrapper_is_verilog_2005_clean(tmp_path):
    """Icarus -g2005 compiles the wrapper with the engine without a word."""
    from rtl.toolchain import iverilog_bin

    params = MacroParams(rows=24, cols=40)
    text = generate_verilog(params)
    (tmp_path / "mram_cim.v").write_text(text)
    (tmp_path / "mram_cim_tb.v").write_text(shim_verilog(params, ports_of(text)))
    res = subprocess.run([iverilog_bin(), "-g2005", "-o", "/dev/null", "-s", "mram_cim_tb",
                          str(tmp_path / "mram_cim.v"), str(tmp_path / "mram_cim_tb.v")],
                         capture_output=True, text=True)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr


@pytest.mark.parametrize("kwargs,word", [(dict(max_words=100), "power of two"), (dict(max_words=16), "2 pages"),
                                         (dict(timeout_cycles=1), "timeout"), (dict(addr_bits=20), "address")])
def test_engine_limits_are_checked(kwargs, word):
    args = dict(addr_bits=12) | kwargs
    with pytest.raises(ValueError, match=word) as exc:
        engine_verilog(**args)
    assert "\n" not in str(exc.value)


def test_engine_bus_needs_the_shim_build():
    from tb.env import MacroTB

    with pytest.raises(ValueError, match="shim") as exc:
        MacroTB(None, MacroParams(), preset("ideal"), bus="engine", shim=False)
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match="unknown bus master"):
        MacroTB(None, MacroParams(), preset("ideal"), bus="fast")
