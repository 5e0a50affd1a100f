"""L∞ attacks on raw pixels: FGSM with a random start (for training) and PGD with restarts (for evaluation).

Why both: fast adversarial training (Wong et al., 2020) needs one cheap gradient step
per batch, while robust accuracy must be measured with the strongest affordable attack
(PGD, many steps, several random restarts), as the paper does.  Both work on a batch,
clip to the valid pixel range ``[lo, hi]`` and take an explicit ``torch.Generator`` so a
fixed seed gives the same adversarial examples every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PgdConfig", "fgsm_rs", "pgd", "input_grad", "uniform_in_ball"]


@dataclass(frozen=True)
class PgdConfig:
    """PGD settings: ``steps`` sign-gradient steps of size ``step_size`` (default 2.5·ε/steps) per restart."""

    eps: float
    steps: int = 100
    restarts: int = 5
    step_size: float | None = None
    seed: int = 0

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / max(self.steps, 1)


def uniform_in_ball(x: torch.Tensor, eps: float, lo: float, hi: float,
                    generator: torch.Generator | None) -> torch.Tensor:
    """A uniform random point of the ε-ball around ``x``, clipped to ``[lo, hi]``."""
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * (2 * eps) - eps
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
    adv = start + alpha * grad.sign()
    return _project(adv, x, eps, lo, hi).detach()


def _project(adv: torch.Tensor, x: torch.Tensor, eps: float, lo: float, hi: float) -> torch.Tensor:
    return torch.max(torch.min(adv, x + eps), x - eps).clamp(lo, hi)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: PgdConfig, lo: float, hi: float
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD with random restarts; returns ``(x_adv, fooled)``.

    ``fooled[i]`` is True when some iterate (checked at every step, not only the last)
    is misclassified; ``x_adv[i]`` is then that iterate, otherwise the highest-loss
    endpoint.  Samples already fooled are not attacked again by later restarts, which
    makes several restarts cheap on a mostly non-robust batch.  Deterministic for a
    fixed ``cfg.seed``.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    x = x.detach()
    best = x.clone()
    best_loss = torch.full((len(x),), -float("inf"))
    fooled = torch.zeros(len(x), dtype=torch.bool)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max(cfg.restarts, 1)):
            idx = (~fooled).nonzero().flatten()
            if idx.numel() == 0:
                break
            _restart(model, x, y, idx, cfg, lo, hi, gen, best, best_loss, fooled)
    finally:
        model.train(was_training)
    return best, fooled


def _restart(model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, cfg: PgdConfig,
             lo: float, hi: float, gen: torch.Generator, best: torch.Tensor, best_loss: torch.Tensor,
             fooled: torch.Tensor) -> None:
    """One PGD run from a random start on the samples ``idx``; updates best/best_loss/fooled in place."""
    x0, y0 = x[idx], y[idx]
    cur = uniform_in_ball(x0, cfg.eps, lo, hi, gen)
    active = torch.ones(len(idx), dtype=torch.bool)
    for step in range(cfg.steps + 1):
        grad, logits = input_grad(model, cur, y0)
        with torch.no_grad():
            loss = F.cross_entropy(logits, y0, reduction="none")
            wrong = (logits.argmax(1) != y0) & active
            if wrong.any():
                hit = idx[wrong]
                best[hit] = cur[wrong]
                fooled[hit] = True
                active &= ~wrong
            better = active & (loss > best_loss[idx])
            if better.any():
                best[idx[better]] = cur[better]
                best_loss[idx[better]] = loss[better]
            if step == cfg.steps or not active.any():
                return
            cur = _project(cur + cfg.alpha * grad.sign(), x0, cfg.eps, lo, hi)
