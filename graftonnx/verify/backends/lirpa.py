"""auto_LiRPA (embedded, CPU or CUDA, incomplete): IBP, CROWN or α-CROWN on the margins, plus an attack.

Why incomplete is still useful: one bound pass per instance costs milliseconds to
seconds, which is exactly the quantity grafting improves (fewer unstable ReLUs → tighter
bounds).  ``unsat`` when the lower bound of every margin ``Y_label − Y_j`` is positive;
``sat`` only for a point a PGD/random attack found *and* onnxruntime confirms;
``unknown`` otherwise.  auto_LiRPA is reached only through :mod:`graftonnx._lirpa`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx
import torch

from ..._lirpa import LirpaModel, auto_lirpa, lirpa_model
from ...bench.spec import Property
from ...bench.vnnlib import read_vnnlib
from ...device import device_knob, resolve
from ...errors import BadInput
from ...model.handle import open_model
from ...settings import Settings, knob
from ..cexcheck import cex_problem, onnx_logits
from ..result import Counterexample, Result, Verdict
from .base import BACKENDS, base_result

__all__ = ["LirpaBackend", "LirpaOptions", "LIRPA_VERIFY_METHODS", "margin_lower_bounds", "pgd_attack", "bound_methods",
           "certified_margin", "verification_model"]

#: CLI name → auto_LiRPA ``compute_bounds`` method.
LIRPA_VERIFY_METHODS = {"ibp": "IBP", "crown": "CROWN", "alpha-crown": "CROWN-Optimized"}
_VERIFY_OPTS = {"optimize_bound_args": {"iteration": 20, "lr_alpha": 0.1, "early_stop_patience": 5}}


def verification_model(model: onnx.ModelProto, device: torch.device | None = None) -> LirpaModel:
    """An in-memory model traced with the verifier's α-CROWN options (what :func:`_net` gives for a file)."""
    return lirpa_model(model, _VERIFY_OPTS, device)


def _net(onnx_path: str | os.PathLike[str], device: torch.device | None = None) -> LirpaModel:
    """The model traced for verification, once per model file and process (a benchmark reuses one model many times).

    The bounded module comes from :func:`graftonnx._lirpa.lirpa_model`, the one place that
    knows how to drive auto_LiRPA soundly: the input prefix (normalisation, layout ops) is
    applied to the box exactly, the conv mode fits the graph (grafted conv nets need
    ``matrix``) and CROWN is intersected with IBP.  The α-CROWN options are given there,
    so this module is not the one scoring uses (which keeps auto_LiRPA's defaults).
    """
    return lirpa_model(open_model(onnx_path), _VERIFY_OPTS, device)  # open_model names nodes: sites match by name


def bound_methods(method: str) -> list[str]:
    """auto_LiRPA methods run in order for ``method``: α-CROWN starts from CROWN's relaxation, so CROWN
    runs first and the optimisation only when CROWN does not prove the property."""
    return ["CROWN", "CROWN-Optimized"] if method == "alpha-crown" else [LIRPA_VERIFY_METHODS[method]]


def certified_margin(net: LirpaModel, prop: Property, method: str) -> float:
    """The smallest margin lower bound ``method`` proves over the property's box (> 0: verified)."""
    worst = -float("inf")
    for m in bound_methods(method):
        worst = float(margin_lower_bounds(net, prop, m).min())
        if worst > 0:
            break
    return worst


def _margin_matrix(prop: Property) -> torch.Tensor:
    """C with rows ``e_label − e_j`` (j ≠ label): ``C @ y`` are the margins that must stay positive."""
    others = [j for j in range(prop.n_classes) if j != prop.label]
    c = torch.zeros((1, len(others), prop.n_classes))  # on the CPU: callers move it
    for row, j in enumerate(others):
        c[0, row, prop.label], c[0, row, j] = 1.0, -1.0
    return c


