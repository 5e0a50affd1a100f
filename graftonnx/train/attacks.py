"""L∞ attacks for training: FGSM from a random start and the input gradient GradAlign needs.

Why FGSM here: fast adversarial training (Wong et al., 2020) needs one cheap gradient
step per batch; robust accuracy is measured with the strongest affordable attack, the
shared PGD of :mod:`graftonnx.attack`, whose ε-ball and projection FGSM reuses.  Every
function takes an explicit ``torch.Generator`` so a fixed seed gives the same examples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attack import ball, project

__all__ = ["fgsm_rs", "input_grad", "uniform_in_ball"]


def uniform_in_ball(x: torch.Tensor, eps: float, lo: float, hi: float,
                    generator: torch.Generator | None) -> torch.Tensor:
    """A uniform random point of the ε-ball around ``x``, clipped to ``[lo, hi]``."""
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device) * (2 * eps) - eps  # CPU draw
    return (x + noise).clamp(lo, hi)


def input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the summed cross-entropy w.r.t. the input, and the logits at ``x``.

    ``create_graph=True`` keeps the graph so a regulariser on the gradient (GradAlign)
    can be backpropagated into the weights.
    """
    x = x.detach().clone().requires_grad_(True)
    logits = model(x)
    loss = F.cross_entropy(logits, y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x, create_graph=create_graph)
    return grad, logits


def fgsm_rs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, lo: float, hi: float,
            step: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """FGSM from a random start (step ≈ 1.25·ε), projected back to the ε-ball and ``[lo, hi]``."""
    alpha = 1.25 * eps if step is None else step
    start = uniform_in_ball(x, eps, lo, hi, generator)
    grad, _ = input_grad(model, start, y)
    return project(start + alpha * grad.sign(), *ball(x, eps, lo, hi)).detach()
