"""Co-simulation backend of the driver: the RTL in a simulator behind a cocotb AXI4-Lite master."""

from __future__ import annotations

from .regs import BusError, RegisterAccess, check_word


class AxiLiteRegisterAccess(RegisterAccess):
    """:class:`RegisterAccess` over a cocotbext-axi ``AxiLiteMaster``.

    cocotbext-axi's master is used rather than cocotb-bus's ``AXI4LiteMaster`` because it
    drives all five channels independently and works with cocotb 2.1 on both Icarus 11 and
    Verilator 5.048.

    Parameters
    ----------
    master : cocotbext.axi.AxiLiteMaster
    """

    def __init__(self, master):
        self.master = master
        self.transactions = 0

    async def read(self, addr: int) -> int:
        """Read one word; raises :class:`BusError` on SLVERR/DECERR."""
        resp = await self.master.read(addr, 4)
        self.transactions += 1
        if int(resp.resp) != 0:
            raise BusError(addr, int(resp.resp), write=False)
        return int.from_bytes(resp.data, "little")

    async def write(self, addr: int, value: int) -> None:
        """Write one word; raises :class:`BusError` on SLVERR/DECERR."""
        resp = await self.master.write(addr, check_word(value).to_bytes(4, "little"))
        self.transactions += 1
        if int(resp.resp) != 0:
            raise BusError(addr, int(resp.resp), write=True)


#: cocotb module that runs firmware jobs inside the simulator.
ENTRY_MODULE = "firmware.cosim_entry"


def run_job(job: str, *, sim: str, params, preset: str, seed: int, arrays: dict, options: dict | None = None,
            waves: bool = False, faults: dict | None = None, results_tag: str = "") -> dict:
    """Run a firmware job against the co-simulated RTL and return its result arrays.

    The inputs travel to the simulator process as ``.npy`` files in a temporary folder and the
    result comes back as an ``.npz``; nothing is left behind.

    Parameters
    ----------
    job : str
        Name of a job in :mod:`firmware.cosim_entry` (``matvec``, ``sequence``).
    sim : str
        ``icarus`` or ``verilator``.
    params : MacroParams
    preset : str
    seed : int
    arrays : dict of str to numpy.ndarray
        Input arrays of the job.
    options : dict
        JSON-able job options.
    waves : bool
        Leave an FST in the build folder.
    faults : dict, optional
        Explicit array faults (see :func:`tb.env.fault_map_from_json`).
    results_tag : str
        Suffix of the JUnit results file in the build folder, so that jobs running at the same
        time on the same build (shards) keep apart.

    Raises
    ------
    RuntimeError
        If the simulation failed (the message names the results file).
    """
    import tempfile
    from pathlib import Path

    import numpy as np

    from tb.runner import check_simulator, run

    check_simulator(sim)
    with tempfile.TemporaryDirectory(prefix="mram_cim_cosim_") as tmp:
        tmp = Path(tmp)
        for name, value in arrays.items():
            np.save(tmp / f"{name}.npy", np.asarray(value))
        config = dict(preset=preset, seed=seed, job=job, folder=str(tmp), options=options or {})
        if not waves:
            # The shim build's in-simulator bus master: Python wakes once per block of transfers.
            config["bus"] = "engine"
        if faults:
            config["faults"] = faults
        # The comparator-edge shim is the fast path; waves come from the plain top level,
        # whose signal names the committed GTKWave save file uses.
        tests, failed, results = run(sim, params, ENTRY_MODULE, testcase="firmware_job", config=config,
                                     waves=waves, results_name=f"results_job_{job}{results_tag}", shim=not waves)
        out = tmp / "result.npz"
        if failed or not tests or not out.exists():
            err = tmp / "error.txt"
            why = err.read_text().strip() if err.exists() else f"see {results}"
            raise RuntimeError(f"co-simulation of '{job}' on {sim} failed: {why}")
        with np.load(out) as data:
            return {k: data[k] for k in data.files}


def run_matvec(weights, inputs, *, sim: str, preset: str, seed: int, params, arrays: int = 1,
               calibrate: bool = False) -> dict:
    """The CLI's ``--backend cosim``: :func:`firmware.jobs.matvec_job` on the co-simulated RTL.

    One simulated macro is available, so ``arrays`` must be 1 (layers larger than the array are
    tiled by reprogramming it).
    """
    from .driver import UsageError

    if arrays != 1:
        raise UsageError(f"the co-simulation has one array; --arrays {arrays} needs the model backend")
    return run_job("matvec", sim=sim, params=params, preset=preset, seed=seed,
                   arrays={"weights": weights, "inputs": inputs}, options={"calibrate": bool(calibrate)})
