"""Initial lines for grafted units: the paper's constant, or a least-squares fit.

``const``: a = 0.4, b = 0 (the paper).  ``fit``: per unit, the least-squares line through
ReLU over the pre-activations seen on the data, so grafting *before* finetuning loses as
little accuracy as possible — exact (a = 1, b = 0 or a = b = 0) for units that are
always active or always inactive on the data.  ``zero``: a = b = 0 (the pruning baseline).
Sigmoid/Tanh units get :func:`fit_smooth_lines`, the same least squares through their activation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import BadInput
from ..model.ops import SMOOTH_FUNCTIONS
from ..registry import Registry

__all__ = ["INITS", "fit_lines", "fit_smooth_lines", "CONST_SLOPE"]

CONST_SLOPE = 0.4

#: init name → ``fn(z, n_units) -> (a, b)``; ``z`` are observed pre-activations (N, units, k)
#: (k positions per unit: 1 for neurons, H·W for channels) or None when not needed.
InitFn = Callable[[np.ndarray | None, int], tuple[np.ndarray, np.ndarray]]
INITS: Registry[InitFn] = Registry("init")


@INITS.register("const")
def _const(z: np.ndarray | None, units: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full(units, CONST_SLOPE), np.zeros(units)


@INITS.register("zero")
def _zero(z: np.ndarray | None, units: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(units), np.zeros(units)


@INITS.register("fit")
def fit_lines(z: np.ndarray | None, units: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``a, b`` minimising Σ (a·z + b − relu(z))² per unit."""
    if z is None:
        raise ValueError("fit init needs observed pre-activations")
    zz = np.moveaxis(np.asarray(z, np.float64), 1, 0).reshape(units, -1)
    r = np.maximum(zz, 0.0)
    mz, mr = zz.mean(axis=1), r.mean(axis=1)
    var = (zz * zz).mean(axis=1) - mz * mz
    cov = (zz * r).mean(axis=1) - mz * mr
    flat = var <= 1e-12 * np.maximum(1.0, mz * mz)
    a = np.where(flat, (mz > 0).astype(np.float64), cov / np.where(flat, 1.0, var))
    a = np.clip(a, 0.0, 1.0)  # the least-squares slope through ReLU lies in [0, 1]; clip rounding
    b = mr - a * mz
    return a, b


def fit_smooth_lines(z: np.ndarray, op: str) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``a, b`` per unit minimising Σ (a·z + b − act(z))²; ``z`` is (N, units, k).

    A unit whose pre-activation never varies gets a = 0, b = act(z) (exact on the data).
    """
    if op not in SMOOTH_FUNCTIONS:
        raise BadInput(f"activation {op} has no smooth grafting: only Sigmoid and Tanh")
    zz = np.moveaxis(np.asarray(z, np.float64), 1, 0).reshape(z.shape[1], -1)
    r = SMOOTH_FUNCTIONS[op](zz)
    mz, mr = zz.mean(axis=1), r.mean(axis=1)
    var = (zz * zz).mean(axis=1) - mz * mz
    cov = (zz * r).mean(axis=1) - mz * mr
    flat = var <= 1e-12 * np.maximum(1.0, mz * mz)
    a = np.where(flat, 0.0, cov / np.where(flat, 1.0, var))
    return a, mr - a * mz
