"""The plain C++ Verilator harness of make bench reads back exactly the reference's codes."""

from tb.raw_bench import raw_verilator_ops_per_s


def test_raw_harness_codes_match_the_reference():
    res = raw_verilator_ops_per_s(n_ops=300, seed=3)
    assert res["checked"] == 300 and res["ops_per_s"] > 0
