"""Test-only Verilog wrapper around ``mram_cim``: a comparator-edge shim and an AXI4-Lite bus engine.

Comparator-edge shim
    Without it the array adapter wakes Python once per distinct fire time (up to one per column)
    in every evaluation. With it Python wakes once, on ``evaluate``, loads every column's fire
    time as an integer number of picoseconds and toggles ``shim_go``; each column's process then
    waits ``fire_ps + 0.5`` ps (the same half-picosecond rule as docs/timing.md) and raises its
    comparator. A precharge bumps a generation counter, so an edge still in flight from an
    evaluation that timed out or was aborted is ignored when it lands. Icarus runs this as it
    is; Verilator needs ``--timing``.

    The edges are scheduled through one of :data:`SHIM_SLOTS` independent slots (variable
    ``shim_delay<s>_ps`` and port ``shim_go<s>``), and the adapter never loads a slot whose edges
    are still in flight: a column's process that is waiting would miss the toggle. (An earlier
    shim scheduled the edges as non-blocking intra-assignment delays watched by 256 ``always
    @(token)`` blocks; Verilator then evaluated all 256 watched expressions at every time step,
    a third of its work per operation, and Verilator 5.048 mishandled a second such delay
    scheduled by the same statement while the first was pending.)

Bus engine (:func:`engine_verilog`, driven from Python by :mod:`tb.bus_engine`)
    An AXI4-Lite master inside the simulator. A Python master wakes twice per clock cycle while
    a transfer is in flight; with the engine Python loads a whole block of transfers (a job),
    toggles ``eng_go`` and wakes once, when ``eng_done`` toggles. The engine drives the
    ``mram_cim`` bus inputs while a job runs and whenever ``eng_sel`` is 1; otherwise (0, or
    never driven) the wrapper's ``bus__*`` input pins pass through as before, so the other
    masters work on the same build. The slave's ``bus__*`` outputs always reach the wrapper's
    pins.

    Ports of the wrapper:

    ``eng_sel`` (in)
        1: the engine keeps the bus between jobs too (and drains any late response).
    ``eng_job`` (in, 32 bits)
        The job: first byte address in bits ``[15:0]`` (:data:`JOB_ADDR_LSB`), write (1) or
        read (0) in bit :data:`JOB_WRITE_BIT`, address increment 4 (1) or 0 (0, a queue
        register) in bit :data:`JOB_INCR_BIT`, word count in bits ``[29:18]``
        (:data:`JOB_COUNT_LSB`, 1 to :data:`ENGINE_MAX_WORDS`; 0 moves nothing, more sets the
        bad-job flag and moves nothing).
    ``eng_go`` (in)
        A change starts the job in ``eng_job`` (if a job is running, when it ends). The first
        transfer is presented in the same cycle, straight from the inputs, so the slave can take
        it at the next clock edge.
    ``eng_done`` (out)
        Toggles at the clock edge that stores the last response. The status word and the data
        stored at that edge are updated before it (non-blocking updates apply in order), so
        Python, woken by the toggle, reads them settled.
    ``eng_stall`` (in)
        Tests only: 1 cuts each channel between the engine and the slave at random (half the
        cycles), so that AW and W are taken in different cycles and responses wait.
    ``eng_status`` (out, 32 bits)
        Snapshot of the last job: responses received (:data:`STATUS_COUNT_LSB`), index and code
        of the first error response, error, timeout and bad-job flags and the ``eng_go`` level
        that started it (bit positions: the ``STATUS_*`` constants).

    Data inside the engine instance ``engine``: ``wr_page[k]`` (written by Python) and
    ``rd_page[k]`` (written by the engine) hold words ``16 k .. 16 k + 15`` of the block, word
    ``i`` in bits ``32 (i % 16) + 31 .. 32 (i % 16)``; ``resp`` holds each transfer's 2-bit
    response, transfer ``i`` in bits ``2 i + 1 .. 2 i``. Pages of :data:`ENGINE_PAGE_WORDS`
    words are a measured compromise: every VPI access costs about 2-3 us of fixed overhead plus
    about 0.3 us per 32-bit word, so one wide vector makes short blocks pay for the longest and
    one word per access makes long blocks pay the overhead hundreds of times.

    Transfers run back to back: AWVALID and WVALID rise together, each drops when its own
    handshake happens (AW and W may be taken in different cycles), BREADY and RREADY are
    always high, and a new address follows every accepted one in the next cycle, so a slave
    that accepts every cycle moves one word per cycle. A job whose transfers make no progress
    (no handshake on any channel) for :data:`ENGINE_TIMEOUT_CYCLES` cycles ends with the timeout
    flag: the engine never hangs. The engine has no reset: it is test infrastructure, and the
    DUT's ``rst`` must not stop it (a job during reset times out instead).
"""

