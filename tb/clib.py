"""Small C helpers of the testbench, compiled once per source text with the machine's C compiler.

:mod:`tb.castcache` (the dynamic_cast memo preloaded into Icarus) and :mod:`tb.simcost` (the
Callgrind marks of the timed phase) each keep one C file next to their module; this builds it
into ``<build_root>/<name>/<hash of the source>/lib<name>.so``, so an edited source is rebuilt
and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path


class CLibError(RuntimeError):
    """The library could not be built; the one-line message says why."""


def c_compiler() -> list[str] | None:
    """The command of the machine's C compiler (``cc``, ``gcc`` or ``c++`` in C mode), or None."""
    for name, args in (("cc", []), ("gcc", []), ("c++", ["-x", "c"])):
        path = shutil.which(name)
        if path:
            return [path, *args]
    return None


def shared_library(source: Path, build_root: Path, name: str, link_args: tuple[str, ...] = ()) -> Path:
    """Path of ``source`` compiled as a shared library under ``build_root/name``, built if needed.

    Raises :class:`CLibError` when there is no C compiler or the compiler refuses the source.
    """
    text = Path(source).read_bytes()
    out_dir = Path(build_root) / name / hashlib.sha256(text).hexdigest()[:16]
    lib = out_dir / f"lib{name}.so"
    if lib.exists():
        return lib
    cc = c_compiler()
    if cc is None:
        raise CLibError("no C compiler (cc, gcc or c++)")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Built under a private name and renamed, so a concurrent run never loads a half-written file.
    tmp = out_dir / f"lib{name}.{os.getpid()}.so"
    proc = subprocess.run([*cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(source), *link_args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = (proc.stderr.strip().splitlines() or ["no message"])[0]
        raise CLibError(f"compiling {Path(source).name} failed: {first}")
    os.replace(tmp, lib)
    return lib
