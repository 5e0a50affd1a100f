"""Two process-level fixes for the verifiers graftonnx drives, and the launcher that applies them.

1. **α-CROWN on torch ≥ 2.14**: a ``torch.clamp`` whose gradient includes the bounds.

Why: auto_LiRPA (0.6.0 inside neuralsat, 0.7.0 inside α,β-CROWN) initialises every α slope
at exactly 0 or 1 and reads it through ``torch.clamp(alpha, 0, 1)``.  Up to torch 2.13 the
gradient of clamp *at* a bound is 1; from 2.14 it is 0, so every α gradient is 0 and
CROWN-Optimized silently returns CROWN's bound.  :func:`inclusive_clamp` computes the same
values with the 2.13 gradient (1 inside *and on* the bounds, 0 outside).

2. **α,β-CROWN's BaBSR fallback** (Dec 2025 release): when BaBSR's best score lies in the
   first split layer (``sparsest_layer=0``) or is below its threshold, and the intercept
   fallback is used up, ``heuristics/babsr.py`` picks a random layer from
   ``self.net.split_indices``, an attribute ``LiRPANet`` no longer has (its own FIXME in
   ``heuristics/base.py``): ``AttributeError`` ends the run.  Measured here on ungrafted and
   grafted MNIST MLPs alike.  :func:`shim_abcrown` gives ``LiRPANet`` that attribute as the
   list of split nodes it stands for, so the random fallback runs as intended.

This file is deliberately standalone (torch and the standard library only): it runs as a
launcher inside verifiers' own interpreters, which may not have graftonnx installed::

    python verifier_shims.py SCRIPT [ARGS...]   # NeuralSAT's main.py or α,β-CROWN's abcrown.py

installs fix 1 process-wide when the running torch needs it, fix 2 when SCRIPT is
``abcrown.py``, then runs SCRIPT as ``__main__`` with ``sys.argv = [SCRIPT, ARGS...]``.  In
graftonnx's own process fix 1 is applied only to auto_LiRPA's modules (``graftonnx._lirpa``),
never to torch itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import runpy
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["clamp_gradient_frozen", "inclusive_clamp", "install", "torch_view", "shim_abcrown", "LAUNCHER"]

#: This file, to run as ``python LAUNCHER SCRIPT ARGS...``.
LAUNCHER = Path(__file__).resolve()
_state: dict[str, Any] = {}


def clamp_gradient_frozen() -> bool:
    """True when this torch gives ``clamp(x, 0, 1)`` a zero gradient at x = 0 and x = 1 (torch ≥ 2.14)."""
    if "frozen" not in _state:
        import torch

        x = torch.tensor([0.0, 1.0], requires_grad=True)
        with torch.enable_grad():
            _original_clamp()(x, 0.0, 1.0).sum().backward()
        _state["frozen"] = bool((x.grad == 0).all())
    return bool(_state["frozen"])


def _original_clamp() -> Any:
    import torch

    return _state.setdefault("clamp", torch.clamp)


def inclusive_clamp(input: Any, min: Any = None, max: Any = None, *, out: Any = None) -> Any:  # noqa: A002
    """``torch.clamp`` with torch 2.13's gradient: 1 where ``min <= input <= max``, 0 elsewhere.

    Forward values are bit-identical to ``torch.clamp`` (inside the range the input is
    returned as is).  Calls that cannot need the distinction (``out=``, no autograd, tensor
    bounds that themselves require grad) go straight to the original.
    """
    import torch

    clamp = _original_clamp()
    grad_bounds = any(isinstance(v, torch.Tensor) and v.requires_grad for v in (min, max))
    if out is not None or grad_bounds or not (torch.is_grad_enabled() and getattr(input, "requires_grad", False)):
        return clamp(input, min, max, out=out) if out is not None else clamp(input, min, max)
    inside = torch.ones_like(input, dtype=torch.bool)
    if min is not None:
        inside = inside & (input >= min)
    if max is not None:
        inside = inside & (input <= max)
    return torch.where(inside, input, clamp(input, min, max))


def torch_view() -> types.ModuleType:
    """A stand-in for the ``torch`` module whose ``clamp`` is :func:`inclusive_clamp` (everything else is torch)."""
    import torch

    class _View(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(torch, name)

    view = _View("torch")
    view.clamp = inclusive_clamp  # type: ignore[attr-defined]
    return view


def install() -> bool:
    """Replace ``torch.clamp`` process-wide when this torch froze its bound gradient; True if replaced."""
    import torch

    if not clamp_gradient_frozen() or torch.clamp is inclusive_clamp:
        return False
    _original_clamp()
    torch.clamp = inclusive_clamp  # type: ignore[assignment]
    return True


def shim_abcrown() -> bool:
    """Give α,β-CROWN's ``LiRPANet`` the ``split_indices`` its BaBSR fallback reads (fix 2); True if added.

    Call with α,β-CROWN's ``complete_verifier`` folder on ``sys.path``.
    """
    try:
        import beta_CROWN_solver  # α,β-CROWN's own module
    except ImportError:  # not an α,β-CROWN checkout this shim knows: nothing to mend
        return False
    net = getattr(beta_CROWN_solver, "LiRPANet", None)
    if net is None:
        return False
    if hasattr(net, "split_indices"):
        return False
    net.split_indices = property(lambda self: list(self.split_nodes))  # type: ignore[attr-defined]
    return True


class _AfterTorch(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs :func:`install` right after the verifier first imports torch (no cost for a run that never does)."""

    def __init__(self) -> None:
        self.spec: importlib.machinery.ModuleSpec | None = None

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name != "torch" or self.spec is not None:
            return None
        sys.meta_path.remove(self)
        self.spec = importlib.util.find_spec("torch")
        if self.spec is None or self.spec.loader is None:
            return None
        self.inner, self.spec.loader = self.spec.loader, self
        return self.spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.inner.create_module(spec)  # type: ignore[attr-defined,no-any-return]

    def exec_module(self, module: types.ModuleType) -> None:
        self.inner.exec_module(module)  # type: ignore[attr-defined]
        install()


def _launch(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python verifier_shims.py SCRIPT [ARGS...]")
    script = str(Path(argv[0]).resolve())
    sys.argv = [script, *argv[1:]]
    sys.path[0] = str(Path(script).parent)
    if "torch" in sys.modules:
        install()
    else:
        sys.meta_path.insert(0, _AfterTorch())
    if Path(script).name == "abcrown.py":
        shim_abcrown()
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    _launch(sys.argv[1:])
