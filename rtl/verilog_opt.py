"""Rewrite Yosys' ``write_verilog`` output so that an event-driven simulator runs it cheaply.

Yosys writes one ``always @(posedge clk) q <= $next;`` block per flip-flop and one
``always @* begin ... end`` block per next-state function (Amaranth's processes). Icarus Verilog
wakes every one of those threads on every clock edge, and re-runs a next-state block whenever
any signal it reads changes, whether or not the register will load it: a TDC code register
that captures ``code`` once per evaluation re-ran its block on every cycle that ``code``
counted. This pass rewrites each module, in the text, as follows; the design's behaviour, its
registers, their names and their initial values do not change (step 7 drops wires that
nothing reads).

1. **Fold** each next-state block into its register. A block ``always @* begin T = q; ... T = e;
   ... end`` whose targets are read nowhere but by ``always @(posedge clk) q <= T;`` becomes the
   same statements with ``q <= e`` in place of ``T = e`` (the hold default ``T = q`` is
   dropped): evaluated at the clock edge, they give the register the value that ``T`` had
   there. ``T`` and its block disappear; only internal ``$``-named wires are involved.
2. **Merge** the clocked blocks of a module that share an event list into one ``always`` block
   at the end of the module, in their original order (one thread instead of hundreds).
3. **Guard** every merged statement (statements with the same guard under one), and groups
   of them in a tree (:data:`FANIN` children per node): ``if (guard) begin ... end``, where
   ``guard`` is a continuous assignment that is 1 whenever the statement could change a
   register: an unconditional ``q <= e`` contributes ``q !== e`` (when both sides are plain
   signal expressions of one width); ``if (c) A else B``
   contributes ``|c & act(A)`` and ``(|c) !== 1 & act(B)``; a ``case`` item its match
   (``===``; 1 for wildcard labels, ``default`` and a selector with x/z bits) and its body; an
   assignment to a memory word, or anything not compared, 1; inside a condition only the
   comparisons with a constant are kept (the others would be re-evaluated on every change of a
   counter that the register captures once). When a guard is not 1, running its statements
   would change no register (``if`` and ``case`` take x as not matching and the guards never
   let x stand for a taken branch), so skipping them changes nothing. An idle module costs
   one test per clock edge. A guard never reads a signal of its block's event list (an
   asynchronous reset would wake the block before the guard follows it). Consecutive ``if (c)``
   statements of one guard with the same ``c`` become one (:func:`_merge_ifs`), and a group that
   is then one ``if (c)`` on the very signal its guard would test needs no guard wire.

4. **Hoist resets.** Amaranth ends each register's statements with ``if (rst) q <= init;``
   (and ``if (soft_reset) ...`` for a synchronous soft reset): every active statement loads
   those signals again, and each load costs Icarus about as much as evaluating a small gate.
   The one-bit signals that end, as such an ``if`` without ``else``, most of the clocked
   statements of a block (:func:`_reset_names`) are tested once per clock edge
   instead: ``if (r1 | r2 ...)`` runs the block's statements as they were, unguarded, and
   the ``else`` branch runs the guard tree over statements without any ``if`` on those
   signals. There every one of them is 0 or x, so such an ``if`` (without ``else``) would not
   run its body: dropping it changes nothing, whatever the body.

5. **Wide bitwise logic as processes.** ``assign w = a | b;`` (only ``~ & | ^``, parentheses
   and whole signals) on a wire of :data:`WIDE_BITWISE` bits or more becomes ``always @* w =
   a | b;`` with ``w`` declared ``reg``: the same combinational function (``always @*`` runs
   whenever an operand changes, and once at time 0 under ``-g2005`` as Yosys' own blocks do).
   Icarus evaluates a continuous gate bit by bit, four inputs per bit (``vvp_fun_or::run_run``),
   but the operator in a statement a machine word at a time: a 64-bit OR of the TDC's capture
   flags cost it about ten times as much as a gate.

6. **Part assignments merged.** Yosys writes a wire whose bits come from several places as one
   ``assign w[h:l] = e;`` (or ``assign { w[a], w[b:c] } = e;``) per place. Icarus builds such a
   wire from a strength-aware concatenation (``.concat8``) that converts every update to
   strength values and back; the TDC's write-back codes and BATCH_STATUS went through one at
   each change. When constant selects of one wire, from assignments that read nothing of the
   wire itself, cover each of its bits exactly once, they become ``assign w = { ... };``: a
   right-hand side whose own width is that of its part stays as it is; a sized constant or a
   concatenation over several parts is split at the parts' edges; anything else goes through a
   new wire of its assignment's width, so it is evaluated in the same width as before.

7. **Unread wires dropped.** A wire declared in a module, driven by one whole continuous
   assignment and named nowhere else goes, with its assignment (repeated until none is left).
   Yosys keeps such wires for Amaranth's names of signals that its flattening of ports
   disconnected: the batch queue's ``result__*`` words, built again from the codes they
   duplicate, and ``captured_codes__*``, copies of the TDC's ``code*`` registers. Icarus
   evaluated every one of them at each change of its inputs; the signals they copy are still
   in the design and in its waveforms.

The guards go through the macro :data:`GUARD_MACRO`, which the text defines as the constant 1
under Verilator and in synthesis (both evaluate or build every expression anyway) and as the
expression elsewhere (Icarus); steps 1 and 2 apply everywhere. The reset test of step 4 goes
through it too, so Verilator and synthesis always take the statements as they were.

Blocks the parser does not recognise are left where and as they are. The guards sample the same
values the registers sample; like any two processes of the same time step, their order only
matters to a testbench that changes a register's inputs in the same time step as the active
clock edge, which the project's testbenches never do (they drive after the edge).

Only the Verilog text that Yosys' ``write_verilog`` produces is handled (2-space item indent,
one item per line or ``begin``/``end`` block); :func:`optimise` is deterministic.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["optimise", "FANIN", "GUARD_MACRO"]

#: Children per node of the tree of guards in a merged clocked block.
FANIN = 4

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>/\*.*?\*/)
  | (?P<attr>\(\*.*?\*\))
  | (?P<esc>\\\S+\s?)
  | (?P<num>(?:\d+)?'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_?]+|\d+(?:\.\d+)?)
  | (?P<sys>\$[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<id>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<op>===|!==|<<<|>>>|<=|>=|==|!=|&&|\|\||<<|>>|~&|~\||~\^|\^~|\*\*|[-+*/%&|^~!<>?:(){}\[\],;=@#.'])
""", re.X | re.S)


