"""The FPGA board top in cocotb: the firmware driver through the UART bridge (tb/test_board.py)."""

import pytest

from rtl.board.sim import BoardSimOptions, run
from tb.runner import SIMULATORS


@pytest.mark.parametrize("sim", SIMULATORS)
def test_board_end_to_end(sim):
    tests, failed, results = run(sim, BoardSimOptions(), "tb.test_board", config={"seed": 3, "n_vectors": 3})
    assert tests == 2, f"expected 2 cocotb tests, {tests} ran ({results})"
    assert failed == 0, f"{failed} of {tests} board tests failed on {sim}; see {results}"
