"""The dynamic_cast memo preloaded into Icarus (tb/castcache.c): exact, in use, and optional."""

import os
import shutil
import subprocess

import pytest

from macro_spec.params import MacroParams
from tb.castcache import CAST_CACHE_ENV, cast_cache_enabled, cast_cache_library, preload_env
from tb.runner import SimulatorError, run

# Every kind of cast __dynamic_cast answers: downcasts through single, multiple and virtual
# inheritance, cross-casts between sibling bases (what Icarus does on every signal read),
# casts that fail, an ambiguous base, and the same casts on objects of other dynamic types
# whose subobjects sit at other offsets. Each cast runs many times so the memo answers most.
PROGRAM = r"""
#include <cstdio>
#include <cstddef>
#include <dlfcn.h>
struct A { virtual ~A() {} long a = 1; };
struct B : A { long b = 2; };
struct C { virtual ~C() {} long c = 3; };
struct D : B, C { long d = 4; };
struct E : C, B { long e = 5; };
struct V : virtual A { long v = 6; };
struct W : virtual A { long w = 7; };
struct X : V, W { long x = 8; };
struct P : A { long p = 9; };
struct Q : A { long q = 10; };
struct Amb : P, Q { long z = 11; };   // two A subobjects: A* -> Amb* is ambiguous from neither

static long off(const void *base, const void *p) { return p ? (long)((const char *)p - (const char *)base) : -1; }

int main() {
    D d; E e; X x; Amb amb; B b; V v;
    A *as[] = {&d, &e, &x, &b, &v, static_cast<P *>(&amb), static_cast<Q *>(&amb)};
    C *cs[] = {&d, &e};
    const void *whole[] = {&d, &e, &x, &b, &v, &amb, &amb};
    for (int round = 0; round < 1000; round++) {
        for (int i = 0; i < 7; i++) {
            A *p = as[i];
            long r[] = {off(whole[i], dynamic_cast<B *>(p)), off(whole[i], dynamic_cast<C *>(p)),
                        off(whole[i], dynamic_cast<D *>(p)), off(whole[i], dynamic_cast<E *>(p)),
                        off(whole[i], dynamic_cast<V *>(p)), off(whole[i], dynamic_cast<W *>(p)),
                        off(whole[i], dynamic_cast<X *>(p)), off(whole[i], dynamic_cast<P *>(p)),
                        off(whole[i], dynamic_cast<Q *>(p)), off(whole[i], dynamic_cast<Amb *>(p))};
            if (round == 0) {
                printf("A%d", i);
                for (long v : r) printf(" %ld", v);
                printf("\n");
            }
        }
        for (int i = 0; i < 2; i++) {
            C *p = cs[i];
            long r[] = {off(whole[i], dynamic_cast<A *>(p)), off(whole[i], dynamic_cast<B *>(p)),
                        off(whole[i], dynamic_cast<D *>(p)), off(whole[i], dynamic_cast<E *>(p)),
                        off(whole[i], dynamic_cast<X *>(p))};
            if (round == 0) {
                printf("C%d", i);
                for (long v : r) printf(" %ld", v);
                printf("\n");
            }
        }
    }
    typedef void (*stats_fn)(unsigned long *, unsigned long *);
    stats_fn stats = (stats_fn)dlsym(RTLD_DEFAULT, "castcache_stats");
    unsigned long hits = 0, misses = 0;
    if (stats) stats(&hits, &misses);
    fprintf(stderr, "memo %d hits %lu misses %lu\n", stats != 0, hits, misses);
    return 0;
}
"""


def _cxx():
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    return cxx


def test_memo_returns_exactly_what_libstdcxx_returns(tmp_path):
    src = tmp_path / "casts.cpp"
    src.write_text(PROGRAM)
    exe = tmp_path / "casts"
    subprocess.run([_cxx(), "-O0", "-o", str(exe), str(src), "-ldl"], check=True)
    lib = cast_cache_library(tmp_path / "build")
    assert lib is not None and lib.exists()
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    plain = subprocess.run([str(exe)], capture_output=True, text=True, env=env, check=True)
    memo = subprocess.run([str(exe)], capture_output=True, text=True, env={**env, "LD_PRELOAD": str(lib)},
                          check=True)
    assert plain.stdout == memo.stdout
    # The program really casts across bases and really fails some casts.
    rows = [line.split()[1:] for line in plain.stdout.splitlines()]
    assert len(rows) == 9 and any("-1" in r for r in rows) and any(v not in ("0", "-1") for r in rows for v in r)
    assert plain.stderr.startswith("memo 0 ")
    _, on, _, hits, _, misses = memo.stderr.split()
    assert on == "1"
    # 1,000 rounds of the same 80 casts: all but the first round's are answered from the table.
    assert int(hits) >= 990 * 80 and int(misses) <= 2 * 80, memo.stderr


def test_library_is_built_once_per_source(tmp_path):
    first = cast_cache_library(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert cast_cache_library(tmp_path) == first and first.stat().st_mtime_ns == stamp


def test_environment_switch(monkeypatch, tmp_path):
    monkeypatch.delenv(CAST_CACHE_ENV, raising=False)
    monkeypatch.setenv("LD_PRELOAD", "/some/other.so")
    assert cast_cache_enabled()
    env = preload_env(tmp_path)
    # The memo goes first and a preload the user already had is kept.
    assert env["LD_PRELOAD"].split() == [str(cast_cache_library(tmp_path)), "/some/other.so"]
    monkeypatch.setenv(CAST_CACHE_ENV, "0")
    assert not cast_cache_enabled() and preload_env(tmp_path) == {}
    monkeypatch.setenv(CAST_CACHE_ENV, "yes")
    with pytest.raises(SimulatorError, match=f"^{CAST_CACHE_ENV} must be 0 or 1, not 'yes'$"):
        run("icarus", MacroParams(), "tb.test_macro", testcase="register_reset_values")


def test_icarus_regression_without_the_memo(monkeypatch):
    """The co-simulation regressions run with the memo; this one runs without it, same checks."""
    monkeypatch.setenv(CAST_CACHE_ENV, "0")
    tests, failed, results = run("icarus", MacroParams(), "tb.test_macro", testcase="compute_regression",
                                 config=dict(preset="paper", seed=13, n_ops=100), shim=True,
                                 results_name="results_compute_regression_no_castcache")
    assert tests == 1 and failed == 0, f"see {results}"
