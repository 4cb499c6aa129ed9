"""Firmware of the MRAM in-memory-computing macro: driver, fast model, tiling, command line.

- :mod:`firmware.regs` -- the register-access interface every backend implements;
- :mod:`firmware.model` -- :class:`~firmware.model.FastMacroModel`, the bit-exact fast model;
- :mod:`firmware.driver` -- :class:`~firmware.driver.MacroDriver` (async) and
  :class:`~firmware.driver.SyncMacroDriver`;
- :mod:`firmware.tiling` -- layers larger than one array;
- :mod:`firmware.cli` -- ``python -m firmware matvec``.

See docs/firmware.md.
"""
