"""Register access through the in-simulator AXI4-Lite bus engine of the :mod:`tb.shim` wrapper.

A Python master (:mod:`tb.axil`) wakes twice per clock cycle while a transfer is in flight. The
bus engine runs a whole block of transfers inside the simulator: Python loads the job (and, for
writes, the data pages), toggles ``eng_go`` and wakes once, when ``eng_done`` toggles, to read
the status word and the read-data pages. A block longer than the engine's maximum is split into
several jobs. The wrapper's docstring (:mod:`tb.shim`) describes the ports and the limits.
"""

from __future__ import annotations

import operator
import struct

from cocotb.triggers import RisingEdge

from firmware.regs import BusError, RegisterAccess, check_word

from .axil import wait_pin_high

from .shim import (ENGINE_INSTANCE, ENGINE_MAX_WORDS, ENGINE_PAGE_WORDS, ENGINE_TIMEOUT_CYCLES, JOB_ADDR_BITS,
                   JOB_ADDR_LSB, JOB_COUNT_LSB, JOB_INCR_BIT, JOB_WRITE_BIT, STATUS_BAD_JOB_BIT,
                   STATUS_COUNT_LSB, STATUS_ERR_BIT, STATUS_ERR_INDEX_LSB, STATUS_ERR_RESP_LSB, STATUS_GO_BIT,
                   STATUS_INDEX_BITS, STATUS_TIMEOUT_BIT)

_INDEX_MASK = (1 << STATUS_INDEX_BITS) - 1
#: Level of ``eng_go`` last written. One simulator runs per process, so every
#: :class:`EngineRegisterAccess` of the process shares it; keeping it here saves reading the pin
#: before each job.
_go_level = 0
_PAGE_BYTES = 4 * ENGINE_PAGE_WORDS
_PAGE_FORMAT = f"<{ENGINE_PAGE_WORDS}I"


