"""Analog model of the STT-MRAM in-memory-computing macro (everything below the digital pins).

Public API::

    from analog_models import preset, MacroConfig, MramArray, FaultMap, FIRE_ALREADY, FIRE_NEVER

See ``docs/analog_model.md`` for the equations, the defaults and their sources.
"""

from .array import COLUMN_FAULTS, DEVICE_FAULTS, FIRE_ALREADY, FIRE_NEVER, FaultMap, MramArray
from .config import PRESETS, MacroConfig, preset

__all__ = ["MacroConfig", "preset", "PRESETS", "MramArray", "FaultMap", "FIRE_ALREADY",
           "FIRE_NEVER", "DEVICE_FAULTS", "COLUMN_FAULTS"]
