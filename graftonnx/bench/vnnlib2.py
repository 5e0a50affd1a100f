"""VNN-LIB 2.0 (VNN-COMP 2026): tensor-indexed, typed robustness properties.

Why a writer *and* a reader built on the PyPI ``vnnlib`` package: the 2.0 grammar is
typed (``float32`` variables need float literals, there are no exponents), so the surest
check that a written file is valid is to parse it with the reference parser, and its
``compat`` transform gives the same boxes + output polytopes a :class:`Property` holds.
``vnnlib`` is imported lazily: writing needs no third-party parser.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence

import numpy as np

from .._io import atomic_write_text
from ..errors import BadInput
from .spec import Property, bound_problem
from .vnnlib import format_real, read_vnnlib_text

__all__ = ["write_vnnlib2", "read_vnnlib2", "vnnlib2_text", "parse_vnnlib2"]


def _shape(shape: Sequence[int | None], size: int, what: str) -> tuple[int, ...]:
    """Concrete shape (a symbolic batch axis becomes 1) whose size must match the property."""
    dims = tuple(1 if d is None or int(d) <= 0 else int(d) for d in shape)
    if math.prod(dims) != size:
        raise BadInput(f"{what} shape {list(dims)} has {math.prod(dims)} elements but the property has {size}: "
                       "give the model's own input/output shape")
    return dims


def _indices(shape: tuple[int, ...]) -> list[str]:
    """``"0,i,0"`` index texts in row-major order (the flat order of the property)."""
    grids = np.unravel_index(np.arange(math.prod(shape)), shape)
    return [",".join(str(int(g)) for g in t) for t in zip(*grids, strict=True)]


def vnnlib2_text(prop: Property, input_shape: Sequence[int | None], output_shape: Sequence[int | None],
                 comment: str = "") -> str:
    """The VNN-LIB 2.0 text of ``prop`` for a network with these input/output shapes."""
    xs = _shape(input_shape, prop.n_inputs, "input")
    ys = _shape(output_shape, prop.n_classes, "output")
    lines = [f"; {c}" for c in (comment or f"robustness property, label {prop.label}").splitlines()]
    lines += ["(vnnlib-version <2.0>)", "(declare-network f",
              f"    (declare-input X float32 [{','.join(map(str, xs))}])",
              f"    (declare-output Y float32 [{','.join(map(str, ys))}])", ")"]
    for idx, lo, hi in zip(_indices(xs), prop.lower.tolist(), prop.upper.tolist(), strict=True):
        lines += [f"(assert (>= X[{idx}] {format_real(lo)}))", f"(assert (<= X[{idx}] {format_real(hi)}))"]
    yi = _indices(ys)
    lines.append("(assert (or")
    lines += [f"    (>= Y[{yi[j]}] Y[{yi[prop.label]}])" for j in range(prop.n_classes) if j != prop.label]
    lines.append("))")
    return "\n".join(lines) + "\n"


def write_vnnlib2(path: str | os.PathLike[str], prop: Property, input_shape: Sequence[int | None],
                  output_shape: Sequence[int | None], comment: str = "") -> None:
    """Write ``prop`` as a VNN-LIB 2.0 file, atomically."""
    atomic_write_text(path, vnnlib2_text(prop, input_shape, output_shape, comment))


def read_vnnlib2(path: str | os.PathLike[str]) -> Property:
    """Read a VNN-LIB 2.0 robustness property through ``vnnlib.compat``; errors name file and line."""
    # read here, not in the C++ parser, which prints and exits on a missing file
    return parse_vnnlib2(read_vnnlib_text(path), str(path))


def _vnnlib():  # noqa: ANN202 - the module object
    try:
        import vnnlib
        import vnnlib.compat
    except ImportError:
        raise BadInput("reading VNN-LIB 2.0 needs the 'vnnlib' package: pip install vnnlib==1.0.2") from None
    return vnnlib


def _error_line(exc: Exception) -> str:
    """The parser's message, one line: its JSON error list becomes 'line N: message (hint)'."""
    text = str(exc).strip()
    try:
        first = json.loads(text)["errors"][0]
        return f"line {first.get('line', '?')}: {first.get('message', '')} ({first.get('hint', '')})"
    except (ValueError, KeyError, IndexError, TypeError):
        return text.splitlines()[0] if text else type(exc).__name__


