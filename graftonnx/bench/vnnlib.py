"""VNN-LIB 1.0: the robustness-property files α,β-CROWN and NeuralSAT read.

Why a hand-written reader: the PyPI ``vnnlib`` package parses only VNN-LIB 2.0, while
every verifier graftonnx drives still reads 1.0.  The reader accepts the forms that
VNN-COMP benchmarks use (``declare-const X_i Real``, per-variable box asserts, possibly
wrapped in ``and``, and the negated robustness property as ``(or (and (>= Y_j Y_l)) ...)``)
and rejects anything a :class:`Property` cannot represent with the file and line, rather
than silently verifying a different property.

Numbers are written as the shortest decimal of the float32 value's double (never with an
exponent), so reading a file back reproduces the float32 box bit for bit.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from ..errors import BadInput
from .spec import Property, bound_problem

__all__ = ["write_vnnlib", "read_vnnlib", "vnnlib_text", "parse_vnnlib", "format_real", "read_vnnlib_text"]

_TOKEN = re.compile(r";[^\n]*|\(|\)|[^\s();]+|\n")
_VAR = re.compile(r"([XY])_(\d+)\Z")
_IGNORED = {"set-logic", "set-info", "set-option", "check-sat", "get-model", "exit"}
_CMP = {"<=", ">=", "<", ">"}


def format_real(value: float) -> str:
    """Decimal text of ``value`` (no exponent: VNN-LIB 2.0 has none) that reads back exactly."""
    text = np.format_float_positional(float(value), unique=True, trim="0")
    return "0.0" if text in ("-0.0", "0.0") else text


def vnnlib_text(prop: Property, comment: str = "") -> str:
    """The VNN-LIB 1.0 text of ``prop``, laid out like the VNN-COMP 2021 benchmark files."""
    lines = [f"; {c}" for c in (comment or f"robustness property, label {prop.label}").splitlines()]
    lines.append("")
    lines += [f"(declare-const X_{i} Real)" for i in range(prop.n_inputs)]
    lines.append("")
    lines += [f"(declare-const Y_{j} Real)" for j in range(prop.n_classes)]
    lines += ["", "; Input constraints:"]
    for i, (lo, hi) in enumerate(zip(prop.lower.tolist(), prop.upper.tolist(), strict=True)):
        lines += [f"(assert (<= X_{i} {format_real(hi)}))", f"(assert (>= X_{i} {format_real(lo)}))", ""]
    lines += ["; Output constraints:", "(assert (or"]
    lines += [f"    (and (>= Y_{j} Y_{prop.label}))" for j in range(prop.n_classes) if j != prop.label]
    lines.append("))")
    return "\n".join(lines) + "\n"


def write_vnnlib(path: str | os.PathLike[str], prop: Property, comment: str = "") -> None:
    """Write ``prop`` as a VNN-LIB 1.0 file, atomically."""
    atomic_write_text(path, vnnlib_text(prop, comment))


def read_vnnlib(path: str | os.PathLike[str]) -> Property:
    """Read a VNN-LIB 1.0 robustness property; anything else raises BadInput with file and line."""
    return parse_vnnlib(read_vnnlib_text(path), str(path))


def read_vnnlib_text(path: str | os.PathLike[str]) -> str:
    """The text of a vnnlib file (either version; ``.gz``: gzipped), or BadInput saying why it cannot be read."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"vnnlib file {p} not found: check the path")
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rt", encoding="utf-8") as fh:
                return fh.read()
        return p.read_text(encoding="utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read vnnlib file {p} ({type(exc).__name__}): is it a text file?") from None


@dataclass
class _Sexp:
    """A parenthesised list with the line it starts on (atoms are ``(text, line)`` tuples)."""

    items: list
    line: int


def _parse_sexps(text: str, where: str) -> list[_Sexp]:
    """Top-level s-expressions of ``text``; unbalanced parentheses are reported with their line."""
    line, stack, top = 1, [], []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok == "\n":
            line += 1
        elif tok.startswith(";"):
            continue
        elif tok == "(":
            stack.append(_Sexp([], line))
        elif tok == ")":
            if not stack:
                raise BadInput(f"{where}:{line}: unmatched ')' : fix the parentheses of this vnnlib file")
            done = stack.pop()
            (stack[-1].items if stack else top).append(done)
        elif not stack:
            raise BadInput(f"{where}:{line}: unexpected '{tok}' outside parentheses: is this a VNN-LIB file?")
        else:
            stack[-1].items.append((tok, line))
    if stack:
        raise BadInput(f"{where}:{stack[-1].line}: '(' is never closed (file truncated?): fix the vnnlib file")
    return top