from __future__ import annotations

from macro_spec.params import MacroParams

#: Top module of shim builds.
SHIM_TOP = "mram_cim_tb"
#: Fire-time value meaning "never fires" in the delay vector.
SHIM_NEVER = 0xFFFFFFFF
#: Bits per column in the delay vector.
SHIM_DELAY_BITS = 32
#: :data:`SHIM_NEVER` as the wrapper's Verilog literal.
_NEVER_LITERAL = f"{SHIM_DELAY_BITS}'h{SHIM_NEVER:X}"
#: Independent edge-scheduling slots (see the module docstring).
SHIM_SLOTS = 4

#: Most words in one engine job (longer blocks are split by :mod:`tb.bus_engine`).
ENGINE_MAX_WORDS = 256
#: Words per data page (one VPI access moves one page).
ENGINE_PAGE_WORDS = 16
#: Cycles without any handshake after which a job ends with the timeout flag.
#: A BATCH_OUT read may be held off for one whole compute (TDC timeout and precharge are at most
#: 65,535 cycles each), so the bound lies above that.
ENGINE_TIMEOUT_CYCLES = 1 << 18
#: Instance name of the engine inside the wrapper.
ENGINE_INSTANCE = "engine"

#: ``eng_job`` layout.
JOB_ADDR_LSB, JOB_ADDR_BITS = 0, 16
JOB_WRITE_BIT = 16
JOB_INCR_BIT = 17
JOB_COUNT_LSB, JOB_COUNT_BITS = 18, 12

#: ``eng_status`` layout.
STATUS_COUNT_LSB = 0          # responses received (12 bits)
STATUS_ERR_INDEX_LSB = 12     # index of the first error response (12 bits)
STATUS_ERR_RESP_LSB = 24      # its response code (2 bits)
STATUS_ERR_BIT = 26           # some response was not OKAY
STATUS_TIMEOUT_BIT = 27       # the job ended because no handshake came for ENGINE_TIMEOUT_CYCLES
STATUS_GO_BIT = 28            # the eng_go level that started the job
STATUS_BAD_JOB_BIT = 30       # the job asked for more than ENGINE_MAX_WORDS words; nothing moved
#: Width of the count and index fields of the status word.
STATUS_INDEX_BITS = 12

#: Verilator metacomments on what Python touches. Shim builds pass ``--no-public-flat-rw``
#: (tb/runner.py): cocotb's default makes every signal of ``mram_cim`` public, which costs about
#: four times the simulation time per clock cycle; only these stay visible. Icarus ignores them.
PUBLIC_RW = " /*verilator public_flat_rw*/"
PUBLIC_RD = " /*verilator public_flat_rd*/"

#: The bus inputs of ``mram_cim`` (master to slave) the engine drives when selected.
_MASTER_OUTPUTS = ("awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready",
                   "araddr", "arprot", "arvalid", "rready")


def _log2_exact(n: int, what: str) -> int:
    if n < 1 or n & (n - 1):
        raise ValueError(f"{what} must be a power of two, not {n}")
    return n.bit_length() - 1


