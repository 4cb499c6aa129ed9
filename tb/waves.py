"""``make waves``: open the last FST dump in GTKWave with the committed save file."""

from __future__ import annotations

import argparse

from macro_spec.cli import OneLineArgumentParser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .runner import SIMULATORS

#: The committed GTKWave save file: bus, sequencers, TDC and array pins in groups.
SAVE_FILE = Path(__file__).resolve().parent / "waves" / "mram_cim.gtkw"


def gtkw_signals(path: Path = SAVE_FILE) -> list[str]:
    """Hierarchical signal names (with bit ranges) listed in a GTKWave save file."""
    return [line.strip() for line in Path(path).read_text().splitlines()
            if line.strip() and not line.startswith(("[", "*", "@", "-"))]


def dump_signals(fst: Path) -> set[str]:
    """Hierarchical names (with bit ranges) of every variable in an FST dump, via ``fst2vcd``.

    Raises
    ------
    FileNotFoundError
        If ``fst2vcd`` (Debian package gtkwave) is not installed.
    """
    tool = shutil.which("fst2vcd")
    if not tool:
        raise FileNotFoundError("fst2vcd is missing; install it with: sudo apt-get install -y gtkwave")
    # Only the header is needed; stop reading at the end of definitions.
    proc = subprocess.Popen([tool, str(fst)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    scopes, names = [], set()
    for line in proc.stdout:
        if line.startswith("$scope"):
            scopes.append(line.split()[2])
        elif line.startswith("$upscope"):
            scopes.pop()
        elif line.startswith("$var"):
            parts = line.split()
            rng = parts[5] if len(parts) > 6 and re.match(r"\[\d+(:\d+)?\]$", parts[5]) else ""
            names.add(".".join(scopes + [parts[4]]) + rng)
        elif line.startswith("$enddefinitions"):
            break
    proc.kill()
    proc.wait()
    return names


def main(argv=None) -> int:
    """Open the newest ``build/sim/<sim>/last.fst`` (or the one of ``--sim``) in GTKWave."""
    from .run import last_dump

    p = OneLineArgumentParser(prog="make waves")
    p.add_argument("--sim", default="", help="icarus or verilator (default: the newest dump)")
    a = p.parse_args(argv)
    if a.sim and a.sim not in SIMULATORS:
        print(f"error: unknown simulator {a.sim!r}; choose one of {', '.join(SIMULATORS)}", file=sys.stderr)
        return 2
    dumps = [last_dump(s) for s in ([a.sim] if a.sim else SIMULATORS) if last_dump(s).exists()]
    if not dumps:
        print("error: no waveform yet; run for example: make sim SIM=icarus WAVES=1", file=sys.stderr)
        return 2
    fst = max(dumps, key=lambda f: f.stat().st_mtime)
    gtkwave = shutil.which("gtkwave")
    if not gtkwave:
        print("error: gtkwave is missing; install it with: sudo apt-get install -y gtkwave", file=sys.stderr)
        return 2
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        print(f"error: no display to open GTKWave on; the dump is {fst} and the save file {SAVE_FILE}",
              file=sys.stderr)
        return 2
    print(f"opening {fst} with {SAVE_FILE}")
    return subprocess.call([gtkwave, str(fst), str(SAVE_FILE)])


if __name__ == "__main__":
    sys.exit(main())
