"""Top level of the controller: ``mram_cim``."""

from amaranth import Module, Signal, Cat, Const, Mux
from amaranth.hdl import ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from macro_spec.params import BUS_DATA_BITS, PACKED_CODE_BITS, MacroParams
from macro_spec.regmap import (ADDR_BITS, OP_COMPUTE, OP_COMPUTE_BATCH, OP_READ_ROW, OP_WRITE_ROW, reg)

from .array_port import ArraySignature
from .axi_lite import AxiLiteSignature, AxiLiteSlave
from .batch import BatchQueue
from .compute_sequencer import ComputeSequencer
from .regfile import RegFile
from .write_sequencer import WriteSequencer


def _field(reg_name: str, field_name: str, value):
    f = reg(reg_name).field(field_name)
    return value[f.lsb:f.lsb + f.width]


class MramCim(wiring.Component):
    """The macro's digital controller: AXI4-Lite registers, sequencers and TDC.

    Clocked by ``clk`` with the synchronous active-high ``rst`` (Amaranth's ``sync``
    domain). Writing SOFT_RESET resets both sequencers in one cycle; configuration, flags and
    counters survive it.

    Parameters
    ----------
    params : MacroParams, optional
        Geometry and counter width (default 64 x 64, 8-bit TDC, 2-stage synchroniser).

    Attributes
    ----------
    bus : In(AxiLiteSignature)
        Host register interface, 32-bit data, 12-bit byte address.
    array : Out(ArraySignature)
        Digital pins of the MRAM array.
    irq : Out(1)
        Interrupt: OR of FLAGS & IRQ_EN.
    """

    def __init__(self, params: MacroParams | None = None):
        if params is None:
            params = MacroParams()
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        self.params = params
        super().__init__({
            "bus": In(AxiLiteSignature(ADDR_BITS)),
            "array": Out(ArraySignature(params)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params

        m.submodules.axi = axi = AxiLiteSlave(ADDR_BITS)
        m.submodules.regfile = rf = RegFile(p, indexed=("CODE",))
        wiring.connect(m, wiring.flipped(self.bus), axi.bus)
        wiring.connect(m, axi.regs, rf.regs)

        # Registered: the reset fans out to every sequencer flip-flop, so it starts from a
        # register rather than from the bus handshake (docs/timing.md).
        soft_reset = Signal()
        m.d.sync += soft_reset.eq(rf.wo_soft_reset & rf.wdata[0])
        comp = ComputeSequencer(p)
        seq = WriteSequencer(p)
        m.submodules.compute = ResetInserter(soft_reset)(comp)
        m.submodules.access = ResetInserter(soft_reset)(seq)
        if p.batch_depth:
            batch = BatchQueue(p)
            m.submodules.batch = ResetInserter(soft_reset)(batch)
            batch_active, batch_x, batch_can_start = batch.active, batch.x, batch.can_start
        else:  # no queue: the batch registers answer as an empty, full queue
            batch = None
            batch_active, batch_x, batch_can_start = Const(0), Const(0, p.rows), Const(0)

        # Configuration from the register file.
        m.d.comb += [
            comp.x_in.eq(Mux(batch_active, batch_x, Cat(*rf.rw_x)[:p.rows])),
            comp.window.eq(rf.rw_tdc_window[:16]),
            comp.timeout.eq(rf.rw_tdc_timeout[:16]),
            comp.step.eq(rf.rw_tdc_step[:8]),
            comp.code_max.eq(rf.rw_tdc_code_max[:16]),
            comp.precharge_cycles.eq(rf.rw_precharge[:16]),
            seq.wdata.eq(Cat(*rf.rw_wdata)[:p.cols]),
            seq.verify.eq(_field("CTRL", "VERIFY_EN", rf.rw_ctrl)),
            seq.pulse_cycles.eq(rf.rw_write_pulse[:16]),
            seq.read_cycles.eq(rf.rw_read_pulse[:16]),
            seq.max_retries.eq(rf.rw_write_retries[:4]),
        ]
        # COL_OFFSET and COL_THRESH live in block RAM, read post_lanes columns per cycle.
        m.d.comb += [rf.ram_addr_col_offset.eq(comp.coef_group), rf.ram_addr_col_thresh.eq(comp.coef_group),
                     comp.offsets.eq(rf.ram_data_col_offset), comp.thresholds.eq(rf.ram_data_col_thresh)]

        # Array pins.
        arr = self.array
        m.d.comb += [
            arr.x.eq(comp.x), arr.evaluate.eq(comp.evaluate), comp.cmp.eq(arr.cmp),
            arr.row.eq(seq.row), arr.side.eq(seq.side), arr.wr_en.eq(seq.wr_en),
            arr.wr_cols.eq(seq.wr_cols), arr.wr_data.eq(seq.wr_data), arr.rd_en.eq(seq.rd_en),
            seq.rd_data.eq(arr.rd_data),
        ]

        # Command decode: refuse while busy, reject unknown ops and rows out of range.
        busy = Signal()
        m.d.comb += busy.eq(comp.busy | seq.busy | batch_active)
        # The command is registered before it is decoded, like the soft reset: a start fans out
        # to many sequencer flip-flops, which should not hang off the bus handshake.
        cmd_stb, cmd_word = Signal(), Signal(BUS_DATA_BITS)
        m.d.sync += cmd_stb.eq(rf.wo_cmd)
        with m.If(rf.wo_cmd):
            m.d.sync += cmd_word.eq(rf.wdata)
        op = _field("CMD", "OP", cmd_word)
        row = _field("CMD", "ROW", cmd_word)
        refused, bad_cmd, cmd_compute = Signal(), Signal(), Signal()
        last_op = Signal(3)
        m.d.comb += [seq.cmd_row.eq(row), seq.cmd_side.eq(_field("CMD", "SIDE", cmd_word))]
        with m.If(cmd_stb):
            with m.If(busy | soft_reset):
                m.d.comb += refused.eq(1)
            with m.Elif(op == OP_COMPUTE):
                m.d.comb += cmd_compute.eq(1)
                m.d.sync += last_op.eq(op)
            with m.Elif((op == OP_COMPUTE_BATCH) & batch_can_start):
                if batch is not None:
                    m.d.comb += batch.start.eq(1)
                m.d.sync += last_op.eq(op)
            with m.Elif(((op == OP_WRITE_ROW) | (op == OP_READ_ROW)) & (row < p.rows)):
                m.d.comb += [seq.start_write.eq(op == OP_WRITE_ROW),
                             seq.start_read.eq(op == OP_READ_ROW)]
                m.d.sync += last_op.eq(op)
            with m.Else():
                m.d.comb += bad_cmd.eq(1)

        # Batch queue accesses: pushes are refused while busy (the input queue belongs to the
        # running batch); results stream out while their batch runs, but not during another
        # command.
        queue_refused, queue_error = Signal(), Signal()
        push_ok, pop_ok, other_busy = Signal(), Signal(), Signal()
        m.d.comb += [
            other_busy.eq(busy & ~batch_active),
            queue_refused.eq((rf.wo_batch_in & (busy | soft_reset)) | (rf.pop_batch_out & (other_busy | soft_reset))),
            push_ok.eq(rf.wo_batch_in & ~busy & ~soft_reset),
            pop_ok.eq(rf.pop_batch_out & ~other_busy & ~soft_reset),
        ]
        if batch is not None:
            m.d.comb += [
                batch.push.eq(push_ok),
                batch.push_data.eq(rf.wdata),
                batch.pop.eq(pop_ok),
                batch.comp_done.eq(comp.done),
                comp.start.eq(cmd_compute | batch.comp_start),
                queue_error.eq(batch.overflow | batch.underflow),
            ]
        else:
            m.d.comb += [comp.start.eq(cmd_compute),
                         queue_error.eq(push_ok | pop_ok)]

        # Sticky flags: an event in the same cycle as its clear wins, so none is lost.
        flags = Signal(7)
        events = Signal(7)
        batch_done = batch.done if batch is not None else 0
        m.d.comb += events.eq(Cat(
            (comp.done & ~batch_active) | seq.done | batch_done,   # DONE: once per command
            refused | queue_refused,              # REFUSED
            bad_cmd,                              # BAD_CMD
            seq.write_done & seq.failed,          # WRITE_FAIL
            comp.done & comp.any_timeout,         # TIMEOUT (any compute of a batch)
            soft_reset & busy,                    # ABORTED
            queue_error,                          # QUEUE
        ))
        m.d.sync += flags.eq((flags & ~rf.w1c_flags[:7]) | events)
        m.d.comb += self.irq.eq((flags & rf.rw_irq_en[:7]).any())

        op_count = Signal(32)
        retry_total = Signal(32)
        with m.If(comp.done):
            m.d.sync += op_count.eq(op_count + 1)
        with m.If(seq.retry):
            m.d.sync += retry_total.eq(retry_total + 1)

        # Read-only views.
        state = Mux(comp.busy, comp.state, seq.state)
        m.d.comb += [
            rf.ro_status.eq(Cat(busy, Const(0, 3), state, last_op)),
            rf.ro_flags.eq(flags),
            rf.ro_op_count.eq(op_count),
            rf.ro_retry_total.eq(retry_total),
            rf.ro_write_status.eq(Cat(seq.rounds, Const(0, 4), seq.row, Const(0, 8 - len(seq.row)),
                                      seq.fail_mask.any())),
        ]

        def words(bits, port):
            for w, word in enumerate(port):
                m.d.comb += word.eq(bits[w * BUS_DATA_BITS:(w + 1) * BUS_DATA_BITS])

        words(seq.rdata, rf.ro_rdata)
        words(seq.fail_mask, rf.ro_fail_mask)
        words(comp.act, rf.ro_act)
        words(comp.tmo, rf.ro_tmo)
        # CODE is read through the compute sequencer's lane multiplexer (RegFile ``indexed``).
        m.d.comb += [comp.code_rd_word.eq(rf.index_code), comp.code_rd_stb.eq(rf.index_stb_code),
                     rf.ro_code.eq(comp.code_rd_data)]

        status = reg("BATCH_STATUS")
        if batch is not None:
            # Word by word (see Batch.result): each CODE word straight from its codes.
            pad, cpw, cw = p.code_field_bits - p.tdc_bits, p.codes_per_word, p.code_words
            for w in range(cw):
                m.d.comb += batch.result[w].eq(Cat(*(Cat(comp.codes[j], Const(0, pad))
                                                     for j in range(w * cpw, min((w + 1) * cpw, p.cols)))))
            words(comp.act, [batch.result[cw + k] for k in range(p.col_words)])
            words(comp.tmo, [batch.result[cw + p.col_words + k] for k in range(p.col_words)])
            # A read refused during another command returns 0, like an empty queue.
            m.d.comb += [rf.ro_batch_out.eq(Mux(other_busy | soft_reset, 0, batch.out_word)),
                         rf.wait_batch_out.eq(batch.wait)]
            # Packed results only while no code can exceed 15: min(TDC_CODE_MAX, counter max).
            small_codes = (rf.rw_tdc_code_max[PACKED_CODE_BITS:16] == 0) if p.tdc_bits > PACKED_CODE_BITS else 1
            m.d.comb += batch.pack.eq(_field("CTRL", "PACK_CODES", rf.rw_ctrl) & small_codes)
            fields = {"IN_LEVEL": batch.in_level, "IN_WORDS": batch.in_words,
                      "OUT_LEVEL": batch.out_level, "OUT_WORD": batch.out_word_index,
                      "PACKED": batch.packed}
            # Each field into its bits (they do not overlap): no adder chain over the word for an
            # event-driven simulator to re-evaluate whenever a level or the word index moves.
            for k, v in fields.items():
                f = status.field(k)
                if len(v) > f.width:
                    raise ValueError(f"BATCH_STATUS.{k} is {f.width} bits, its source {len(v)}")
                m.d.comb += rf.ro_batch_status[f.lsb:f.lsb + len(v)].eq(v)
        return m