def engine_verilog(addr_bits: int, max_words: int = ENGINE_MAX_WORDS, page_words: int = ENGINE_PAGE_WORDS,
                   timeout_cycles: int = ENGINE_TIMEOUT_CYCLES) -> str:
    """Verilog-2005 text of the bus engine module ``mram_cim_bus_engine``.

    Parameters
    ----------
    addr_bits : int
        Byte address width of the AXI4-Lite bus (at most :data:`JOB_ADDR_BITS`).
    max_words : int
        Most transfers per job: a power of two, at least two pages, at most 2048.
    page_words : int
        Words per data page: a power of two.
    timeout_cycles : int
        Cycles without a handshake that end a job (2 to 65535).
    """
    if not 3 <= addr_bits <= JOB_ADDR_BITS:
        raise ValueError(f"bus address width must be 3 to {JOB_ADDR_BITS} bits, not {addr_bits}")
    pb = _log2_exact(page_words, "engine page size (words)")
    mb = _log2_exact(max_words, "engine maximum (words)")
    if not 2 * page_words <= max_words <= 2048:
        raise ValueError(f"engine maximum must be 2 pages to 2048 words, not {max_words}")
    if not 2 <= timeout_cycles <= 0xFFFFFF:
        raise ValueError(f"engine timeout must be 2 to {0xFFFFFF} cycles, not {timeout_cycles}")
    a, ib = addr_bits, STATUS_INDEX_BITS
    n_pages = max_words // page_words
    page_bits = 32 * page_words
    page_idx = f"[{mb - 1}:{pb}]"  # page of an index (bit mb and up only reach max_words itself)
    word_idx = f"[{pb - 1}:0]"
    # Byte offset of index i: {i, 2'b00} cut or zero-extended to the address width.
    if ib + 2 >= a:
        def offset(i):
            return f"{{{i}[{a - 3}:0], 2'b00}}"
    else:
        def offset(i):
            return f"{{{a - ib - 2}'d0, {i}, 2'b00}}"
    cl, cw = JOB_COUNT_LSB, JOB_COUNT_BITS
    job_addr = f"job[{JOB_ADDR_LSB + a - 1}:{JOB_ADDR_LSB}]"
    return "\n".join([
        "// Test-only AXI4-Lite burst master (generated by tb/shim.py; see its docstring).",
        "// It shares the wrapper's file on purpose (one generated test-only source).",
        "/* verilator lint_off DECLFILENAME */",
        "module mram_cim_bus_engine(clk, go, job, done, status, active,",
        "    awaddr, awvalid, awready, wdata, wvalid, wready, bresp, bvalid, bready,",
        "    araddr, arvalid, arready, rdata, rresp, rvalid, rready);",
        "  input clk;",
        "  input go;",
        "  /* verilator lint_off UNUSEDSIGNAL */  // spare job bits; pages and responses are read through VPI",
        "  input [31:0] job;",
        "  output done;",
        "  output [31:0] status;",
        "  output active;",
        f"  output [{a - 1}:0] awaddr;",
        "  output awvalid;",
        "  input awready;",
        "  output [31:0] wdata;",
        "  output wvalid;",
        "  input wready;",
        "  input [1:0] bresp;",
        "  input bvalid;",
        "  output bready;",
        f"  output [{a - 1}:0] araddr;",
        "  output arvalid;",
        "  input arready;",
        "  input [31:0] rdata;",
        "  input [1:0] rresp;",
        "  input rvalid;",
        "  output rready;",
        "",
        f"  reg [{page_bits - 1}:0] wr_page [0:{n_pages - 1}]{PUBLIC_RW};  // write data, loaded by Python",
        f"  reg [{page_bits - 1}:0] rd_page [0:{n_pages - 1}]{PUBLIC_RD};  // read data, stored by the engine",
        f"  reg [{2 * max_words - 1}:0] resp{PUBLIC_RD};  // every transfer's response",
        "  /* verilator lint_on UNUSEDSIGNAL */",
        "  reg [31:0] status;  // snapshot taken when a job ends",
        "  reg done, go_seen, busy, is_write, incr, err;",
        "  reg awvalid_r, wvalid_r, arvalid_r;",
        f"  reg [{a - 1}:0] awaddr_r, araddr_r, base;",
        "  reg [31:0] wdata_r;",
        "  // Progress of the running job. a_i .. err_resp and stall are all zero while idle, so a",
        "  // job starts from them as they are.",
        "  // a_i: addresses accepted, w_i: data accepted, r_i: responses received.",
        f"  reg [{ib - 1}:0] count, a_i, w_i, r_i, err_i;",
        "  reg [1:0] err_resp;",
        "  reg [23:0] stall;",
        "  integer k;",
        "  initial begin",
        "    status = 32'd0; done = 1'b0; go_seen = 1'b0; busy = 1'b0; is_write = 1'b0; incr = 1'b0; err = 1'b0;",
        "    awvalid_r = 1'b0; wvalid_r = 1'b0; arvalid_r = 1'b0; wdata_r = 32'd0;",
        f"    awaddr_r = {a}'d0; araddr_r = {a}'d0; base = {a}'d0;",
        f"    count = {ib}'d0; a_i = {ib}'d0; w_i = {ib}'d0; r_i = {ib}'d0; err_i = {ib}'d0;",
        "    err_resp = 2'd0; stall = 24'd0; resp = 0;",
        f"    for (k = 0; k < {n_pages}; k = k + 1) begin wr_page[k] = 0; rd_page[k] = 0; end",
        "  end",
        "",
        "  // Ready for every response, also when idle: a response that comes after a timeout",
        "  // is drained instead of blocking the slave.",
        "  assign bready = 1'b1;",
        "  assign rready = 1'b1;",
        "",
        "  // A change of go starts a job. The first transfer is presented straight from the job",
        "  // inputs in the same cycle (Python writes them in the read-write phase), so the slave",
        "  // takes it at the very next edge. An undriven go (x or z) starts nothing.",
        "  wire start = !busy && (go === !go_seen);",
        f"  wire [{cw - 1}:0] job_count = job[{cl + cw - 1}:{cl}];",
        f"  wire bad_job = job_count > {cw}'d{max_words};",
        f"  wire launch = start && job_count != {cw}'d0 && !bad_job;",
        "  assign active = busy || launch;  // transfers in flight this cycle",
        f"  wire e_write = busy ? is_write : job[{JOB_WRITE_BIT}];",
        f"  wire e_incr = busy ? incr : job[{JOB_INCR_BIT}];",
        f"  wire [{a - 1}:0] e_base = busy ? base : {job_addr};",
        f"  wire [{ib - 1}:0] e_count = busy ? count : job_count[{ib - 1}:0];",
        "  assign awvalid = busy ? awvalid_r : launch && e_write;",
        "  assign wvalid = busy ? wvalid_r : launch && e_write;",
        "  assign arvalid = busy ? arvalid_r : launch && !e_write;",
        "  // Address and data hold their last value unless a new one is due: every change reaches",
        "  // the slave's address decoder, and on Icarus each costs as much as a clock cycle.",
        f"  assign awaddr = (launch && e_write) ? {job_addr} : awaddr_r;",
        f"  assign araddr = (launch && !e_write) ? {job_addr} : araddr_r;",
        "  assign wdata = (launch && e_write) ? wr_page[0][31:0] : wdata_r;",
        "",
        "  wire a_fire = e_write ? (awvalid && awready) : (arvalid && arready);",
        "  wire w_fire = wvalid && wready;",
        "  // No response can belong to a job in its first cycle; one then is a stale one, dropped.",
        "  wire resp_fire = busy && (is_write ? bvalid : rvalid);",
        "  wire [1:0] resp_code = is_write ? bresp : rresp;",
        "  wire resp_bad = resp_fire && resp_code != 2'd0;",
        "  wire err_n = err || resp_bad;",
        f"  wire [{ib - 1}:0] err_i_n = (resp_bad && !err) ? r_i : err_i;",
        "  wire [1:0] err_resp_n = (resp_bad && !err) ? resp_code : err_resp;",
        f"  wire [{ib - 1}:0] a_next = a_i + {{{ib - 1}'d0, a_fire}};",
        f"  wire [{ib - 1}:0] w_next = w_i + {{{ib - 1}'d0, w_fire}};",
        f"  wire [{ib - 1}:0] r_next = r_i + {{{ib - 1}'d0, resp_fire}};",
        f"  wire [{a - 1}:0] a_next_addr = e_incr ? e_base + {offset('a_next')} : e_base;",
        f"  wire [31:0] w_next_data = wr_page[w_next{page_idx}][{{w_next{word_idx}, 5'd0}} +: 32];",
        "  wire finished = resp_fire && r_next == count;",
        "  wire progress = a_fire || w_fire || resp_fire;",
        f"  wire timed_out = busy && !progress && stall == 24'd{timeout_cycles - 1};",
        "  // Cycles in which nothing but the stall count can change: a job waiting for a handshake",
        "  // (a BATCH_OUT read held off while the batch computes), or no job and none starting.",
        "  // The block then reads two signals instead of some twenty (each read costs Icarus about",
        "  // as much as evaluating a gate).",
        "  wire stalled = busy && !progress && !timed_out;",
        "  wire quiet = !busy && !start;",
        "",
        "  always @(posedge clk) begin",
        "    if (stalled) begin",
        "      stall <= stall + 24'd1;",
        "    end else if (!quiet) begin",
        "      if (start) begin",
        "        go_seen <= go;",
        "        is_write <= e_write;",
        "        incr <= e_incr;",
        "        base <= e_base;",
        "        count <= e_count;",
        "      end",
        "      if (active) begin",
        "        // Keep each valid up with a stable payload until its handshake, then present the",
        "        // next transfer in the very next cycle.",
        "        busy <= 1'b1;",
        "        a_i <= a_next;",
        "        w_i <= w_next;",
        "        r_i <= r_next;",
        "        err <= err_n;",
        "        err_i <= err_i_n;",
        "        err_resp <= err_resp_n;",
        "        awvalid_r <= e_write && a_next < e_count;",
        "        wvalid_r <= e_write && w_next < e_count;",
        "        arvalid_r <= !e_write && a_next < e_count;",
        "        if (e_write) begin",
        "          awaddr_r <= (a_next < e_count) ? a_next_addr : awaddr;",
        "          wdata_r <= (w_next < e_count) ? w_next_data : wdata;",
        "        end else begin",
        "          araddr_r <= (a_next < e_count) ? a_next_addr : araddr;",
        "        end",
        "        stall <= progress ? 24'd0 : stall + 24'd1;",
        "        if (resp_fire) begin",
        f"          rd_page[r_i{page_idx}][{{r_i{word_idx}, 5'd0}} +: 32] <= rdata;",
        f"          resp[{{r_i[{mb - 1}:0], 1'b0}} +: 2] <= resp_code;",
        "        end",
        "      end",
        "      if (finished || timed_out) begin",
        "        // Snapshot, then back to the all-zero idle state.",
        "        status <= {1'b0, 1'b0, 1'b0, go_seen, timed_out, err_n, err_resp_n, err_i_n, r_next};",
        "        busy <= 1'b0;",
        f"        a_i <= {ib}'d0; w_i <= {ib}'d0; r_i <= {ib}'d0; err_i <= {ib}'d0;",
        "        err <= 1'b0; err_resp <= 2'd0; stall <= 24'd0;",
        "        awvalid_r <= 1'b0; wvalid_r <= 1'b0; arvalid_r <= 1'b0;",
        "      end else if (start && !launch) begin",
        "        // Nothing to move (no words, or more than the pages hold): end at once.",
        f"        status <= {{1'b0, bad_job, 1'b0, go, 4'd0, {ib}'d0, {ib}'d0}};",
        "      end",
        "      // Last, so that Python, woken by this change, finds the status and the data stored",
        "      // at this edge already in place (non-blocking updates are applied in order).",
        "      if (finished || timed_out || (start && !launch)) done <= !done;",
        "    end",
        "  end",
        "endmodule",
        "/* verilator lint_on DECLFILENAME */",
        "",
    ])


