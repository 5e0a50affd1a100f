"""A local-robustness property as graftonnx reads and writes it (VNN-LIB 1.0 and 2.0).

Why one object: VNN-LIB 1.0 (α,β-CROWN, NeuralSAT) and 2.0 (VNN-COMP 2026) must
describe exactly the same input box and output constraint, and the verifier backends
and the counterexample check all reason about this object, not about file text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import BadInput

__all__ = ["Property", "bound_problem", "F32_MAX"]

#: The largest finite float32: model inputs, hence box bounds, are float32.
F32_MAX = 3.4028234663852886e38


def bound_problem(value: float) -> str | None:
    """Why ``value`` cannot be a box bound (NaN, infinite, beyond float32), or None.

    Why float32: a bound like 1e400 (inf) or 1e39 becomes inf in the float32 input,
    and a verifier then answers ``unknown`` for a property nobody meant to ask.
    """
    v = float(value)
    if math.isnan(v):
        return "is NaN"
    if math.isinf(v):
        return "is infinite"
    return "overflows float32" if abs(v) > F32_MAX else None


@dataclass(frozen=True, eq=False)
class Property:
    """Input box ``lower <= X <= upper`` (flat, model input order) and the *negated* property.

    ``unsafe`` is a disjunction of conjunctions: the property is violated (``sat``) when
    for some clause every row ``c`` of that clause satisfies ``c[:-1] @ Y + c[-1] <= 0``...
    kept simple for robustness: ``label`` and ``n_classes`` give the standard clause set
    "some other class j has Y_j >= Y_label".
    """

    lower: np.ndarray
    upper: np.ndarray
    label: int
    n_classes: int

    def __post_init__(self) -> None:
        """Refuse a box no file may hold: readers report file and line first, this guards writers."""
        for side, values in (("lower", self.lower), ("upper", self.upper)):
            v = np.asarray(values, dtype=np.float64).ravel()
            bad = np.flatnonzero(~(np.abs(v) <= F32_MAX))
            if bad.size:
                i = int(bad[0])
                raise BadInput(f"property {side} bound of X_{i} = {v[i]} {bound_problem(v[i])}: "
                               "box bounds must be finite float32 numbers")
        empty = np.flatnonzero(np.asarray(self.lower, np.float64).ravel() > np.asarray(self.upper, np.float64).ravel())
        if empty.size:
            i = int(empty[0])
            raise BadInput(f"property box of X_{i} is empty (lower {self.lower.ravel()[i]} > upper "
                           f"{self.upper.ravel()[i]}): fix the bounds")

    @classmethod
    def linf_ball(cls, x: np.ndarray, eps: float, label: int, n_classes: int,
                  input_range: tuple[float, float] = (0.0, 1.0)) -> Property:
        """The L∞ ball of radius ``eps`` around ``x`` (flattened), clipped to ``input_range``.

        Why float32 bounds: ONNX inputs are float32, and a float32 value written as the
        shortest decimal of its double reads back bit-exactly in both VNN-LIB versions,
        so the 1.0 and 2.0 files of one property describe *exactly* the same box.
        """
        if not (math.isfinite(eps) and eps >= 0):
            raise BadInput(f"eps {eps} is invalid: give a finite radius >= 0 (e.g. --eps 0.02)")
        if not 0 <= int(label) < int(n_classes):
            raise BadInput(f"label {label} is outside the {n_classes} classes: check the dataset labels")
        lo, hi = float(input_range[0]), float(input_range[1])
        flat = np.asarray(x, dtype=np.float64).ravel()
        lower = np.clip(flat - eps, lo, hi).astype(np.float32)
        upper = np.clip(flat + eps, lo, hi).astype(np.float32)
        return cls(lower, upper, int(label), int(n_classes))

    @property
    def n_inputs(self) -> int:
        return int(self.lower.size)

    def output_polytopes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The negated property as a disjunction of polytopes ``A @ Y <= b`` (VNN-LIB compat form).

        One single-row polytope per other class j: ``Y_label - Y_j <= 0``, i.e. ``Y_j >= Y_label``.
        """
        out = []
        for j in range(self.n_classes):
            if j != self.label:
                row = np.zeros((1, self.n_classes))
                row[0, self.label], row[0, j] = 1.0, -1.0
                out.append((row, np.zeros(1)))
        return out

    def same_as(self, other: Property) -> bool:
        """Same box (exact float comparison) and the same output constraint."""
        return bool(self.label == other.label and self.n_classes == other.n_classes
                    and self.lower.shape == other.lower.shape and self.upper.shape == other.upper.shape
                    and np.array_equal(self.lower, other.lower) and np.array_equal(self.upper, other.upper))

    def violated_by(self, logits: np.ndarray) -> bool:
        """True when ``logits`` satisfy the negated property (a counterexample's outputs)."""
        y = np.asarray(logits, dtype=np.float64).ravel()
        others = [j for j in range(self.n_classes) if j != self.label]
        return bool(np.any(y[others] >= y[self.label]))

    def contains(self, x: np.ndarray, tol: float = 1e-4) -> bool:
        """True when ``x`` (any shape, flattened) lies in the input box up to ``tol``."""
        flat = np.asarray(x, dtype=np.float64).ravel()
        inside = np.all(flat >= self.lower - tol) and np.all(flat <= self.upper + tol)
        return bool(flat.size == self.n_inputs and inside)