def parse_vnnlib2(text: str, where: str = "<string>") -> Property:
    """Parse VNN-LIB 2.0 ``text``: one network, one input box, a robustness output constraint."""
    vnnlib = _vnnlib()
    try:
        query = vnnlib.parse_query_string(text)
        cases = vnnlib.compat.transform_to_compat(query)
    except vnnlib.VNNLibException as exc:
        raise BadInput(f"{where}: not a valid VNN-LIB 2.0 robustness file: {_error_line(exc)}") from None
    except (IndexError, OverflowError):  # the C++ parser's std::out_of_range ("stod") on a huge literal
        raise BadInput(f"{where}:{_huge_number_line(text)}: a number is beyond float64 (infinite): "
                       "box bounds must be finite float32 numbers (|value| < 3.4e38)") from None
    if len(query.networks) != 1 or len(cases) != 1:
        raise BadInput(f"{where}: expected one network and one input box, found {len(query.networks)} "
                       f"network(s) and {len(cases)} case(s): graftonnx reads single-box robustness properties"
                       + (" (0 cases: is some lower bound above its upper bound?)" if not cases else ""))
    box = np.asarray(cases[0].input_box, dtype=np.float64).reshape(-1, 2)
    _check_box(box, where)
    n_out = math.prod(query.networks[0].outputs[0].shape)
    label = _label_of(cases[0].output_constraints, n_out)
    if label is None:
        raise BadInput(f"{where}: non-standard output constraint: graftonnx reads robustness properties "
                       "(or (>= Y[j] Y[label]) ...) over every other class j only")
    return Property(box[:, 0] + 0.0, box[:, 1] + 0.0, label, int(n_out))  # + 0.0 turns -0.0 into 0.0


def _huge_number_line(text: str) -> str:
    """The line of the first literal that overflows a double ("?" if none is found)."""
    for n, line in enumerate(text.splitlines(), 1):
        for tok in re.findall(r"(?<![\w\[,])-?\d+(?:\.\d*)?", line.split(";", 1)[0]):
            if math.isinf(float(tok)):
                return str(n)
    return "?"


def _check_box(box: np.ndarray, where: str) -> None:
    """Finite float32 bounds, lower <= upper; the compat form has no lines, so the flat X index is named."""
    for i, (lo, hi) in enumerate(box.tolist()):
        for side, v in (("lower", lo), ("upper", hi)):
            problem = bound_problem(v)
            if problem:
                raise BadInput(f"{where}: the {side} bound {v} of input {i} (flat X index) {problem}: "
                               "give a finite number with |value| < 3.4e38 (inputs are float32)")
        if lo > hi:
            raise BadInput(f"{where}: the box of input {i} (flat X index) is empty ({lo} > {hi}): fix its bounds")


def _label_of(polytopes: Sequence[object], n_out: int) -> int | None:
    """The label when every polytope is one row ``Y_label - Y_j <= 0`` and the j cover all others."""
    pairs = []
    for poly in polytopes:
        a = np.asarray(poly.coeff_matrix, dtype=np.float64)  # type: ignore[attr-defined]
        b = np.asarray(poly.rhs, dtype=np.float64)  # type: ignore[attr-defined]
        if a.shape != (1, n_out) or b.shape != (1,) or b[0] != 0:
            return None
        pos, neg = np.flatnonzero(a[0] == 1.0), np.flatnonzero(a[0] == -1.0)
        if len(pos) != 1 or len(neg) != 1 or np.count_nonzero(a[0]) != 2:
            return None
        pairs.append((int(neg[0]), int(pos[0])))
    labels = {lab for _, lab in pairs}
    if len(labels) != 1:
        return None
    label = labels.pop()
    return label if sorted(j for j, _ in pairs) == [j for j in range(n_out) if j != label] else None