def shim_verilog(params: MacroParams, ports: list[tuple[str, str, int]], engine_max_words: int = ENGINE_MAX_WORDS,
                 engine_timeout_cycles: int = ENGINE_TIMEOUT_CYCLES) -> str:
    """Verilog text of the wrapper (and of the bus engine it instantiates).

    Parameters
    ----------
    params : MacroParams
    ports : list of (direction, name, width)
        The ports of ``mram_cim`` (from :func:`ports_of`); all but ``array__cmp`` are passed
        through under the same names (the bus inputs through the engine's select).
    engine_max_words, engine_timeout_cycles : int
        Limits of the bus engine (see :func:`engine_verilog`).
    """
    c = params.cols
    widths = {name: width for _, name, width in ports}
    missing = [s for s in _MASTER_OUTPUTS + ("awready", "wready", "bresp", "bvalid", "arready", "rdata",
                                             "rresp", "rvalid") if "bus__" + s not in widths]
    if missing:
        raise ValueError(f"mram_cim has no AXI4-Lite port(s) {', '.join('bus__' + s for s in missing)}")
    addr_bits = widths["bus__awaddr"]
    if widths["bus__wdata"] != 32 or widths["bus__rdata"] != 32:
        raise ValueError(f"the bus engine moves 32-bit words; mram_cim's bus is {widths['bus__wdata']} bits wide")
    # What the engine puts on each bus input of mram_cim while it is selected.
    engine_drives = {"awaddr": "e_awaddr", "awprot": f"{widths['bus__awprot']}'d0",
                     "awvalid": "e_awvalid && pass_aw", "wdata": "e_wdata",
                     "wstrb": f"{{{widths['bus__wstrb']}{{1'b1}}}}", "wvalid": "e_wvalid && pass_w",
                     "bready": "e_bready && pass_b", "araddr": "e_araddr",
                     "arprot": f"{widths['bus__arprot']}'d0", "arvalid": "e_arvalid && pass_ar",
                     "rready": "e_rready && pass_r"}
    decl, conns, muxes = [], [], []
    for direction, name, width in ports:
        if name == "array__cmp":
            conns.append("    .array__cmp(cmp)")
            continue
        if name == "clk":  # generated inside the wrapper (see CLOCK below)
            conns.append("    .clk(clk)")
            continue
        rng = f"[{width - 1}:0] " if width > 1 else ""
        decl.append(f"  {direction} {rng}{name}{PUBLIC_RW};")
        if name.startswith("bus__") and name[5:] in engine_drives:
            # Named wires, public: what the slave really sees (test monitors watch them).
            muxes.append(f"  wire {rng}m_{name}{PUBLIC_RD} = sel ? {engine_drives[name[5:]]} : {name};")
            conns.append(f"    .{name}(m_{name})")
        else:
            conns.append(f"    .{name}({name})")
    names = [n for _, n, _ in ports if n not in ("array__cmp", "clk")]
    slots = [(f"shim_delay{k}_ps", f"shim_go{k}") for k in range(SHIM_SLOTS)]
    extra = [g for _, g in slots] + ["shim_high", "eng_sel", "eng_go", "eng_job", "eng_done",
                                     "eng_status", "eng_stall", "clk_run", "clk_low_ps", "clk_high_ps"]
    return "\n".join([
        "// Test-only comparator-edge shim and AXI4-Lite bus engine around mram_cim (generated by tb/shim.py).",
        "`timescale 1ps/1fs",
        f"module {SHIM_TOP}({', '.join(names + extra)});",
        *decl,
        # The delays are variables that Python deposits, not ports: Verilator copies every input
        # port into the design at each evaluation, which for 4 x 2048 bits was a tenth of its work.
        *(f"  reg [{c * SHIM_DELAY_BITS - 1}:0] {d}{PUBLIC_RW};\n  initial {d} = {{{c}{{{_NEVER_LITERAL}}}}};\n"
          f"  input {g}{PUBLIC_RW};" for d, g in slots),
        f"  input [{c - 1}:0] shim_high{PUBLIC_RW};",
        f"  input eng_sel{PUBLIC_RW};",
        f"  input eng_go{PUBLIC_RW};",
        f"  input [31:0] eng_job{PUBLIC_RW};",
        f"  output eng_done{PUBLIC_RW};",
        f"  output [31:0] eng_status{PUBLIC_RW};",
        f"  input eng_stall{PUBLIC_RW};",
        f"  input clk_run{PUBLIC_RW};",
        f"  input [31:0] clk_low_ps{PUBLIC_RW};",
        f"  input [31:0] clk_high_ps{PUBLIC_RW};",
        f"  reg clk{PUBLIC_RW};",
        "  initial clk = 1'b0;",
        "  // The clock, generated here once clk_run is exactly 1 (low phase first): the simulator",
        "  // toggles it without a round trip through the VPI per edge. Left at x or z, clk is an",
        "  // ordinary variable that cocotb may drive instead.",
        "  always begin",
        "    wait (clk_run === 1'b1);",
        "    #(clk_low_ps) clk = 1'b1;",
        "    #(clk_high_ps) clk = 1'b0;",
        "  end",
        "  // The comparator outputs: the columns that fired (cmp_r) or with shim_high, kept as",
        "  // one variable that the processes update bit by bit. (A continuous OR of two 64-bit",
        "  // vectors costs Icarus a loop over every bit at every edge.)",
        f"  reg [{c - 1}:0] cmp_r, cmp;",
        "  integer gen;",
        "  initial begin cmp_r = 0; cmp = 0; gen = 0; end",
        "  always @(shim_high) cmp = cmp_r | shim_high;",
        "",
        "  // Bus engine: it drives the bus while a job runs, and whenever eng_sel is exactly 1 (a",
        "  // bench that never drives the pin, x or z, keeps the external pins in charge).",
        "  wire e_active;",
        "  // Stall injection for tests (eng_stall exactly 1): each cycle, each channel between the",
        "  // engine and the slave is cut, on both sides at once, with probability 1/2 (LFSR bits),",
        "  // so AW and W are taken in different cycles and responses wait.",
        "  wire stall_on = eng_stall === 1'b1;",
        "  reg [15:0] lfsr;",
        "  initial lfsr = 16'hACE1;",
        "  always @(posedge clk) if (stall_on) lfsr <= {lfsr[14:0], lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]};",
        "  wire pass_aw = !stall_on || lfsr[0];",
        "  wire pass_w = !stall_on || lfsr[3];",
        "  wire pass_b = !stall_on || lfsr[6];",
        "  wire pass_ar = !stall_on || lfsr[9];",
        "  wire pass_r = !stall_on || lfsr[12];",
        "  wire sel = eng_sel === 1'b1 || e_active;",
        f"  wire [{addr_bits - 1}:0] e_awaddr, e_araddr;",
        "  wire [31:0] e_wdata;",
        "  wire e_awvalid, e_wvalid, e_bready, e_arvalid, e_rready;",
        *muxes,
        f"  mram_cim_bus_engine {ENGINE_INSTANCE}(",
        "    .clk(clk), .go(eng_go), .job(eng_job), .done(eng_done), .status(eng_status), .active(e_active),",
        "    .awaddr(e_awaddr), .awvalid(e_awvalid), .awready(bus__awready && pass_aw),",
        "    .wdata(e_wdata), .wvalid(e_wvalid), .wready(bus__wready && pass_w),",
        "    .bresp(bus__bresp), .bvalid(bus__bvalid && pass_b), .bready(e_bready),",
        "    .araddr(e_araddr), .arvalid(e_arvalid), .arready(bus__arready && pass_ar),",
        "    .rdata(bus__rdata), .rresp(bus__rresp), .rvalid(bus__rvalid && pass_r), .rready(e_rready)",
        "  );",
        "",
        "  mram_cim dut(",
        ",\n".join(conns),
        "  );",
        "  // Precharge clears the comparators and retires every edge still in flight.",
        "  always @(negedge array__evaluate) begin gen = gen + 1; cmp_r = 0; cmp = shim_high; end",
        "  genvar j;",
        "  generate",
        f"    for (j = 0; j < {c}; j = j + 1) begin : col",
        *_slot_lines(slots),
        "    end",
        "  endgenerate",
        "endmodule",
        "",
        engine_verilog(addr_bits, engine_max_words, ENGINE_PAGE_WORDS, engine_timeout_cycles),
    ])


