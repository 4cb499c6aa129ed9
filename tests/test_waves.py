"""make sim WAVES=1 leaves an FST on both simulators, and every signal of the .gtkw file exists in it."""

import shutil

import pytest

from tb.run import last_dump, main
from tb.runner import SIMULATORS
from tb.waves import SAVE_FILE, dump_signals, gtkw_signals


@pytest.mark.skipif(not shutil.which("fst2vcd"), reason="fst2vcd missing: sudo apt-get install -y gtkwave")
@pytest.mark.parametrize("sim", SIMULATORS)
def test_waves_hold_every_saved_signal(sim):
    dump = last_dump(sim)
    if dump.exists():
        dump.unlink()
    assert main(["--sim", sim, "--waves", "1", "--test", "smoke"]) == 0
    assert dump.exists() and dump.stat().st_size > 1000
    present = dump_signals(dump)
    wanted = gtkw_signals(SAVE_FILE)
    assert len(wanted) >= 30
    missing = [s for s in wanted if s not in present]
    assert not missing, f"{SAVE_FILE.name} names signals absent from the {sim} dump: {missing}"


@pytest.mark.parametrize("args,word", [(["--sim", "modelsim"], "simulator"), (["--test", "nope"], "unknown test"),
                                       (["--waves", "2"], "WAVES"), (["--preset", "x"], "preset"),
                                       (["--rows", "abc"], "rows"), (["--cols", "4"], "cols")])
def test_make_sim_rejects_bad_input_in_one_line(args, word, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err