class _Unsupported(Exception):
    """A construct the pass does not handle; the item is left as it is."""


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _Unsupported(text[pos:pos + 20])
        kind = m.lastgroup
        if kind == "esc":
            out.append(m.group().rstrip() + " ")   # escaped identifiers end at white space
        elif kind == "comment":
            out.append("/*c*/")
        elif kind != "ws":
            out.append(m.group())
        pos = m.end()
    return out


def _is_ident(tok: str) -> bool:
    return tok.endswith(" ") and tok.startswith("\\") or bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", tok))


def _join(toks: list[str]) -> str:
    """Tokens back to text (escaped identifiers keep the space that ends them)."""
    s, depth = "", 0
    for t in toks:
        tight = depth > 0 and (t == ":" or s.endswith(":"))
        if s and not tight and not s.endswith((" ", "(", "[", "{", "~", "!")) and t not in (")", "]", "}", ",", ";", "["):
            s += " "
        s += t
        depth += t == "["
        depth -= t == "]"
    return s if toks and toks[-1].endswith(" ") else s.rstrip()


# --- statements -------------------------------------------------------------------------------

@dataclass
class _Asg:
    lhs: list[str]
    op: str                 # "=" or "<="
    rhs: list[str]


@dataclass
class _If:
    cond: list[str]
    then: "_Stmt"
    other: "_Stmt | None"
    attrs: list[str] = field(default_factory=list)


@dataclass
class _Case:
    kind: str               # case, casez, casex
    sel: list[str]
    items: list[tuple[list[list[str]] | None, "_Stmt"]]    # (labels or None for default, body)
    attrs: list[str] = field(default_factory=list)


@dataclass
class _Block:
    body: list["_Stmt"]


_Stmt = _Asg | _If | _Case | _Block | None          # None: empty statement


#: Statement keywords the parser does not handle (it raises _Unsupported and leaves the block alone).
_KEYWORDS = frozenset("""always assign deassign disable else end endcase endfunction endtask for force forever
    fork function initial join release repeat task wait while integer real reg wire""".split())


class _Parser:
    def __init__(self, toks):
        self.t, self.i = toks, 0

    def peek(self, k=0):
        return self.t[self.i + k] if self.i + k < len(self.t) else None

    def take(self, want=None):
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise _Unsupported(f"expected {want!r}, got {tok!r}")
        self.i += 1
        return tok

    def until(self, stops):
        """Tokens up to (not including) the first of ``stops`` at bracket depth 0."""
        start, depth = self.i, 0
        while True:
            tok = self.peek()
            if tok is None:
                raise _Unsupported("unterminated expression")
            if depth == 0 and tok in stops:
                return self.t[start:self.i]
            if tok in ("(", "[", "{"):
                depth += 1
            elif tok in (")", "]", "}"):
                depth -= 1
                if depth < 0:
                    raise _Unsupported("unbalanced")
            self.i += 1

    def stmts(self, end=None):
        out = []
        while self.peek() is not None and self.peek() != end:
            out.append(self.stmt())
        return out

    def stmt(self) -> _Stmt:
        attrs = []
        while self.peek() is not None and self.peek().startswith("(*"):
            attrs.append(self.take())
        tok = self.peek()
        if tok == "/*c*/":
            self.take()
            if self.peek() == ";":
                self.take()
            return None
        if tok == ";":
            self.take()
            return None
        if tok == "begin":
            self.take()
            body = self.stmts("end")
            self.take("end")
            return _Block(body)
        if tok == "if":
            self.take()
            self.take("(")
            cond = self.until((")",))
            self.take(")")
            then = self.stmt()
            other = None
            if self.peek() == "else":
                self.take()
                other = self.stmt()
            return _If(cond, then, other, attrs)
        if tok in ("case", "casez", "casex"):
            self.take()
            self.take("(")
            sel = self.until((")",))
            self.take(")")
            items = []
            while self.peek() != "endcase":
                if self.peek() == "default":
                    self.take()
                    if self.peek() == ":":
                        self.take()
                    items.append((None, self.stmt()))
                    continue
                labels = []
                while True:
                    labels.append(self.until((",", ":")))
                    if self.take() == ":":
                        break
                items.append((labels, self.stmt()))
            self.take("endcase")
            return _Case(tok, sel, items, attrs)
        if attrs or tok in _KEYWORDS:
            raise _Unsupported(f"statement {tok!r}")
        lhs = self.until(("=", "<=", ";"))
        op = self.take()
        if op == ";" or not lhs or not _is_ident(lhs[0]):
            raise _Unsupported("not an assignment")
        rhs = self.until((";",))
        self.take(";")
        return _Asg(lhs, op, rhs)


def _parse(text: str) -> list[_Stmt]:
    p = _Parser(_tokens(text))
    out = p.stmts()
    if p.peek() is not None:
        raise _Unsupported("trailing tokens")
    return out


