"""One seeded PGD on a per-coordinate box: robust accuracy and the verifier's counterexample search.

Why one: RA (``evaluate``, finetune validation), ``export --skip attacked`` and the lirpa
backend all ask the same question of a box ``[lo, hi]`` (a VNN-LIB property; the clipped
ε-ball is :func:`pgd`).  Sign steps, success checked at every step, random starts from a
``torch.Generator`` seeded from ``seed`` (drawn on the CPU, so CUDA gets the same starts).
Torch only, so the verifier imports no training.
Step ``(hi − lo)/8`` per coordinate whatever the step count: measured stronger than the old
RA rule 2.5·ε/steps and than 1.25·(hi − lo)/steps (benchmarks/bench_pgd.py; numbers in
specs/formats-vnnlib.md, "PGD").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PgdConfig", "pgd", "pgd_box", "ball", "project"]


@dataclass(frozen=True)
class PgdConfig:
    """``steps`` sign steps per run, ``restarts`` runs; ``step_size`` (pixel units) overrides ``(hi − lo)/8``.

    ``clean_start``: run 0 starts at the point itself (a property's box centre).  ``ce``
    ascends the cross-entropy, success ``argmax ≠ y``; ``margin`` ascends ``max_{j≠y} z_j − z_y``,
    success at ≥ 0 (a VNN-LIB counterexample is ``Y_j ≥ Y_label``).
    """

    eps: float = 0.0
    steps: int = 100
    restarts: int = 5
    step_size: float | None = None
    seed: int = 0
    loss: str = "ce"
    clean_start: bool = False

    def __post_init__(self) -> None:
        if self.loss not in ("ce", "margin"):
            raise ValueError(f"PgdConfig.loss must be 'ce' or 'margin', got {self.loss!r}")

    def step(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor | float:
        """The sign-step length, per coordinate of the box: ``step_size``, else ``(hi − lo)/8``."""
        return self.step_size if self.step_size is not None else (hi - lo) / 8


def ball(x: torch.Tensor, eps: float, lo: float, hi: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The ε-ball around ``x`` clipped to the pixel range, as a per-coordinate box."""
    return (x - eps).clamp_min(lo), (x + eps).clamp_max(hi)


def project(adv: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``adv`` clipped into the box ``[lo, hi]`` per coordinate."""
    return torch.minimum(torch.maximum(adv, lo), hi)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: PgdConfig, lo: float, hi: float
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD in the ε-ball (``cfg.eps``) around ``x`` clipped to the pixel range ``[lo, hi]``."""
    return pgd_box(model, x, y, *ball(x.detach(), cfg.eps, lo, hi), cfg)


def pgd_box(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
            cfg: PgdConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD with restarts in the per-sample box ``[lo, hi]`` (shaped like ``x``); returns ``(x_adv, fooled)``.

    ``fooled[i]`` is True when some iterate (checked at every step, not only the last)
    succeeds; ``x_adv[i]`` is then that iterate, otherwise the highest-loss endpoint.
    Samples already fooled are not attacked again by later restarts, which makes several
    restarts cheap on a mostly non-robust batch.  ``cfg.eps`` is not used here.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    x, lo, hi = x.detach(), lo.detach(), hi.detach()
    best = x.clone()
    best_loss = torch.full((len(x),), -float("inf"), device=x.device)
    fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    was_training = model.training
    model.eval()
    try:
        for run in range(max(cfg.restarts, 1)):
            idx = (~fooled).nonzero().flatten()
            if idx.numel() == 0:
                break
            lo_i, hi_i = lo[idx], hi[idx]
            start = x[idx] if cfg.clean_start and run == 0 else \
                lo_i + (hi_i - lo_i) * torch.rand(lo_i.shape, generator=gen, dtype=x.dtype).to(x.device)
            _run(model, start, y, idx, lo_i, hi_i, cfg, best, best_loss, fooled)
    finally:
        model.train(was_training)
    return best, fooled


def _objective(logits: torch.Tensor, y: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample objective to ascend and the success mask."""
    logits = logits.reshape(len(y), -1)
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="none"), logits.argmax(1) != y
    own = logits.gather(1, y[:, None])[:, 0]
    margin = logits.scatter(1, y[:, None], -float("inf")).max(1).values - own
    return margin, margin >= 0


def _run(model: nn.Module, cur: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, lo: torch.Tensor,
         hi: torch.Tensor, cfg: PgdConfig, best: torch.Tensor, best_loss: torch.Tensor, fooled: torch.Tensor) -> None:
    """One PGD run from ``cur`` on the samples ``idx``; updates best/best_loss/fooled in place."""
    y0, step = y[idx], cfg.step(lo, hi)
    active = torch.ones(len(idx), dtype=torch.bool, device=cur.device)
    for i in range(cfg.steps + 1):
        cur = cur.detach().requires_grad_(True)
        loss, wrong = _objective(model(cur), y0, cfg.loss)
        (grad,) = torch.autograd.grad(loss.sum(), cur)
        with torch.no_grad():
            wrong &= active
            if wrong.any():
                best[idx[wrong]] = cur[wrong]
                fooled[idx[wrong]] = True
                active &= ~wrong
            better = active & (loss > best_loss[idx])
            if better.any():
                best[idx[better]] = cur[better]
                best_loss[idx[better]] = loss[better]
            if i == cfg.steps or not active.any():
                return
            cur = project(cur + step * grad.sign(), lo, hi)