def margin_lower_bounds(net: LirpaModel, prop: Property, method: str) -> np.ndarray:
    """Lower bounds of ``Y_label − Y_j`` for every j ≠ label over the property's box."""
    lirpa = auto_lirpa()
    shape = (1, *net.full.input_shape)
    lo, hi = net.box(prop.lower.reshape(shape), prop.upper.reshape(shape))
    x = lirpa.BoundedTensor((lo + hi) / 2, lirpa.PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi))
    grad = torch.enable_grad() if method == "CROWN-Optimized" else torch.no_grad()
    with grad:
        lb, _ = net.module.compute_bounds(x=(x,), C=_margin_matrix(prop).to(net.device), method=method,
                                          bound_upper=False)
    return lb.detach().cpu().numpy().ravel()


def pgd_attack(model: torch.nn.Module, prop: Property, input_shape: tuple[int, ...], steps: int = 40,
               restarts: int = 4, seed: int = 0) -> np.ndarray | None:
    """A flat point in the box where torch says some other class scores ≥ the label, or None.

    The shared :func:`graftonnx.attack.pgd_box` on the margin: box centre, then ``restarts`` random starts.
    """
    from ...attack import PgdConfig, pgd_box
    from ...device import module_device

    dev = module_device(model)
    lo = torch.from_numpy(prop.lower.astype(np.float32)).reshape((1, *input_shape)).to(dev)
    hi = torch.from_numpy(prop.upper.astype(np.float32)).reshape((1, *input_shape)).to(dev)
    cfg = PgdConfig(steps=steps, restarts=restarts + 1, seed=seed, loss="margin", clean_start=True)
    x, fooled = pgd_box(model, (lo + hi) / 2, torch.tensor([prop.label], device=dev), lo, hi, cfg)
    return x.cpu().numpy().ravel().astype(np.float64) if bool(fooled[0]) else None


@dataclass(frozen=True)
class LirpaOptions(Settings):
    """The lirpa backend's knobs."""

    method: str = knob("crown", "lirpa: bound method (ibp, crown, or alpha-crown after CROWN).",
                       choices=tuple(LIRPA_VERIFY_METHODS))
    device: str = device_knob(runtime=False)


@BACKENDS.register("lirpa")
@dataclass(frozen=True)
class LirpaBackend:
    """Incomplete verification in-process; ``method`` is ibp, crown or alpha-crown."""

    method: str = "crown"
    device: str = "auto"
    name: str = "lirpa"
    Options: ClassVar[type] = LirpaOptions

    @property
    def parallel_ok(self) -> bool:  # worker processes on one GPU would compete for it
        return resolve(self.device).type == "cpu"

    def __post_init__(self) -> None:
        LirpaOptions(self.method, self.device)  # the same check as the flag's

    @classmethod
    def from_options(cls, opts: LirpaOptions) -> LirpaBackend:
        resolve(opts.device)  # cuda without a GPU: one line before any instance runs
        return cls(method=opts.method, device=opts.device)

    def verify(self, onnx_path: Path, vnnlib_path: Path, timeout: float, workdir: Path) -> Result:
        t0 = time.monotonic()
        prop = read_vnnlib(vnnlib_path)
        p = Path(onnx_path)
        net = _net(p, resolve(self.device))
        shape = tuple(net.full.input_shape)

        def res(verdict: Verdict, message: str, cex: Counterexample | None = None) -> Result:
            return base_result(self.name, p, Path(vnnlib_path), verdict, time.monotonic() - t0, message=message,
                               counterexample=cex)

        if prop.n_inputs != int(np.prod(shape)):
            raise BadInput(f"{vnnlib_path} has {prop.n_inputs} inputs but {p} takes {int(np.prod(shape))}: "
                           "pair each model with its own properties")
        for method in bound_methods(self.method):
            worst = float(margin_lower_bounds(net, prop, method).min())
            if worst > 0:
                return res(Verdict.UNSAT, f"{self.method}: min margin lower bound {worst:.4g} > 0")
            if time.monotonic() - t0 > timeout:
                return res(Verdict.TIMEOUT, f"{self.method} bounds took longer than {timeout:g} s")
        x = pgd_attack(net.full, prop, shape)
        if x is not None and cex_problem(p, prop, Counterexample(tuple(x), ())) is None:
            y = onnx_logits(p, x)
            return res(Verdict.SAT, "PGD attack found a counterexample", Counterexample(tuple(x), tuple(map(float, y))))
        return res(Verdict.UNKNOWN, f"{self.method}: min margin lower bound {worst:.4g} <= 0 and no attack succeeded")
