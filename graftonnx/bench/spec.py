"""A local-robustness property as graftonnx reads and writes it (VNN-LIB 1.0 and 2.0).

Why one object: VNN-LIB 1.0 (α,β-CROWN, NeuralSAT) and 2.0 (VNN-COMP 2026) must
describe exactly the same input box and output constraint, and the verifier backends
and the counterexample check all reason about this object, not about file text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Property"]


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

    @property
    def n_inputs(self) -> int:
        return int(self.lower.size)

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
