"""A lean AXI4-Lite master for cocotb, and the firmware register access built on it.

cocotbext-axi's ``AxiLiteMaster`` is general (queues, five channel coroutines, events) and
costs several Python wake-ups per clock. A co-simulation that moves whole result windows needs
fewer: this master drives all channels from the caller's coroutine, wakes twice per cycle only
while a transfer is in flight (a rising edge to drive, the read-only phase to sample), and
pipelines blocks so that a slave which accepts every cycle moves one word per cycle.
"""

from __future__ import annotations

from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from firmware.regs import BusError, RegisterAccess, check_word


class LeanAxiLiteMaster:
    """AXI4-Lite master on signals ``<prefix>awaddr`` ... ``<prefix>rready`` of ``dut``.

    Parameters
    ----------
    dut : cocotb handle
    clk : cocotb handle of the clock
    prefix : str
        Signal name prefix (``"bus__"`` for ``mram_cim``).
    timeout_cycles : int
        A handshake that takes longer raises :class:`TimeoutError` (the bus must never hang).
        The default covers the longest legitimate wait: a BATCH_OUT read held off for one
        compute, whose TDC timeout and precharge are at most 65,535 cycles each.
    """

    CHANNELS = ("awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
                "bresp", "bvalid", "bready", "araddr", "arprot", "arvalid", "arready", "rdata",
                "rresp", "rvalid", "rready")

    def __init__(self, dut, clk, prefix: str = "bus__", timeout_cycles: int = 1 << 17):
        for name in self.CHANNELS:
            setattr(self, name, getattr(dut, prefix + name))
        self.timeout_cycles = timeout_cycles
        #: Random stalls for stress tests: ``(numpy Generator, probability)``; each cycle a
        #: valid is held back, or a ready dropped, with that probability. ``None``: no stalls.
        self.stall = None
        self._edge = RisingEdge(clk)
        self._ro = ReadOnly()
        for name in ("awvalid", "wvalid", "arvalid", "awprot", "arprot", "awaddr", "araddr", "wdata"):
            getattr(self, name).value = 0
        self.wstrb.value = 0xF
        self.bready.value = 1
        self.rready.value = 1

    def _stalled(self) -> bool:
        return self.stall is not None and self.stall[0].random() < self.stall[1]

    async def write_block(self, addrs, values) -> list[int]:
        """Write ``values`` to ``addrs`` back to back; returns the BRESP of each write."""
        n = len(addrs)
        resps = []
        issued = 0
        await self._edge
        aw_done = w_done = False
        aw_on = w_on = False
        for _ in range(self.timeout_cycles * max(n, 1)):
            if len(resps) == n:
                break
            # Present the current transfer's address and data, each unless stalled this cycle.
            if issued < n:
                if not aw_done and not aw_on and not self._stalled():
                    self.awaddr.value = addrs[issued]
                    self.awvalid.value = 1
                    aw_on = True
                if not w_done and not w_on and not self._stalled():
                    self.wdata.value = values[issued]
                    self.wvalid.value = 1
                    w_on = True
            self.bready.value = 0 if self._stalled() else 1
            await self._ro
            # Sample what happens at the coming edge.
            aw_fire = aw_on and self.awready.value == 1
            w_fire = w_on and self.wready.value == 1
            b_fire = self.bvalid.value == 1 and self.bready.value == 1
            bresp = int(self.bresp.value) if b_fire else None
            await self._edge
            if b_fire:
                resps.append(bresp)
            if aw_fire:
                self.awvalid.value = 0
                aw_on, aw_done = False, True
            if w_fire:
                self.wvalid.value = 0
                w_on, w_done = False, True
            if aw_done and w_done:
                issued += 1
                aw_done = w_done = False
        else:
            raise TimeoutError(f"AXI write burst of {n} did not complete")
        return resps

    async def read_block(self, addrs) -> list[tuple[int, int]]:
        """Read ``addrs`` back to back; returns (RDATA, RRESP) of each read."""
        n = len(addrs)
        out = []
        issued = 0
        await self._edge
        ar_on = False
        for _ in range(self.timeout_cycles * max(n, 1)):
            if len(out) == n:
                break
            if issued < n and not ar_on and not self._stalled():
                self.araddr.value = addrs[issued]
                self.arvalid.value = 1
                ar_on = True
            self.rready.value = 0 if self._stalled() else 1
            await self._ro
            ar_fire = ar_on and self.arready.value == 1
            r_fire = self.rvalid.value == 1 and self.rready.value == 1
            data = (int(self.rdata.value), int(self.rresp.value)) if r_fire else None
            await self._edge
            if r_fire:
                out.append(data)
            if ar_fire:
                issued += 1
                # Keep ARVALID high for the next address when there is one (back-to-back).
                if issued < n and not self._stalled():
                    self.araddr.value = addrs[issued]
                else:
                    self.arvalid.value = 0
                    ar_on = False
        else:
            raise TimeoutError(f"AXI read burst of {n} did not complete")
        return out


