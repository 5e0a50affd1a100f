"""One parity checker for every rewrite and converter test.

Why shared: each converter and each graph pass must be checked the same way — run the
reference and the candidate on random *and* real inputs and compare the largest
absolute difference — so the tolerance and the input sampling live in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

__all__ = ["ParityReport", "ort_callable", "compare", "assert_parity", "random_inputs"]

Fn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ParityReport:
    max_abs_diff: float
    n_inputs: int
    worst_index: int

    def ok(self, atol: float) -> bool:
        return self.max_abs_diff <= atol


def ort_callable(model: onnx.ModelProto, output: int = 0, batch_size: int = 256) -> Fn:
    """Wrap a model as ``x -> output`` in onnxruntime (batch axis made dynamic)."""
    from .model.runtime import OrtRunner

    runner = OrtRunner(model, batch_size=batch_size)
    name = runner.output_names[output]
    return lambda x: runner.run(x)[name]


def random_inputs(shape: tuple[int, ...], n: int, lo: float = 0.0, hi: float = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` uniform samples of per-sample ``shape`` in [lo, hi] (float32)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, size=(n, *shape)).astype(np.float32)


def compare(reference: Fn, candidate: Fn, x: np.ndarray) -> ParityReport:
    """Largest absolute output difference of two callables over the batch ``x``."""
    a = np.asarray(reference(x), dtype=np.float64)
    b = np.asarray(candidate(x), dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"output shapes differ: {a.shape} vs {b.shape}")
    diff = np.abs(a - b).reshape(len(x), -1).max(axis=1) if len(x) else np.zeros(0)
    worst = int(diff.argmax()) if diff.size else 0
    return ParityReport(float(diff.max()) if diff.size else 0.0, len(x), worst)


def assert_parity(reference: Fn, candidate: Fn, x: np.ndarray, atol: float = 1e-6) -> ParityReport:
    """Raise AssertionError (with the worst input index) when outputs differ by more than ``atol``."""
    rep = compare(reference, candidate, x)
    if not rep.ok(atol):
        raise AssertionError(f"parity failed: max |diff| = {rep.max_abs_diff:.3g} > {atol:g} "
                             f"(worst input #{rep.worst_index} of {rep.n_inputs})")
    return rep
