"""make simcost's measurement: the Callgrind marks around the timed operations and their dump."""

import shutil
import subprocess
import sys

import pytest

from tb.clib import CLibError, shared_library
from tb.simcost import MARKS_SOURCE, callgrind_total, timed_dump

CHILD = """
import ctypes, sys
marks = ctypes.CDLL(sys.argv[1])
s = sum(range(1000))  # before the marks: not counted
marks.simcost_start()
for i in range(int(sys.argv[2])):
    s = (s + i) & 1023
marks.simcost_stop()
s = sum(range(100000))  # after the marks: not counted either
"""


def test_callgrind_total_is_read_from_the_output(tmp_path):
    out = tmp_path / "callgrind.out"
    out.write_text("version: 1\ncmd: vvp sim.vvp\nevents: Ir\nsummary: 1234567\ntotals: 1234567\n")
    assert callgrind_total(out) == 1234567
    out.write_text("events: Ir\n")
    with pytest.raises(ValueError, match="no instruction total"):
        callgrind_total(out)


def test_timed_dump_is_the_marked_part(tmp_path):
    out = tmp_path / "callgrind.out"
    out.write_text("desc: Trigger: Program termination\nsummary: 900\n")
    (tmp_path / "callgrind.out.1").write_text("desc: Trigger: Client Request: timed operations\nsummary: 123\n")
    (tmp_path / "callgrind.out.2").write_text("desc: Trigger: Client Request: something else\nsummary: 7\n")
    assert callgrind_total(timed_dump(out)) == 123
    (tmp_path / "callgrind.out.1").unlink()
    with pytest.raises(ValueError, match="no dump of the timed operations"):
        timed_dump(out)


def test_marks_library_builds_and_reports_a_bad_source(tmp_path):
    lib = shared_library(MARKS_SOURCE, tmp_path, "simcost_marks")
    assert lib.exists() and shared_library(MARKS_SOURCE, tmp_path, "simcost_marks") == lib
    bad = tmp_path / "bad.c"
    bad.write_text("this is not C\n")
    with pytest.raises(CLibError, match="^compiling bad.c failed: "):
        shared_library(bad, tmp_path, "bad")
    assert not list((tmp_path / "bad").rglob("*.so"))


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_only_the_marked_work_is_counted(tmp_path):
    lib = shared_library(MARKS_SOURCE, tmp_path, "simcost_marks")
    (tmp_path / "child.py").write_text(CHILD)
    counts = {}
    for n in (0, 20000, 40000):
        out = tmp_path / f"n{n}" / "callgrind.out"
        out.parent.mkdir()
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                        str(tmp_path / "child.py"), str(lib), str(n)], check=True, capture_output=True, timeout=300)
        counts[n] = callgrind_total(timed_dump(out))
        # The whole run (start-up, imports, the work outside the marks) is far larger.
        assert callgrind_total(out) > 10 * 1000 * 1000
    # Nothing but the two calls between the marks when the loop is empty (the work before and
    # after them, millions of instructions, is not counted); the loop's cost grows with its
    # length (twice the iterations, about twice the instructions: CPython's allocator makes it
    # only roughly proportional).
    assert counts[0] < 100_000, counts
    assert counts[20000] > 20000 * 20 and 1.5 < counts[40000] / counts[20000] < 2.5, counts
