/*
 * A memo of C++ dynamic_cast results, preloaded (LD_PRELOAD) into Icarus Verilog's vvp for the
 * co-simulation runs (tb/runner.py builds and loads it; MRAM_ICARUS_CAST_CACHE=0 turns it off).
 *
 * Why: Icarus 11 executes every read of a signal in behavioural code (%load/vec4) as
 * dynamic_cast<vvp_signal_value*>(net->fil), a cross-cast between sibling bases that
 * libstdc++'s __dynamic_cast answers by walking the class hierarchy with string compares of the
 * type names: about 500 machine instructions a read, which was a quarter of everything the
 * simulator did per co-simulated operation (docs/architecture.md, "Simulation speed").
 *
 * The answer of __dynamic_cast(src_ptr, src_type, dst_type, src2dst) depends only on the type of
 * the complete object src_ptr points into and on where in it the src_type subobject sits, and
 * both are fixed by the subobject's virtual-table pointer (the Itanium C++ ABI stores the
 * offset to the top of the object and the object's type_info in the table itself; every
 * subobject position, construction-time tables included, has its own table). So the result,
 * kept as the offset from src_ptr to the answer (or "none"), is cached under the key
 * (vptr, src_type, dst_type, src2dst) and is exact: no result ever differs from libstdc++'s
 * (tests/test_castcache.py checks single, multiple and virtual inheritance, cross-casts and
 * failing casts against the uncached answers). Tables are never freed or reused while vvp runs
 * (it unloads no library), so a key never comes to mean something else.
 *
 * The table is per thread, so no lock is needed and no reader sees a half-written entry.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef void *(*dynamic_cast_fn)(const void *src_ptr, const void *src_type, const void *dst_type,
                                 ptrdiff_t src2dst);

struct cast_entry {
    const void *vptr, *src_type, *dst_type;
    ptrdiff_t src2dst;
    ptrdiff_t delta;            /* answer - src_ptr, or CAST_FAILS */
};

/* Direct-mapped; the signal classes of a simulation need a few dozen keys. */
#define CAST_SLOTS 4096u
#define CAST_FAILS ((ptrdiff_t)1 << 62)

static dynamic_cast_fn real_dynamic_cast;
static __thread struct cast_entry *cast_table __attribute__((tls_model("initial-exec")));
static __thread unsigned long cast_hits __attribute__((tls_model("initial-exec")));
static __thread unsigned long cast_misses __attribute__((tls_model("initial-exec")));

/* Hits and misses of the calling thread: lets a test see that the memo is in use. */
void castcache_stats(unsigned long *hits, unsigned long *misses)
{
    *hits = cast_hits;
    *misses = cast_misses;
}

static inline struct cast_entry *cast_slot(struct cast_entry *table, const void *vptr, const void *src_type,
                                           const void *dst_type)
{
    uintptr_t h = ((uintptr_t)vptr >> 3) ^ ((uintptr_t)dst_type >> 4) * 0x9E3779B1u ^ ((uintptr_t)src_type >> 5);
    return &table[h & (CAST_SLOTS - 1)];
}

/* The uncached cast and the store of its answer: out of line, so that a hit (almost every call)
 * runs a short function that saves no registers. */
static __attribute__((noinline)) void *cast_miss(const void *src_ptr, const void *src_type, const void *dst_type,
                                                 ptrdiff_t src2dst, const void *vptr)
{
    if (!real_dynamic_cast) {
        real_dynamic_cast = (dynamic_cast_fn)dlsym(RTLD_NEXT, "__dynamic_cast");
        if (!real_dynamic_cast) {
            fputs("castcache: no __dynamic_cast after the preloaded one (libstdc++ missing?)\n", stderr);
            abort();
        }
    }
    void *answer = real_dynamic_cast(src_ptr, src_type, dst_type, src2dst);
    cast_misses++;
    struct cast_entry *table = cast_table;
    if (!table) {
        table = cast_table = calloc(CAST_SLOTS, sizeof *table);
        if (!table)
            return answer;          /* no memory for the memo: uncached, still exact */
    }
    struct cast_entry *e = cast_slot(table, vptr, src_type, dst_type);
    e->vptr = vptr;
    e->src_type = src_type;
    e->dst_type = dst_type;
    e->src2dst = src2dst;
    e->delta = answer ? (char *)answer - (char *)src_ptr : CAST_FAILS;
    return answer;
}

void *__dynamic_cast(const void *src_ptr, const void *src_type, const void *dst_type, ptrdiff_t src2dst)
{
    /* The compiler calls __dynamic_cast only for a non-null pointer. */
    const void *vptr = *(const void *const *)src_ptr;
    struct cast_entry *table = cast_table;
    if (__builtin_expect(table != NULL, 1)) {
        struct cast_entry *e = cast_slot(table, vptr, src_type, dst_type);
        if (__builtin_expect(e->vptr == vptr && e->src_type == src_type && e->dst_type == dst_type
                             && e->src2dst == src2dst, 1)) {
            cast_hits++;
            return e->delta == CAST_FAILS ? NULL : (char *)src_ptr + e->delta;
        }
    }
    return cast_miss(src_ptr, src_type, dst_type, src2dst, vptr);
}