def _walk(stmts):
    for s in stmts:
        if isinstance(s, _Block):
            yield from _walk(s.body)
        elif isinstance(s, _If):
            yield s
            yield from _walk([s.then, s.other])
        elif isinstance(s, _Case):
            yield s
            yield from _walk([b for _, b in s.items])
        elif s is not None:
            yield s


def _emit(stmts, indent: int) -> list[str]:
    pad = " " * indent
    out = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, _Asg):
            out.append(f"{pad}{_join(s.lhs)} {s.op} {_join(s.rhs)};")
        elif isinstance(s, _Block):
            out.append(f"{pad}begin")
            out += _emit(s.body, indent + 2)
            out.append(f"{pad}end")
        elif isinstance(s, _If):
            out += [f"{pad}{a}" for a in s.attrs]
            out.append(f"{pad}if ({_join(s.cond)}) begin")
            out += _emit(_as_list(s.then), indent + 2)
            if s.other is not None:
                out.append(f"{pad}end else begin")
                out += _emit(_as_list(s.other), indent + 2)
            out.append(f"{pad}end")
        else:
            out += [f"{pad}{a}" for a in s.attrs]
            out.append(f"{pad}{s.kind} ({_join(s.sel)})")
            for labels, body in s.items:
                head = "default" if labels is None else ", ".join(_join(lab) for lab in labels)
                out.append(f"{pad}  {head}: begin")
                out += _emit(_as_list(body), indent + 4)
                out.append(f"{pad}  end")
            out.append(f"{pad}endcase")
    return out


def _as_list(s):
    return s.body if isinstance(s, _Block) else [s]


# --- activity (guard) expressions -------------------------------------------------------------
# An activity is ONE (always possibly active), None (never) or a list of terms OR-ed together;
# a term is ("cmp", lhs, rhs) (lhs !== rhs) or ("expr", text) (a 1-bit expression).

ONE = "ONE"


def _or(acts):
    terms = []
    for a in acts:
        if a is ONE:
            return ONE
        if a:
            terms += [t for t in a if t not in terms]
    return terms or None


def _and(cond: str, act):
    """Activity of ``act`` under a condition: comparisons of non-constant values are dropped
    (over-approximated by 1), so that the guard only follows the conditions."""
    if act is None:
        return None
    if act is ONE or any(t[0] == "cmp" and not _CONST.fullmatch(t[2]) for t in act):
        return [("expr", cond)]
    return [("expr", f"({cond} & {_term_text(act)})")]


_CONST = re.compile(r"\d*'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_]+|\d+")


def _term_text(act) -> str:
    """One-bit expression of an activity: a reduction OR of a concatenation, so that a change
    of one term costs two functor evaluations in Icarus, not a chain as long as the list."""
    if act is ONE:
        return "1'h1"
    parts = []
    cmps = [t for t in act if t[0] == "cmp"]
    if len(cmps) == 1:
        parts.append(f"({cmps[0][1]} !== {cmps[0][2]})")      # same widths: no braces needed
    elif cmps:
        parts.append("({ " + ", ".join(t[1] for t in cmps) + " } !== { " + ", ".join(t[2] for t in cmps) + " })")
    parts += [t[1] for t in act if t[0] == "expr"]
    return parts[0] if len(parts) == 1 else "(|{ " + ", ".join(parts) + " })"


def _simple_lhs(lhs) -> bool:
    """An identifier with at most one constant bit or part select (not a memory word)."""
    return len(lhs) == 1 or (len(lhs) in (4, 6) and lhs[1] == "[" and lhs[-1] == "]"
                             and all(re.fullmatch(r"\d+", t) for t in lhs[2:-1:2]))


def _width(toks, widths) -> int | None:
    """Bit width of a signal expression (names, constant selects, sized constants,
    concatenations, replications); None for anything else."""
    def atom(i):
        t = toks[i]
        if t == "{":
            if i + 2 < len(toks) and re.fullmatch(r"\d+", toks[i + 1]) and toks[i + 2] == "{":
                w, j = atom(i + 2)
                if toks[j] != "}":
                    raise _Unsupported
                return int(toks[i + 1]) * w, j + 1
            total, j = 0, i + 1
            while True:
                w, j = atom(j)
                total += w
                if toks[j] == "}":
                    return total, j + 1
                if toks[j] != ",":
                    raise _Unsupported
                j += 1
        m = re.fullmatch(r"(\d+)'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_?]+", t)
        if m:
            return int(m.group(1)), i + 1
        if _is_ident(t) and t.rstrip() in widths:
            if i + 1 < len(toks) and toks[i + 1] == "[":
                if re.fullmatch(r"\d+", toks[i + 2]) and toks[i + 3] == "]":
                    return 1, i + 4
                if re.fullmatch(r"\d+", toks[i + 2]) and toks[i + 3] == ":" and toks[i + 5] == "]":
                    return abs(int(toks[i + 2]) - int(toks[i + 4])) + 1, i + 6
                raise _Unsupported
            return widths[t.rstrip()], i + 1
        raise _Unsupported

    try:
        w, j = atom(0)
    except (_Unsupported, IndexError):
        return None
    return w if j == len(toks) else None