class EngineRegisterAccess(RegisterAccess):
    """:class:`~firmware.regs.RegisterAccess` over the bus engine, with an interrupt wait.

    Same semantics as :class:`tb.axil.LeanRegisterAccess`: every block runs to its end, then
    the first transfer answered with an error raises :class:`~firmware.regs.BusError` with its
    address; a handshake that never comes raises :class:`TimeoutError`; :attr:`transactions`
    counts the transfers.

    The engine drives the bus while a job runs. Between jobs it keeps the bus (``eng_sel`` 1,
    set when the object is created) so that it drains any late response; :meth:`release` hands
    the bus to the wrapper's external pins between jobs, for another master on the same DUT.
    Several objects may share one engine, one block at a time.

    Parameters
    ----------
    dut : cocotb handle of the ``mram_cim_tb`` wrapper (a ``shim=True`` build).
    irq : cocotb handle of the interrupt pin, optional
        Enables :meth:`wait_irq`.
    clock_period_ps : int
        For the interrupt-wait timeout.
    max_words : int, optional
        Most transfers per engine job (default and upper bound: the engine's
        :data:`~tb.shim.ENGINE_MAX_WORDS`); longer blocks are split.
    """

    def __init__(self, dut, irq=None, clock_period_ps: int = 1000, max_words: int | None = None):
        try:
            engine = getattr(dut, ENGINE_INSTANCE)
            self._sel, self._go, self._job_word, self._status = dut.eng_sel, dut.eng_go, dut.eng_job, dut.eng_status
        except AttributeError:
            raise ValueError("the DUT has no bus engine: build it with tb.runner.run(..., shim=True)") from None
        self._resp = engine.resp
        if len(self._resp) != 2 * ENGINE_MAX_WORDS:
            raise ValueError(f"the DUT's bus engine holds {len(self._resp) // 2} words, tb.shim says "
                             f"{ENGINE_MAX_WORDS}: rebuild it")
        pages = range(ENGINE_MAX_WORDS // ENGINE_PAGE_WORDS)
        # Handles looked up once: each lookup is a VPI call.
        self._wr_pages = [engine.wr_page[k] for k in pages]
        self._rd_pages = [engine.rd_page[k] for k in pages]
        self._done = dut.eng_done.value_change
        self._addr_limit = 1 << min(len(dut.bus__awaddr), JOB_ADDR_BITS)
        if max_words is None:
            max_words = ENGINE_MAX_WORDS
        if not isinstance(max_words, int) or not 1 <= max_words <= ENGINE_MAX_WORDS:
            raise ValueError(f"max_words must be an integer from 1 to {ENGINE_MAX_WORDS}, not {max_words!r}")
        self.max_words = max_words
        global _go_level
        go = self._go.value
        if go.is_resolvable:
            _go_level = int(go)  # whoever drove it last
        self._sel.value = 1
        self.irq = irq
        self._irq_rise = RisingEdge(irq) if irq is not None else None
        self.clock_period_ps = clock_period_ps
        self.transactions = 0

    def release(self) -> None:
        """Hand the bus to the wrapper's external ``bus__*`` pins between jobs (a job still takes it)."""
        self._sel.value = 0

    # ---- engine jobs ----

    def _check_span(self, addr, n, increment_bytes: int) -> tuple[int, int]:
        """``(addr, n)`` as ints, after checking the block stays inside the bus address space."""
        if increment_bytes not in (0, 4):
            raise ValueError(f"address increment must be 4 or 0 bytes, not {increment_bytes!r}")
        try:
            addr, n = operator.index(addr), operator.index(n)
        except TypeError:
            raise ValueError(f"address and word count must be integers, not {addr!r} and {n!r}") from None
        if not (0 <= addr and n >= 0 and addr + increment_bytes * max(n - 1, 0) < self._addr_limit):
            raise ValueError(f"block of {n} words at {addr:#x} leaves the {self._addr_limit}-byte bus address space")
        return addr, n

    async def _job(self, write: bool, addr: int, n: int, increment_bytes: int, values=None) -> tuple[int, list]:
        """Run one job of ``n`` (1 .. max) transfers; returns the status word and the read data."""
        if write:
            for p in range(0, n, ENGINE_PAGE_WORDS):
                chunk = values[p:p + ENGINE_PAGE_WORDS]
                self._wr_pages[p // ENGINE_PAGE_WORDS].value = int.from_bytes(
                    struct.pack(f"<{len(chunk)}I", *chunk), "little")
        # A change of eng_go starts the job (an undriven pin starts nothing: the engine's initial
        # level is 0, like _go_level's).
        global _go_level
        _go_level ^= 1
        level = _go_level
        self._job_word.value = ((addr << JOB_ADDR_LSB) | (int(write) << JOB_WRITE_BIT)
                                | (int(increment_bytes == 4) << JOB_INCR_BIT) | (n << JOB_COUNT_LSB))
        self._go.value = level
        while True:
            await self._done
            status = int(self._status.value)
            # A done toggle of an older job (left running by a test that failed) is not ours.
            if (status >> STATUS_GO_BIT) & 1 == level:
                break
        if status >> STATUS_BAD_JOB_BIT & 1:
            raise ValueError(f"the bus engine refused a job of {n} words (more than {ENGINE_MAX_WORDS})")
        moved = (status >> STATUS_COUNT_LSB) & _INDEX_MASK
        if status >> STATUS_TIMEOUT_BIT & 1:
            kind = "write" if write else "read"
            raise TimeoutError(f"AXI {kind} block at {addr:#05x}: no handshake for {ENGINE_TIMEOUT_CYCLES} cycles "
                               f"after {moved} of {n} transfers")
        if moved != n:
            raise RuntimeError(f"bus engine reports {moved} of {n} transfers done")
        data = []
        if not write:
            for p in range(0, n, ENGINE_PAGE_WORDS):
                page = int(self._rd_pages[p // ENGINE_PAGE_WORDS].value)
                data.extend(struct.unpack(_PAGE_FORMAT, page.to_bytes(_PAGE_BYTES, "little"))[:n - p])
        return status, data

    async def _block(self, write: bool, addr, n, increment_bytes: int, values=None, responses: bool = False):
        """All jobs of a block.

        Returns the read data, ``(index, resp)`` of the first error response (or None) and,
        with ``responses``, every transfer's response.
        """
        addr, n = self._check_span(addr, n, increment_bytes)
        data: list[int] = []
        resps: list[int] = []
        first_error = None
        for start in range(0, n, self.max_words):
            count = min(self.max_words, n - start)
            status, words = await self._job(write, addr + increment_bytes * start, count, increment_bytes,
                                            values[start:start + count] if write else None)
            self.transactions += count
            data.extend(words)
            failed = status >> STATUS_ERR_BIT & 1
            if failed and first_error is None:
                first_error = (start + ((status >> STATUS_ERR_INDEX_LSB) & _INDEX_MASK),
                               (status >> STATUS_ERR_RESP_LSB) & 3)
            if responses:
                # The response vector is read only when some response was not OKAY.
                bits = int(self._resp.value) if failed else 0
                resps.extend((bits >> (2 * i)) & 3 for i in range(count))
        return data, first_error, resps

    async def _reads(self, addr, n, increment_bytes: int) -> list[int]:
        data, error, _ = await self._block(False, addr, n, increment_bytes)
        if error:
            raise BusError(addr + increment_bytes * error[0], error[1], write=False)
        return data

    async def _writes(self, addr, values, increment_bytes: int) -> None:
        values = [check_word(v) for v in values]
        _, error, _ = await self._block(True, addr, len(values), increment_bytes, values)
        if error:
            raise BusError(addr + increment_bytes * error[0], error[1], write=True)

    async def transfer_reads(self, addr: int, n: int, increment_bytes: int = 4) -> list[tuple[int, int]]:
        """(RDATA, RRESP) of ``n`` reads from ``addr`` on; error responses are returned, not raised."""
        data, _, resps = await self._block(False, addr, n, increment_bytes, responses=True)
        return list(zip(data, resps))

    async def transfer_writes(self, addr: int, values, increment_bytes: int = 4) -> list[int]:
        """BRESP of each write of ``values`` from ``addr`` on; error responses are returned, not raised."""
        values = [check_word(v) for v in values]
        _, _, resps = await self._block(True, addr, len(values), increment_bytes, values, responses=True)
        return resps

    # ---- RegisterAccess ----

    async def read(self, addr: int) -> int:
        """Read one word; raises :class:`BusError` on an error response."""
        return (await self._reads(addr, 1, 4))[0]

    async def write(self, addr: int, value: int) -> None:
        """Write one word; raises :class:`BusError` on an error response."""
        await self._writes(addr, [value], 4)

    async def read_block(self, addr: int, n: int) -> list[int]:
        """Read ``n`` consecutive words (one engine job per :attr:`max_words`)."""
        return await self._reads(addr, n, 4)

    async def write_block(self, addr: int, values) -> None:
        """Write consecutive words (one engine job per :attr:`max_words`)."""
        await self._writes(addr, values, 4)

    async def read_fifo(self, addr: int, n: int) -> list[int]:
        """Read the queue register at ``addr`` ``n`` times."""
        return await self._reads(addr, n, 0)

    async def write_fifo(self, addr: int, values) -> None:
        """Write every value to the queue register at ``addr``, in order."""
        await self._writes(addr, values, 0)

    async def wait_irq(self, max_cycles: int) -> bool:
        """Wait until the interrupt pin is high (at most ``max_cycles``); True if it is."""
        if self.irq is None:
            raise ValueError("wait_irq needs the interrupt pin: pass irq= when creating EngineRegisterAccess")
        return await wait_pin_high(self.irq, self._irq_rise, self.clock_period_ps, max_cycles)
