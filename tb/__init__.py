"""cocotb co-simulation of the whole macro: array-pin adapter, bus models, scoreboard, tests."""