def _atom(x: object) -> str | None:
    return x[0] if isinstance(x, tuple) else None


class _Reader:
    """State of one 1.0 parse: declared variables, bounds and the output clause."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.declared: dict[str, set[int]] = {"X": set(), "Y": set()}
        self.lower: dict[int, float] = {}
        self.upper: dict[int, float] = {}
        self.lines: dict[tuple[str, int], int] = {}  # ("lower"/"upper", i) -> line of its bound, for "box is empty"
        self.pairs: list[tuple[int, int]] | None = None
        self.output_line = 0

    def fail(self, line: int, what: str) -> BadInput:
        return BadInput(f"{self.where}:{line}: {what}")

    def command(self, sexp: _Sexp) -> None:
        head = _atom(sexp.items[0]) if sexp.items else None
        if head == "declare-const":
            self.declare(sexp)
        elif head == "assert" and len(sexp.items) == 2 and isinstance(sexp.items[1], _Sexp):
            self.assertion(sexp.items[1])
        elif head in ("vnnlib-version", "declare-network"):
            raise self.fail(sexp.line, "this is a VNN-LIB 2.0 file: read it with read_vnnlib2 (or 'auto' format)")
        elif head not in _IGNORED:
            raise self.fail(sexp.line, f"unsupported command '{head}': graftonnx reads declare-const and assert "
                                       "(VNN-LIB 1.0 robustness properties)")

    def declare(self, sexp: _Sexp) -> None:
        names = [_atom(x) for x in sexp.items[1:]]
        m = _VAR.match(names[0] or "") if len(names) == 2 else None
        if not m or names[1] != "Real":
            raise self.fail(sexp.line, "expected (declare-const X_i Real) or (declare-const Y_j Real)")
        self.declared[m.group(1)].add(int(m.group(2)))

    def var(self, x: object, line: int) -> tuple[str, int] | None:
        m = _VAR.match(_atom(x) or "")
        if not m:
            return None
        kind, idx = m.group(1), int(m.group(2))
        if idx not in self.declared[kind]:
            raise self.fail(line, f"{kind}_{idx} is used but not declared: add (declare-const {kind}_{idx} Real)")
        return kind, idx

    def number(self, x: object) -> float | None:
        if isinstance(x, _Sexp) and len(x.items) == 2 and _atom(x.items[0]) == "-":
            inner = self.number(x.items[1])
            return None if inner is None else -inner
        try:
            return float(_atom(x) or "")
        except ValueError:
            return None

    def assertion(self, expr: _Sexp) -> None:
        if self.uses_output(expr):
            if self.pairs is not None:
                raise self.fail(expr.line, "a second output constraint: graftonnx reads one robustness "
                                           f"constraint per file (the first is at line {self.output_line})")
            self.output_line = expr.line
            self.pairs = self.output_clauses(expr)
            return
        head = _atom(expr.items[0]) if expr.items else None
        if head == "and":
            for sub in expr.items[1:]:
                if not isinstance(sub, _Sexp):
                    raise self.fail(expr.line, "expected a comparison inside (and ...)")
                self.assertion(sub)
            return
        self.input_bound(expr)

    def uses_output(self, expr: object) -> bool:
        if isinstance(expr, _Sexp):
            return any(self.uses_output(x) for x in expr.items)
        return bool(re.match(r"Y_\d+\Z", _atom(expr) or ""))

    def input_bound(self, expr: _Sexp) -> None:
        op = _atom(expr.items[0]) if expr.items else None
        if op not in _CMP or len(expr.items) != 3:
            raise self.fail(expr.line, "non-standard input constraint: graftonnx reads an input box "
                                       "(assert (<= X_i number)) / (assert (>= X_i number))")
        a, b = expr.items[1], expr.items[2]
        var, num, item = self.var(a, expr.line), self.number(b), b
        if var is None:  # (<= 0.1 X_3) means X_3 >= 0.1
            var, num, item = self.var(b, expr.line), self.number(a), a
            op = {"<=": ">=", ">=": "<=", "<": ">", ">": "<"}[op]
        if var is None or num is None or var[0] != "X":
            raise self.fail(expr.line, "non-standard input constraint: expected one X_i compared to a number")
        i = var[1]
        problem = bound_problem(num)
        if problem:
            text = _atom(item) or f"{num:g}"
            raise self.fail(expr.line, f"the bound {text} of X_{i} {problem}: give a finite number "
                                       "with |value| < 3.4e38 (inputs are float32)")
        if op in ("<=", "<") and num < self.upper.get(i, np.inf):  # the tightest bound wins, and its line
            self.upper[i], self.lines["upper", i] = num, expr.line
        elif op in (">=", ">") and num > self.lower.get(i, -np.inf):
            self.lower[i], self.lines["lower", i] = num, expr.line

    def output_clauses(self, expr: _Sexp) -> list[tuple[int, int]]:
        """``(j, l)`` pairs meaning ``Y_j >= Y_l``, one per disjunct."""
        head = _atom(expr.items[0]) if expr.items else None
        disjuncts = expr.items[1:] if head == "or" else [expr]
        pairs = []
        for d in disjuncts:
            if isinstance(d, _Sexp) and d.items and _atom(d.items[0]) == "and" and len(d.items) == 2:
                d = d.items[1]
            pairs.append(self.output_pair(d, expr.line))
        return pairs

    def output_pair(self, cmp: object, line: int) -> tuple[int, int]:
        bad = self.fail(line, "non-standard output constraint: graftonnx reads robustness properties "
                              "(or (and (>= Y_j Y_label)) ...) only")
        if not isinstance(cmp, _Sexp) or len(cmp.items) != 3 or _atom(cmp.items[0]) not in _CMP:
            raise bad
        a, b = self.var(cmp.items[1], cmp.line), self.var(cmp.items[2], cmp.line)
        if a is None or b is None or a[0] != "Y" or b[0] != "Y":
            raise bad
        return (a[1], b[1]) if _atom(cmp.items[0]) in (">=", ">") else (b[1], a[1])

    def result(self) -> Property:
        n_in, n_out = _contiguous(self.declared["X"], "X", self.where), _contiguous(self.declared["Y"], "Y", self.where)
        for i in range(n_in):
            if i not in self.lower or i not in self.upper:
                side = "lower" if i not in self.lower else "upper"
                raise BadInput(f"{self.where}: X_{i} has no {side} bound: every input needs a box (<= and >=)")
            if self.lower[i] > self.upper[i]:
                lo, hi = self.lines["lower", i], self.lines["upper", i]
                raise self.fail(max(lo, hi), f"the box of X_{i} is empty: lower {self.lower[i]} (line {lo}) > "
                                             f"upper {self.upper[i]} (line {hi}): swap or fix its bounds")
        if self.pairs is None:
            raise BadInput(f"{self.where}: no output constraint: expected (assert (or (and (>= Y_j Y_label)) ...))")
        label = _label_of(self.pairs, n_out)
        if label is None:
            raise self.fail(self.output_line, "non-standard output constraint: expected Y_j >= Y_label for "
                                              f"every other class j of the {n_out} outputs and one label")
        lower = np.array([self.lower[i] for i in range(n_in)], dtype=np.float64)
        upper = np.array([self.upper[i] for i in range(n_in)], dtype=np.float64)
        return Property(lower, upper, label, n_out)


def _contiguous(indices: Iterable[int], kind: str, where: str) -> int:
    idx = sorted(indices)
    if not idx:
        raise BadInput(f"{where}: no {kind}_i variables declared: is this a VNN-LIB 1.0 file?")
    if idx != list(range(len(idx))):
        missing = next(i for i in range(len(idx) + 1) if i not in set(idx))
        raise BadInput(f"{where}: {kind}_{missing} is not declared (indices must run 0..n-1)")
    return len(idx)


def _label_of(pairs: list[tuple[int, int]], n_out: int) -> int | None:
    labels = {b for _, b in pairs}
    if len(labels) != 1:
        return None
    label = labels.pop()
    others = sorted(a for a, _ in pairs)
    return label if others == [j for j in range(n_out) if j != label] else None


def parse_vnnlib(text: str, where: str = "<string>") -> Property:
    """Parse VNN-LIB 1.0 ``text`` (``where`` names it in error messages)."""
    reader = _Reader(where)
    for sexp in _parse_sexps(text, where):
        if not sexp.items:
            raise reader.fail(sexp.line, "empty '()': fix the vnnlib file")
        reader.command(sexp)
    return reader.result()