def _activity(stmts, onebit=frozenset(), widths=None):
    """Activity of a clocked statement list.

    ``onebit`` names the module's one-bit signals, ``widths`` maps signal names to widths: an
    assignment is compared (``q !== e``) only when both sides are plain signal expressions of
    the same width, so that no extension rule can make the comparison differ from the load.
    """
    widths = widths or {}
    acts = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, _Asg):
            if s.op != "<=":
                raise _Unsupported("blocking assignment in a clocked block")
            w = _width(s.lhs, widths) if _simple_lhs(s.lhs) else None
            acts.append([("cmp", _join(s.lhs), _join(s.rhs))] if w is not None and w == _width(s.rhs, widths) else ONE)
        elif isinstance(s, _Block):
            acts.append(_activity(s.body, onebit, widths))
        elif isinstance(s, _If):
            cond = _join(s.cond)
            c = cond if cond.rstrip() in onebit else f"(|({cond}))"
            acts.append(_and(c, _activity(_as_list(s.then), onebit, widths)))
            if s.other is not None:
                acts.append(_and(f"({c} !== 1'h1)", _activity(_as_list(s.other), onebit, widths)))
        else:
            sel = _join(s.sel)
            for labels, body in s.items:
                act = _activity(_as_list(body), onebit, widths)
                if act is None:
                    continue
                exact = labels is not None and all(_CONST.fullmatch(_join(lab)) and not re.search(
                    r"[xXzZ?]", _join(lab).split("'")[-1][1:]) for lab in labels)
                if not exact:
                    acts.append(act)
                    continue
                match = " | ".join(f"({sel} === {_join(lab)})" for lab in labels)
                acts.append(_and(f"({match} | ((^{sel}) === 1'hx))", act))
    return _or(acts)


# --- module items -----------------------------------------------------------------------------

@dataclass
class _Item:
    lines: list[str]
    kind: str = "other"         # proc, clocked, other
    sens: str = ""
    stmts: list = None


_CLOCKED = re.compile(r"  always @\(((?:posedge|negedge) [^()]*)\)( begin)?")


def _items(body: list[str]) -> list[_Item]:
    """Split a module body (lines between the header and ``endmodule``) into top-level items.

    An item is its attribute lines, a line indented by two spaces, the lines indented deeper
    that follow it and, for blocks, their closing ``end``, ``);`` or ``endfunction`` line.
    """
    items, i = [], 0
    while i < len(body):
        j = i
        while j < len(body) - 1 and re.fullmatch(r"  \(\*.*\*\)", body[j]):
            j += 1
        j += 1
        while j < len(body) and body[j].startswith("   "):
            j += 1
        if j < len(body) and body[j] in ("  end", "  );", "  endfunction"):
            j += 1
        items.append(_Item(body[i:j]))
        i = j
    for it in items:
        head = it.lines[0]
        m = _CLOCKED.fullmatch(head)
        if head.startswith("  (*"):
            continue
        if head == "  always @* begin" and it.lines[-1] == "  end":
            it.kind = "proc"
        elif m and (not m.group(2) or it.lines[-1] == "  end"):
            it.kind = "clocked"
            it.sens = m.group(1)
        if it.kind != "other":
            text = "\n".join(it.lines[1:-1] if head.endswith(" begin") else it.lines[1:])
            try:
                it.stmts = _parse(text)
            except _Unsupported:
                it.kind = "other"
    return items


_REG = re.compile(r"  reg (\[[^\]]*\] )?(\\\S+ |[A-Za-z_][\w$]*)( = [^;]*)?;")


def _decl(items) -> dict[str, str]:
    """name -> packed range text ("" for one bit) of every ``reg`` declared in the module."""
    out = {}
    for it in items:
        m = _REG.fullmatch(it.lines[-1])
        if m and it.kind == "other" and all(line.startswith("  (*") for line in it.lines[:-1]):
            out[m.group(2).rstrip()] = (m.group(1) or "").strip()
    return out


def _fold(items: list[_Item]) -> list[_Item]:
    """Fold next-state processes into the clocked blocks that are their only readers."""
    use = {}
    for it in items:
        try:
            toks = _tokens("\n".join(it.lines))
        except _Unsupported:
            toks = re.findall(r"\\\S+\s?|[A-Za-z_][\w$]*", "\n".join(it.lines))
        for t in toks:
            use[t.rstrip()] = use.get(t.rstrip(), 0) + 1
    regs = _decl(items)
    flops = {}          # D name -> clocked item "q <= D;"
    for it in items:
        if it.kind == "clocked" and len(it.stmts) == 1 and isinstance(it.stmts[0], _Asg):
            a = it.stmts[0]
            if len(a.lhs) == 1 and len(a.rhs) == 1 and _is_ident(a.rhs[0]) and _is_ident(a.lhs[0]):
                flops[a.rhs[0].rstrip()] = it
    folded = set()
    for it in items:
        if it.kind != "proc":
            continue
        asgs = [s for s in _walk(it.stmts) if isinstance(s, _Asg)]
        if any(s.op != "=" for s in asgs):
            continue
        targets = {s.lhs[0].rstrip() for s in asgs}
        if not targets or any(t not in flops or id(flops[t]) in folded for t in targets):
            continue
        reads = set()
        for s in _walk(it.stmts):
            if isinstance(s, _Asg):
                reads.update(t.rstrip() for t in s.lhs[1:] + s.rhs)
            elif isinstance(s, _If):
                reads.update(t.rstrip() for t in s.cond)
            else:
                reads.update(t.rstrip() for t in s.sel)
                for labels, _ in s.items:
                    for lab in labels or []:
                        reads.update(t.rstrip() for t in lab)
        if reads & targets:
            continue
        q = {t: flops[t].stmts[0].lhs[0] for t in targets}
        # Every target is the D input of one flip-flop only, of the same width, and read nowhere else.
        writes = {t: sum(1 for s in asgs if s.lhs[0].rstrip() == t) for t in targets}
        if any(use.get(t, 0) != writes[t] + 2 or t not in regs or regs.get(q[t].rstrip()) != regs[t] for t in targets):
            continue
        body = [s for s in it.stmts if not (isinstance(s, _If) and isinstance(s.then, _Block) and not s.then.body
                                            and s.other is None)]     # "if (trigger) begin end": runs @* at time 0
        # The block must start by assigning every target in full (no latch-like paths).
        defaults = {}
        for s in body:
            if not (isinstance(s, _Asg) and len(s.lhs) == 1) or s.lhs[0].rstrip() in defaults:
                break
            defaults[s.lhs[0].rstrip()] = s
        if set(defaults) != targets:
            continue
        if len({flops[t].sens for t in targets}) != 1:
            continue
        for s in asgs:
            s.lhs = [q[s.lhs[0].rstrip()]] + s.lhs[1:]
            s.op = "<="
        # The hold default "q <= q" does nothing; a later "q <= q" does (it overrides), so it stays.
        body = [s for s in body if not any(s is d and d.rhs == d.lhs for d in defaults.values())]
        folded.update(id(flops[t]) for t in targets)
        first = flops[sorted(targets)[0]]
        first.stmts = body
        first.lines = [f"  always @({first.sens}) begin", *_emit(body, 4), "  end"]
        it.kind = "drop"
        for t in targets:
            if flops[t] is not first:
                flops[t].kind = "drop"
        for d in items:
            m = _REG.fullmatch(d.lines[-1])
            if d.kind == "other" and m and m.group(2).rstrip() in targets and not m.group(3):
                d.kind = "drop"
    return [it for it in items if it.kind != "drop"]


