"""The testbench object: clock, reset, bus master, array adapter and scoreboard in one place."""

from __future__ import annotations

import json
import os

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from analog_models.array import COLUMN_FAULTS, FaultMap, MramArray
from analog_models.config import MacroConfig, preset
from macro_spec.params import MacroParams

from .array_adapter import ArrayAdapter
from .axil import LeanAxiLiteMaster, LeanRegisterAccess
from .runner import CONFIG_ENV
from .scoreboard import ComputeScoreboard

#: Bus masters :class:`MacroTB` can use (``engine`` only on a ``shim=True`` build).
BUSES = ("lean", "cocotbext-axi", "engine")


def load_config() -> dict:
    """The test configuration the runner passed in :data:`tb.runner.CONFIG_ENV`."""
    text = os.environ.get(CONFIG_ENV)
    return json.loads(text) if text else {}


def fault_map_from_json(spec: dict, params: MacroParams) -> FaultMap:
    """Fault map from ``{"devices": [[row, col, side, kind], ...], "columns": [[col, kind], ...]}``."""
    fm = FaultMap.empty(params.rows, params.cols)
    for row, col, side, kind in spec.get("devices", []):
        fm.add_device(int(row), int(col), side, kind)
    for col, kind in spec.get("columns", []):
        fm.add_column(int(col), kind)
    return fm


class MacroTB:
    """Owns everything around the DUT ``mram_cim``.

    Parameters
    ----------
    dut : cocotb handle of the top level.
    params : MacroParams
    config : MacroConfig
        Analog model and timing (clock period, latencies).
    seed, instance : int
        Random keys of the analog model.
    array : MramArray, optional
        An existing array model (its state is kept: non-volatile memory).
    fault_map : FaultMap, optional
        Explicit faults of a new array model (else the config's fault rates apply).

    Attributes
    ----------
    bus : str
        ``lean`` (:mod:`tb.axil`, the default), ``cocotbext-axi``, or ``engine`` (the
        in-simulator burst master of :mod:`tb.bus_engine`; needs ``shim``).
    shim : bool
        The DUT is the comparator-edge shim of :mod:`tb.shim` (built with ``shim=True``).
    regs : firmware.regs.RegisterAccess
        Register access through the AXI4-Lite master: the same interface the firmware uses.
    array : MramArray
    adapter : ArrayAdapter
    scoreboard : ComputeScoreboard
    """

    def __init__(self, dut, params: MacroParams, config: MacroConfig, seed: int = 0, instance: int = 0,
                 array: MramArray | None = None, fault_map: FaultMap | None = None, bus: str = "lean",
                 shim: bool = False):
        if bus not in BUSES:
            raise ValueError(f"unknown bus master {bus!r}; choose one of {', '.join(map(repr, BUSES))}")
        if bus == "engine" and not shim:
            raise ValueError("bus 'engine' needs the shim build: the bus engine lives in the tb.shim wrapper "
                             "(run with shim=True)")
        self.dut = dut
        # Defined levels on every host-driven bus input before any clock edge: a master that
        # only drives its signals once out of reset would otherwise let X into the slave.
        dut.rst.value = 1
        for name in ("awvalid", "wvalid", "arvalid", "bready", "rready", "awaddr", "araddr", "wdata",
                     "wstrb", "awprot", "arprot"):
            getattr(dut, "bus__" + name).value = 0
        self.params = params
        self.config = config
        self.seed = seed
        self.period_ps = int(config.clock_period_ps)
        self.shim = shim
        self.array = array if array is not None else MramArray(config, params.rows, params.cols, seed=seed,
                                                               instance=instance, fault_map=fault_map)
        # A comparator stuck high is high at all times, precharge included (docs/timing.md).
        stuck_high = self.array.faults.column == COLUMN_FAULTS.index("comparator_stuck_high")
        self.adapter = ArrayAdapter(dut, self.array, config.read_latency_ps, stuck_high, shim=shim)
        if shim and bus != "engine":
            # An earlier test in the same simulation may have left the engine selected.
            dut.eng_sel.value = 0
        if bus == "lean":
            # Our own master: few Python wake-ups per transfer, pipelined blocks, IRQ waits.
            self.regs = LeanRegisterAccess(LeanAxiLiteMaster(dut, dut.clk), dut.irq, self.period_ps)
        elif bus == "engine":
            # The in-simulator burst master: one Python wake-up per block of transfers.
            from .bus_engine import EngineRegisterAccess

            self.regs = EngineRegisterAccess(dut, dut.irq, self.period_ps)
        elif bus == "cocotbext-axi":
            # An independent, general master: cross-checks the slave against a second implementation.
            from cocotbext.axi import AxiLiteBus, AxiLiteMaster

            from firmware.cosim import AxiLiteRegisterAccess

            self.regs = AxiLiteRegisterAccess(AxiLiteMaster(AxiLiteBus.from_prefix(dut, "bus_"), dut.clk, dut.rst))
        self.scoreboard = ComputeScoreboard(params, config, self.adapter, seed)
        self._clock = None

    @classmethod
    def from_env(cls, dut, **overrides) -> "MacroTB":
        """Build from the runner's JSON configuration (params, preset or config, seed)."""
        cfg = load_config()
        params = MacroParams.from_dict(cfg.get("params", {}))
        if "config" in cfg:
            config = MacroConfig.from_dict(cfg["config"])
        else:
            config = preset(cfg.get("preset", "ideal"))
        kwargs = dict(seed=int(cfg.get("seed", 0)), bus=cfg.get("bus", "lean"), shim=bool(cfg.get("shim", False)))
        if cfg.get("faults"):
            kwargs["fault_map"] = fault_map_from_json(cfg["faults"], params)
        kwargs.update(overrides)
        return cls(dut, params, config, **kwargs)

    async def start(self):
        """Start the clock (generated inside the simulator where cocotb can) and the adapter, then reset."""
        if self.shim:
            # The shim wrapper generates the clock itself: no VPI round trip per edge.
            high = self.period_ps // 2
            self.dut.clk_low_ps.value = self.period_ps - high
            self.dut.clk_high_ps.value = high
            self.dut.clk_run.value = 1
        else:
            # The clock runs inside the simulator (GPI), not as a Python coroutine waking every edge.
            self._clock = Clock(self.dut.clk, self.period_ps, unit="ps", impl="gpi")
            # Start low: the first rising edge comes half a period in, after time-0 initialisation.
            self._clock.start(start_high=False)
        self.adapter.start()
        await self.reset()
        return self

    async def soft_reset(self):
        """Write SOFT_RESET and return once it has acted: the reset is registered once before it
        reaches the sequencers (docs/timing.md), so the pins are idle two edges later."""
        await self.regs.write_reg("SOFT_RESET", 1)
        await ClockCycles(self.dut.clk, 2)

    async def reset(self, cycles: int = 4):
        """Hard reset of the controller (the array keeps its state)."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def configure(self, settings: dict[str, int]):
        """Write timing registers (e.g. ``config.register_settings(params)``) and remember them."""
        for name, value in settings.items():
            await self.regs.write_reg(name, int(value))
        self.scoreboard.settings.update({k: int(v) for k, v in settings.items()})

    def program_ideal(self, weights):
        """Store a ±1 matrix in the model directly (no write pulses): fast set-up for compute tests."""
        self.array.program_ideal(np.asarray(weights))
