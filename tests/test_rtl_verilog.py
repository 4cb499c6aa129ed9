"""Generated Verilog: lint-clean under Verilator -Wall and Icarus -g2005, for several geometries."""

import re
import subprocess
import sys

import pytest

from macro_spec.params import MacroParams
from rtl.build import generate_verilog, lint, write_verilog


@pytest.mark.parametrize("params", [MacroParams(), MacroParams(rows=24, cols=40), MacroParams(rows=8, cols=128, tdc_bits=16, sync_stages=4)])
def test_lint_clean(params, tmp_path):
    out = write_verilog(params, tmp_path / "mram_cim.v")
    assert lint(out) == []


def test_array_port_widths_follow_parameters():
    text = generate_verilog(MacroParams(rows=24, cols=40))
    assert re.search(r"input \[39:0\] array__cmp;", text)
    assert re.search(r"output \[23:0\] array__x;", text)
    assert re.search(r"output \[4:0\] array__row;", text)
    assert "module mram_cim(" in text


def test_cli_rejects_bad_parameters_in_one_line():
    for args, word in ((["--rows", "abc"], "ROWS"), (["--cols", "300"], "cols"), (["--tdc-bits", "2"], "tdc_bits")):
        res = subprocess.run([sys.executable, "-m", "rtl", "verilog", *args, "--out", "/dev/null"],
                             capture_output=True, text=True)
        assert res.returncode == 2
        assert len(res.stderr.strip().splitlines()) == 1 and word in res.stderr
        assert "Traceback" not in res.stderr