_DECL = re.compile(r"  (?:wire|reg|input|output|inout) (?:signed )?(?:\[(\d+):(\d+)\] )?(\\\S+ |[A-Za-z_][\w$]*)"
                   r"( ?\[[^\]]*\])?(?: = [^;]*)?;")


def _reset_if(s, onebit) -> str | None:
    """The signal of ``if (r) ...`` without ``else`` on one one-bit signal, else None."""
    if isinstance(s, _If) and s.other is None and len(s.cond) == 1 and s.cond[0].rstrip() in onebit:
        return s.cond[0].rstrip()
    return None


def _reset_names(items, onebit) -> set[str]:
    """Signals of the ``if``s (without ``else``, on a one-bit signal, assigning constants only)
    that close at least two of the clocked statement lists ``items`` and at least half of those
    that end in such ``if``s (memory writes, say, do not): the resets of step 4. (Any choice
    would be exact; this one picks the signals that are rarely 1.)"""
    count: dict[str, int] = {}
    closed = 0
    for stmts in items:
        seen = set()
        for s in reversed(stmts):
            r = _reset_if(s, onebit)
            body = _as_list(s.then) if r is not None else []
            if r is None or not all(isinstance(a, _Asg) and len(a.rhs) == 1 and _CONST.fullmatch(a.rhs[0].rstrip())
                                    for a in body):
                break
            seen.add(r)
        closed += bool(seen)
        for r in seen:
            count[r] = count.get(r, 0) + 1
    return {r for r, n in count.items() if n >= max(2, (closed + 1) // 2)}


def _drop_ifs(stmts, names) -> list:
    """``stmts`` without any ``if`` (without ``else``) on a signal of ``names``, at any depth."""
    out = []
    for s in stmts:
        if s is None or _reset_if(s, names) is not None:
            continue
        if isinstance(s, _Block):
            s = _Block(_drop_ifs(s.body, names))
        elif isinstance(s, _If):
            then = _Block(_drop_ifs(_as_list(s.then), names))
            other = None if s.other is None else _Block(_drop_ifs(_as_list(s.other), names))
            s = _If(s.cond, then, other, s.attrs)
        elif isinstance(s, _Case):
            s = _Case(s.kind, s.sel, [(labels, _Block(_drop_ifs(_as_list(b), names))) for labels, b in s.items],
                      s.attrs)
        out.append(s)
    return out


def _merge_ifs(stmts) -> list:
    """Consecutive ``if (c) A`` and ``if (c) B`` (no ``else``, the same ``c``) as one
    ``if (c) begin A B end``: one test of ``c`` instead of one per statement. Exact in a clocked
    block, whose assignments are all nonblocking (:func:`_activity` checks): ``A`` cannot change
    ``c`` before ``B``'s test."""
    out = []
    for s in stmts:
        if s is None:
            continue
        prev = out[-1] if out else None
        if (isinstance(s, _If) and s.other is None and not s.attrs and isinstance(prev, _If)
                and prev.other is None and not prev.attrs and _join(prev.cond) == _join(s.cond)):
            out[-1] = _If(prev.cond, _Block(_as_list(prev.then) + _as_list(s.then)), None, [])
        else:
            out.append(s)
    return out


def _module(body: list[str], counter: list[int], fanin: int, prefix: str, part_prefix: str,
            keep_names: bool = False) -> list[str]:
    items = _fold(_items(body))
    widths = {}
    for it in items:
        m = _DECL.fullmatch(it.lines[-1])
        if m:
            name = m.group(3).rstrip()
            hi, lo = (int(m.group(1)), int(m.group(2))) if m.group(1) else (0, 0)
            w = -1 if m.group(4) else abs(hi - lo) + 1        # memories: no width for their name
            if widths.setdefault(name, w) != w:
                widths[name] = -1
    widths = {n: w for n, w in widths.items() if w > 0}
    onebit = {n for n, w in widths.items() if w == 1}
    out, clocked = [], {}
    # Per event list: the signals it names, and its reset names (step 4); a signal of the event
    # list (an asynchronous reset) is left where it is.
    sens_names = {it.sens: set(re.findall(r"(?:posedge|negedge) (\\\S+|[A-Za-z_][\w$]*)", it.sens))
                  for it in items if it.kind == "clocked"}
    resets = {sens: sorted(_reset_names([it.stmts for it in items if it.kind == "clocked" and it.sens == sens],
                                        onebit - names))
              for sens, names in sens_names.items()}
    for it in items:
        if it.kind == "clocked":
            stmts = _drop_ifs(it.stmts, set(resets[it.sens])) if resets[it.sens] else it.stmts
            try:
                full = _activity(it.stmts, onebit, widths)
                act = _activity(stmts, onebit, widths)
            except _Unsupported:
                out += it.lines
                continue
            if act is not None and act is not ONE:
                # A guard must not read a signal of the event list (an asynchronous reset): the
                # event wakes the block in the same step as the change, before the guard follows.
                if sens_names[it.sens] & {t.rstrip() for t in _tokens(_term_text(act))}:
                    act = ONE
            if full is not None:        # None: the block can never change a register
                clocked.setdefault(it.sens, []).append((act, stmts, _emit(it.stmts, 0),
                                                        {a.lhs[0].rstrip() for a in _walk(it.stmts)
                                                         if isinstance(a, _Asg)}))
        else:
            out += it.lines

    def wire(expr: str) -> str:
        """A new guard wire of the one-bit ``expr`` (through the macro), declared here."""
        name = f"\\{prefix}{counter[0]} "
        counter[0] += 1
        out.extend([f"  wire {name};", f"  assign {name}= `{GUARD_MACRO}(({expr}));"])
        return name

    def guard(act, lines):
        if act is ONE:
            return act, lines
        name = wire(_term_text(act))
        return [("expr", name)], [f"if ({name}) begin", *("  " + line for line in lines), "end"]

    def leaf(act, group):
        """A guard over a group's statements; none when they are one ``if`` on the very
        signal the guard would test (it is its own guard)."""
        group = _merge_ifs(group)
        if (act is not ONE and len(act) == 1 and act[0][0] == "expr" and len(group) == 1
                and isinstance(group[0], _If) and group[0].other is None and _join(group[0].cond) == act[0][1]):
            return act, _emit(group, 0)
        return guard(act, _emit(group, 0))

    for sens, stmts in clocked.items():
        # A tree of guards: every statement under its own, ``fanin`` children per node, so an
        # idle module costs one test per clock edge and an active register a few more.
        # Registers with the same activity share one guard: one guard read instead of one each.
        # Their statements assign disjoint registers, so their order does not matter; writes to
        # memories (two ports may hit one word) keep their own guards and their order.
        groups: dict[object, list] = {}
        for k, (act, group, _, targets) in enumerate(stmts):
            if act is not None:
                shared = all(t in widths for t in targets)
                key = ("1" if act is ONE else _term_text(act)) if shared else k
                groups.setdefault(key, [act, []])[1].extend(group)
        nodes = [leaf(act, group) for act, group in groups.values()]
        while len(nodes) > fanin:
            nodes = [guard(_or([a for a, _ in nodes[k:k + fanin]]), [line for _, b in nodes[k:k + fanin] for line in b])
                     for k in range(0, len(nodes), fanin)]
        if len(nodes) > 1:
            nodes = [guard(_or([a for a, _ in nodes]), [line for _, b in nodes for line in b])]
        tree = [line for _, body in nodes for line in body]
        reset = wire(" | ".join(f"{r} " if r.startswith("\\") else r for r in resets[sens])) if resets[sens] else None
        out.append(f"  always @({sens}) begin")
        if reset:
            # Step 4: in a reset, the statements as they were; otherwise the guard tree.
            out.append(f"    if ({reset}) begin")
            out += ["      " + line for _, _, full, _ in stmts for line in full]
            out.append("    end else begin")
            out += ["      " + line for line in tree]
            out.append("    end")
        else:
            out += ["    " + line for line in tree]
        out.append("  end")
    # Step 7 before step 5 (which makes wires into processes) and after step 6 (which makes
    # wires driven in parts into wholly assigned ones).
    drop = (lambda lines: lines) if keep_names else _drop_unread
    out = _procedural_bitwise(drop(out), widths)
    return drop(_merge_part_assigns(out, widths, part_prefix, counter))


_WIRE_DECL = re.compile(r"  wire (?:signed )?(?:\[\d+:\d+\] )?(\\\S+ |[A-Za-z_][\w$]*);")
_WHOLE_ASSIGN = re.compile(r"  assign (\\\S+ |[A-Za-z_][\w$]*) = [^;]*;")


def _drop_unread(lines: list[str]) -> list[str]:
    """Step 7 (see the module docstring): wires that nothing reads, with their assignments."""
    try:
        # (The guards' macro calls are read as plain names: "`" dropped.)
        names = [[t.rstrip() for t in _tokens(line.replace("`", "")) if _is_ident(t)] for line in lines]
    except _Unsupported:
        return lines
    count = Counter(n for line in names for n in line)
    decl, assign = {}, {}
    for k, line in enumerate(lines):
        if m := _WIRE_DECL.fullmatch(line):
            decl.setdefault(m.group(1).rstrip(), []).append(k)
        elif m := _WHOLE_ASSIGN.fullmatch(line):
            assign.setdefault(m.group(1).rstrip(), []).append(k)
    # Declared once as a wire (not a port), driven by one whole assignment, named nowhere else;
    # dropping one may leave the wires its assignment read unread in turn.
    drop, todo = set(), [n for n in decl if count[n] == 2 and len(decl[n]) == 1 and len(assign.get(n, ())) == 1]
    while todo:
        n = todo.pop()
        if n in drop or count[n] != 2:
            continue
        drop.update((decl[n][0], assign[n][0]))
        count[n] = 0
        for r in names[assign[n][0]][2:]:   # past "assign" and the wire itself
            count[r] -= 1
            if count[r] == 2 and len(decl.get(r, ())) == 1 and len(assign.get(r, ())) == 1:
                todo.append(r)
    out = []
    for k, line in enumerate(lines):
        if k in drop:
            while out and re.fullmatch(r"  \(\*.*\*\)", out[-1]):
                out.pop()   # the declaration's attributes go with it
            continue
        out.append(line)
    return out


#: Narrowest continuous bitwise assignment that step 5 turns into a process.
WIDE_BITWISE = 8
_BITWISE_ASSIGN = re.compile(r"  assign (\\\S+ |[A-Za-z_][\w$]*) = ([^;]*);")
_WIRE = re.compile(r"  wire (\[\d+:\d+\] )(\\\S+ |[A-Za-z_][\w$]*);")


def _procedural_bitwise(lines: list[str], widths: dict[str, int]) -> list[str]:
    """Step 5 (see the module docstring) over a rewritten module's lines."""
    wide = {}
    for k, line in enumerate(lines):
        m = _BITWISE_ASSIGN.fullmatch(line)
        if not m or widths.get(m.group(1).rstrip(), 0) < WIDE_BITWISE:
            continue
        try:
            toks = _tokens(m.group(2))
        except _Unsupported:
            continue
        if all(_is_ident(t) or t in ("~", "&", "|", "^", "(", ")") for t in toks) \
                and any(t in ("~", "&", "|", "^") for t in toks):
            wide[m.group(1).rstrip()] = k
    if not wide:
        return lines
    out = list(lines)
    for k, line in enumerate(lines):
        m = _WIRE.fullmatch(line)
        if m and m.group(2).rstrip() in wide:
            out[k] = f"  reg {m.group(1)}{m.group(2)};"
            a = wide.pop(m.group(2).rstrip())
            out[a] = "  always @*" + lines[a][len("  assign"):]
    return out                          # an assignment without a wire declaration stays as it was


_ASSIGN = re.compile(r"  assign (.*) = (.*);")
_WIRE_RANGE = re.compile(r"  wire \[(\d+):0\] (\\\S+ |[A-Za-z_][\w$]*);")
_SIZED = re.compile(r"(\d+)'([bBhH])([0-9a-fA-FxXzZ_]+)")


def _select(toks, i) -> tuple[str, int, int, int]:
    """``name [ n ]`` or ``name [ h : l ]`` at ``toks[i]``: (name, h, l, index after it)."""
    if not (_is_ident(toks[i]) and toks[i + 1] == "[" and re.fullmatch(r"\d+", toks[i + 2])):
        raise _Unsupported("not a constant select")
    if toks[i + 3] == "]":
        return toks[i].rstrip(), int(toks[i + 2]), int(toks[i + 2]), i + 4
    if toks[i + 3] == ":" and re.fullmatch(r"\d+", toks[i + 4]) and toks[i + 5] == "]" \
            and int(toks[i + 2]) >= int(toks[i + 4]):
        return toks[i].rstrip(), int(toks[i + 2]), int(toks[i + 4]), i + 6
    raise _Unsupported("not a constant select")


def _lhs_parts(toks) -> list[tuple[str, int, int]]:
    """The bit selects, most significant first, of an assignment target made of selects only."""
    if toks[0] != "{":
        name, hi, lo, j = _select(toks, 0)
        if j != len(toks):
            raise _Unsupported("target")
        return [(name, hi, lo)]
    parts, j = [], 1
    while True:
        name, hi, lo, j = _select(toks, j)
        parts.append((name, hi, lo))
        if toks[j] == "}" and j == len(toks) - 1:
            return parts
        if toks[j] != ",":
            raise _Unsupported("target")
        j += 1


def _const_bits(text: str) -> str | None:
    """A sized binary or hexadecimal constant as its bit string (MSB first), or None."""
    m = _SIZED.fullmatch(text)
    if not m:
        return None
    width, digits = int(m.group(1)), m.group(3).replace("_", "").lower()
    if m.group(2) in "bB":
        bits = digits
    else:
        bits = "".join(d * 4 if d in "xz" else f"{int(d, 16):04b}" for d in digits)
    fill = bits[0] if bits[0] in "xz" else "0"
    return (fill * width + bits)[-width:]


def _top_elements(toks) -> list[list[str]] | None:
    """The elements of an expression that is one concatenation ``{ a, b, ... }``, else None."""
    if not toks or toks[0] != "{" or toks[-1] != "}":
        return None
    elems, depth, cur = [], 0, []
    for t in toks[1:-1]:
        if depth == 0 and t == ",":
            elems.append(cur)
            cur = []
            continue
        depth += t in ("(", "[", "{")
        depth -= t in (")", "]", "}")
        if depth < 0:
            return None                      # "{ a } | { b }": not one concatenation
        cur.append(t)
    elems.append(cur)
    return elems


def _merge_part_assigns(lines: list[str], widths: dict[str, int], temp_prefix: str, counter: list[int]) -> list[str]:
    """Step 6 (see the module docstring) over a rewritten module's lines."""
    ranges = {}
    for line in lines:
        m = _WIRE_RANGE.fullmatch(line)
        if m:
            ranges[m.group(2).rstrip()] = int(m.group(1)) + 1
    stmts = {}              # line index -> (parts, rhs tokens)
    bad = set()             # wires also driven otherwise, or by an assignment that is not merged
    for k, line in enumerate(lines):
        m = _ASSIGN.fullmatch(line)
        if not m:
            continue
        try:
            stmts[k] = (_lhs_parts(_tokens(m.group(1))), _tokens(m.group(2)))
        except (_Unsupported, IndexError):
            try:
                bad |= {t.rstrip() for t in _tokens(m.group(1)) if _is_ident(t)}
            except _Unsupported:
                pass
    # name -> [(lo, hi, line)], for wires driven by such assignments only, one name per line
    cover: dict[str, list] = {}
    for k, (parts, rhs) in stmts.items():
        names = {n for n, _, _ in parts}
        if len(names) != 1 or names & {t.rstrip() for t in rhs}:
            bad |= names                      # several wires, or a wire feeding itself
            continue
        for name, hi, lo in parts:
            cover.setdefault(name, []).append((lo, hi, k))
    merged = {}
    for name, segs in cover.items():
        width = ranges.get(name)
        if name in bad or width is None:
            continue
        segs.sort()
        nxt = 0
        for lo, hi, _ in segs:
            if lo != nxt:
                break
            nxt = hi + 1
        else:
            if nxt == width and len({k for _, _, k in segs}) > 1:
                merged[name] = segs
    if not merged:
        return lines
    out = list(lines)
    temps = []
    for name, segs in merged.items():
        pieces = {}             # (lo, hi) -> expression text
        for k in sorted({k for _, _, k in segs}):
            parts, rhs = stmts[k]
            sizes = [hi - lo + 1 for _, hi, lo in parts]
            texts = None
            if len(parts) == 1 and _width(rhs, widths) == sizes[0]:
                texts = [_join(rhs)]
            elif len(parts) > 1 and (bits := _const_bits(_join(rhs))) is not None and len(bits) == sum(sizes):
                texts, pos = [], 0
                for size in sizes:
                    texts.append(f"{size}'b{bits[pos:pos + size]}")
                    pos += size
            elif len(parts) > 1 and (elems := _top_elements(rhs)) is not None:
                ews = [_width(e, widths) for e in elems]
                if None not in ews:
                    texts, acc, group = [], 0, []
                    for e, w in zip(elems, ews):
                        group.append(_join(e))
                        acc += w
                        if acc == sizes[len(texts)]:
                            texts.append(group[0] if len(group) == 1 else "{ " + ", ".join(group) + " }")
                            acc, group = 0, []
                            if len(texts) == len(sizes):
                                break
                        elif acc > sizes[len(texts)]:
                            texts = None
                            break
                    if texts is not None and (len(texts) != len(sizes) or group):
                        texts = None
            if texts is None:
                # The right-hand side through a wire of the target's width, so that it is
                # evaluated in the same context width as before.
                temp = f"\\{temp_prefix}{counter[0]} "
                counter[0] += 1
                total = sum(sizes)
                temps += [f"  wire [{total - 1}:0] {temp};", f"  assign {temp}= {_join(rhs)};"]
                texts, pos = [], total - 1
                for size in sizes:
                    texts.append(f"{temp}[{pos}:{pos - size + 1}]" if size > 1 else f"{temp}[{pos}]")
                    pos -= size
            for (_, hi, lo), text in zip(parts, texts):
                pieces[(lo, hi)] = text
            out[k] = None
        rhs_text = ", ".join(pieces[(lo, hi)] for lo, hi, _ in reversed(segs))
        out[min(k for _, _, k in segs)] = f"  assign {name} = {{ {rhs_text} }};"
    # The temporary wires go in front of the first assignment (declarations before use).
    first = min(k for k, line in enumerate(out) if line is None or (line and line.startswith("  assign ")))
    out[first:first] = temps
    return [line for line in out if line is not None]


#: First line of rewritten text; text that starts with it is returned unchanged.
MARK = ("// Rewritten by rtl/verilog_opt.py for event-driven simulation: same behaviour and registers; "
        "the names but of wires nothing reads.")
#: Macro that every guard expression goes through.
GUARD_MACRO = "VERILOG_OPT_GUARD"
#: Its definition, at the top of the text: the guards pay off in an event-driven simulator only.
#: Verilator computes every assignment anyway (with live guards the plain C++ harness of
#: tb/raw ran at 30 % of its speed with constant ones) and synthesis would keep them as logic,
#: so for both they are the constant 1 and vanish; the folded and merged blocks stay (they make
#: Verilator faster too).
PRELUDE = [
    MARK,
    f"`ifndef {GUARD_MACRO}",
    "`ifdef VERILATOR",
    f"`define {GUARD_MACRO}(activity) 1'h1",
    "`elsif SYNTHESIS",
    f"`define {GUARD_MACRO}(activity) 1'h1",
    "`else",
    f"`define {GUARD_MACRO}(activity) activity",
    "`endif",
    "`endif",
]


def optimise(text: str, fanin: int = FANIN, keep_names: bool = False) -> str:
    """The Verilog ``text`` (from Yosys' ``write_verilog``) rewritten for simulation speed.

    ``keep_names`` skips step 7, so that every signal Yosys named stays (waveform builds)."""
    if text.startswith(MARK):
        return text
    prefix = "$guard$"
    part_prefix = "$part$"
    while "\\" + prefix in text:
        prefix = "$" + prefix                   # never reuse a name the design has
    while "\\" + part_prefix in text:
        part_prefix = "$" + part_prefix
    lines = text.split("\n")
    out, i, counter = list(PRELUDE), 0, [0]
    while i < len(lines):
        if lines[i].startswith("module "):
            j = i
            while not lines[j].rstrip().endswith(");"):
                j += 1
            k = j + 1
            while lines[k] != "endmodule":
                k += 1
            out += lines[i:j + 1] + _module(lines[j + 1:k], counter, fanin, prefix, part_prefix,
                                            keep_names) + ["endmodule"]
            i = k + 1
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)
