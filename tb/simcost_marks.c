/*
 * Callgrind marks of the timed phase, for `make simcost` (tb/simcost.py).
 *
 * The benchmark test (tb/test_bench.py) loads this library with ctypes when its configuration
 * names it and calls simcost_start() right before its timed operations and simcost_stop() right
 * after them. Under Callgrind the first zeroes every cost counted so far (start-up, imports,
 * building the array model, programming, warm-up) and the second writes the costs since then
 * into a dump of their own, so `make simcost` divides exactly the timed operations' instructions
 * by their number. Outside Valgrind both requests are a few no-op instructions.
 */
#include <valgrind/callgrind.h>

void simcost_start(void) { CALLGRIND_ZERO_STATS; }

void simcost_stop(void) { CALLGRIND_DUMP_STATS_AT("timed operations"); }