def _slot_lines(slots) -> list[str]:
    """Per column and slot: a process that the slot's go toggle starts, which notes the
    generation, waits the column's delay and raises the comparator if the generation
    (evaluation) is still the same. The wait is a plain delay inside the process: the
    simulator's timing wheel resumes it, and no signal change has to be watched for (Verilator
    evaluates every watched expression at every time step, and 256 of them cost a third of its
    work per operation). A process waiting misses a toggle of its slot, which the adapter never
    makes while the slot has edges in flight."""
    out = []
    for k, (delay, go) in enumerate(slots):
        field = f"{delay}[j*{SHIM_DELAY_BITS} +: {SHIM_DELAY_BITS}]"
        out += [f"      integer gen{k};",
                f"      initial gen{k} = -1;",
                f"      always @({go}) if ({field} != {_NEVER_LITERAL}) begin",
                f"        gen{k} = gen;",
                f"        #({field} + 0.5);",
                f"        if (gen{k} == gen && array__evaluate) begin cmp_r[j] = 1'b1; cmp[j] = 1'b1; end",
                "      end"]
    return out


def ports_of(verilog_text: str, module: str = "mram_cim") -> list[tuple[str, str, int]]:
    """(direction, name, width) of every port of ``module`` in generated Verilog."""
    import re

    start = verilog_text.index(f"module {module}(")
    end = verilog_text.index("endmodule", start)
    body = verilog_text[start:end]
    header = body[body.index("(") + 1:body.index(");")]
    order = [n.strip() for n in header.split(",")]
    found = {}
    for m in re.finditer(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        found[m.group(3)] = (m.group(1), int(m.group(2)) + 1 if m.group(2) else 1)
    return [(found[n][0], n, found[n][1]) for n in order]