class LeanRegisterAccess(RegisterAccess):
    """:class:`RegisterAccess` over :class:`LeanAxiLiteMaster`, with an interrupt wait.

    Parameters
    ----------
    master : LeanAxiLiteMaster
    irq : cocotb handle of the interrupt pin, optional
        Enables :meth:`wait_irq`, which the driver uses instead of polling FLAGS.
    clock_period_ps : int
        For the interrupt-wait timeout.
    """

    def __init__(self, master: LeanAxiLiteMaster, irq=None, clock_period_ps: int = 1000):
        self.master = master
        self.irq = irq
        self._irq_rise = RisingEdge(irq) if irq is not None else None
        self.clock_period_ps = clock_period_ps
        self.transactions = 0

    async def read(self, addr: int) -> int:
        """Read one word; raises :class:`BusError` on an error response."""
        return (await self.read_block(addr, 1))[0]

    async def write(self, addr: int, value: int) -> None:
        """Write one word; raises :class:`BusError` on an error response."""
        await self.write_block(addr, [value])

    async def _reads(self, addrs: list[int]) -> list[int]:
        res = await self.master.read_block(addrs)
        self.transactions += len(addrs)
        for a, (_, resp) in zip(addrs, res):
            if resp:
                raise BusError(a, resp, write=False)
        return [d for d, _ in res]

    async def _writes(self, addrs: list[int], values) -> None:
        values = [check_word(v) for v in values]
        resps = await self.master.write_block(addrs, values)
        self.transactions += len(values)
        for a, resp in zip(addrs, resps):
            if resp:
                raise BusError(a, resp, write=True)

    async def read_block(self, addr: int, n: int) -> list[int]:
        """Read ``n`` consecutive words in one pipelined burst of single reads."""
        return await self._reads([addr + 4 * i for i in range(n)])

    async def write_block(self, addr: int, values) -> None:
        """Write consecutive words in one pipelined burst of single writes."""
        values = list(values)
        await self._writes([addr + 4 * i for i in range(len(values))], values)

    async def read_fifo(self, addr: int, n: int) -> list[int]:
        """Read the queue register at ``addr`` ``n`` times in one pipelined burst."""
        return await self._reads([addr] * n)

    async def write_fifo(self, addr: int, values) -> None:
        """Write every value to the queue register at ``addr`` in one pipelined burst."""
        values = list(values)
        await self._writes([addr] * len(values), values)

    async def wait_irq(self, max_cycles: int) -> bool:
        """Wait until the interrupt pin is high (at most ``max_cycles``); True if it is."""
        return await wait_pin_high(self.irq, self._irq_rise, self.clock_period_ps, max_cycles)


async def wait_pin_high(pin, rise, clock_period_ps: int, max_cycles: int) -> bool:
    """Wait until ``pin`` is 1 (``rise``: its RisingEdge trigger), at most ``max_cycles``.

    Sleeps on the pin in short timer slices: a timer that loses the race stays queued in the
    simulator until it expires, so one long timer per wait would pile up over a run.
    """
    slice_cycles = 4096
    waited = 0
    while pin.value != 1:
        if waited >= max_cycles:
            return False
        timer = Timer(slice_cycles * clock_period_ps, unit="ps")
        if await First(rise, timer) is timer:
            waited += slice_cycles
    return True
