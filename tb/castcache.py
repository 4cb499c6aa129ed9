"""The dynamic_cast memo preloaded into Icarus' ``vvp`` (``tb/castcache.c``): build it, say if it is on.

Icarus 11 spends a quarter of a co-simulated operation inside libstdc++'s ``__dynamic_cast``
(every signal read of behavioural code is one); the memo answers repeated casts from a table
and returns exactly what libstdc++ would (see the C file for why that holds). It is compiled
once per source text into ``build/sim/castcache/`` with the machine's C compiler and loaded with
``LD_PRELOAD`` by :func:`tb.runner.run` for Icarus runs only. ``MRAM_ICARUS_CAST_CACHE=0`` runs
Icarus without it (results are the same; the tests run both ways).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .clib import CLibError, shared_library

#: Environment variable: ``1`` (default) preloads the memo into Icarus runs, ``0`` does not.
CAST_CACHE_ENV = "MRAM_ICARUS_CAST_CACHE"
#: The C source.
SOURCE = Path(__file__).with_suffix(".c")


class CastCacheError(ValueError):
    """A bad :data:`CAST_CACHE_ENV` value; the message says which."""


def cast_cache_enabled() -> bool:
    """Whether :data:`CAST_CACHE_ENV` asks for the memo (unset or ``1``: yes, ``0``: no)."""
    value = os.environ.get(CAST_CACHE_ENV, "1").strip()
    if value not in ("0", "1"):
        raise CastCacheError(f"{CAST_CACHE_ENV} must be 0 or 1, not {value!r}")
    return value == "1"


def cast_cache_library(build_root: Path) -> Path | None:
    """Path of the compiled memo under ``build_root/castcache``, building it if needed.

    Returns ``None`` (after a one-line note on stderr) when there is no C compiler or the build
    fails: Icarus then runs without the memo, slower but with the same results.
    """
    try:
        return shared_library(SOURCE, build_root, "castcache", ("-ldl",))
    except CLibError as exc:
        print(f"note: {exc}, so Icarus runs without the dynamic_cast memo (tb/castcache.c)", file=sys.stderr)
        return None


def preload_env(build_root: Path) -> dict[str, str]:
    """The environment entries that load the memo into an Icarus run (empty when it is off)."""
    if not cast_cache_enabled():
        return {}
    lib = cast_cache_library(build_root)
    if lib is None:
        return {}
    existing = os.environ.get("LD_PRELOAD", "").strip()
    return {"LD_PRELOAD": f"{lib} {existing}".strip()}
