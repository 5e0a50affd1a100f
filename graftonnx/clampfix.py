"""Keep α-CROWN alive on torch ≥ 2.14: a ``torch.clamp`` whose gradient includes the bounds.

Why: auto_LiRPA (0.6.0 inside neuralsat, 0.7.0 inside α,β-CROWN) initialises every α slope
at exactly 0 or 1 and reads it through ``torch.clamp(alpha, 0, 1)``.  Up to torch 2.13 the
gradient of clamp *at* a bound is 1; from 2.14 it is 0, so every α gradient is 0 and
CROWN-Optimized silently returns CROWN's bound.  :func:`inclusive_clamp` computes the same
values with the 2.13 gradient (1 inside *and on* the bounds, 0 outside).

This file is deliberately standalone (torch and the standard library only): it also runs as
a launcher inside verifiers' own interpreters, which may not have graftonnx installed::

    python clampfix.py SCRIPT [ARGS...]   # e.g. NeuralSAT's main.py or α,β-CROWN's abcrown.py

installs the fix process-wide when the running torch needs it, then runs SCRIPT as
``__main__`` with ``sys.argv = [SCRIPT, ARGS...]``.  In graftonnx's own process the fix is
applied only to auto_LiRPA's modules (see ``graftonnx._lirpa``), never to torch itself.
"""

from __future__ import annotations

import runpy
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["clamp_gradient_frozen", "inclusive_clamp", "install", "torch_view", "LAUNCHER"]

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


def _launch(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python clampfix.py SCRIPT [ARGS...]")
    script = str(Path(argv[0]).resolve())
    install()
    sys.argv = [script, *argv[1:]]
    sys.path[0] = str(Path(script).parent)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    _launch(sys.argv[1:])
