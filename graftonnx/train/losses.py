"""The per-batch training loss: FAT + GradAlign, or distillation from a teacher, plus RS and IBP terms.

Why these terms (training.md has the full argument):

* **FAT + GradAlign** (the paper's recipe): cross-entropy at an FGSM-RS example plus
  ``λ·(1 − cos)`` between input gradients at the clean point and at a random ball point.
* **Teacher** (``--teacher``): the grafted network should compute what the original did,
  so the targets are the original's temperature-scaled soft logits, ``T·KL`` at the clean
  input and at the FGSM-RS example (each matched against the teacher *at that input*),
  averaged, mixed ``(1 − h) : h`` (``h = teacher_hard``) with the FAT cross-entropy at the
  FGSM-RS example against the teacher's clean top-1 (soft targets alone recover accuracy several times slower from a
  badly grafted start: benchmarks/results/teacher.md); the attack and GradAlign use those
  labels too.  No label of the data is read.
* **RS** (Xiao et al., 2019): ``−tanh(1 + l·u)`` averaged over the units that are still
  ReLUs (grafted units are masked out), on interval bounds over the ε-ball: it rewards
  neurons whose bounds do not straddle zero, which is exactly UNR.
* **IBP** (Gowal et al., 2018): cross-entropy of the worst-case margins ``z_y − z_j`` over
  the ball, bounded through the last Gemm at once (elision) when the logits come from one.

The radius of RS and IBP is ``bound_eps`` (ramped by the loop over ``bound_warmup``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .attacks import fgsm_rs, input_grad, uniform_in_ball
from .augment import Augmenter
from .config import TrainConfig
from .interval import IntervalNet, NetBounds

__all__ = ["Aids", "BatchLoss", "fat_loss", "batch_loss", "rs_loss", "ibp_loss", "distill_kl"]


@dataclass(frozen=True, eq=False)
class Aids:
    """What some loss terms need besides the model: the teacher, the interval net, the augmenter."""

    teacher: nn.Module | None = None
    interval: IntervalNet | None = None
    augment: Augmenter | None = None


@dataclass(frozen=True, eq=False)
class BatchLoss:
    """The loss to minimise, the clean and adversarial logits, the targets and each term's value."""

    loss: torch.Tensor
    clean: torch.Tensor
    adv: torch.Tensor
    target: torch.Tensor
    terms: dict[str, float] = field(default_factory=dict)


def _grad_align(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, lo: float, hi: float,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``λ·(1 − cos(∇ₓ at x, ∇ₓ at a random ball point))`` and the clean logits."""
    g_clean, clean_logits = input_grad(model, x, y)
    g_rand, _ = input_grad(model, uniform_in_ball(x, cfg.eps, lo, hi, gen), y, create_graph=True)
    cos = F.cosine_similarity(g_clean.flatten(1), g_rand.flatten(1), dim=1)
    return cfg.grad_align * (1.0 - cos.mean()), clean_logits


def fat_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, lo: float, hi: float,
             gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``CE(f(x_fgsm), y) + λ·(1 − cos(∇ₓ at x, ∇ₓ at a random ball point))``; also clean and train logits.

    With ``eps == 0`` it is plain cross-entropy on ``x`` (clean training).
    """
    if cfg.eps == 0:
        logits = model(x)
        return F.cross_entropy(logits, y), logits.detach(), logits.detach()
    x_adv = fgsm_rs(model, x, y, cfg.eps, lo, hi, cfg.fgsm_alpha, gen)
    adv_logits = model(x_adv)
    loss = F.cross_entropy(adv_logits, y)
    if cfg.grad_align > 0:
        reg, clean_logits = _grad_align(model, x, y, cfg, lo, hi, gen)
        loss = loss + reg
    else:
        with torch.no_grad():
            clean_logits = model(x)
    return loss, clean_logits.detach(), adv_logits.detach()


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T·KL(softmax(teacher/T) ‖ softmax(student/T))``, batch mean.

    The factor is ``T``, not Hinton's ``T²``: its gradient w.r.t. the student's logits is
    ``softmax(s/T) − softmax(t/T)``, bounded like cross-entropy's at every temperature, so the
    learning rate tuned for FAT works unchanged.  (``T²`` matches CE's scale only for logits
    small against ``T``; on VNN-COMP nets with logits in the tens it made the 9×200 MLP diverge.)
    """
    t = temperature
    return F.kl_div(F.log_softmax(student / t, 1), F.log_softmax(teacher / t, 1), reduction="batchmean",
                    log_target=True) * t


def _teacher_loss(model: nn.Module, teacher: nn.Module, x: torch.Tensor, cfg: TrainConfig, lo: float, hi: float,
                  gen: torch.Generator) -> BatchLoss:
    with torch.no_grad():
        t_clean = teacher(x)
    y = t_clean.argmax(1)
    x_adv = fgsm_rs(model, x, y, cfg.eps, lo, hi, cfg.fgsm_alpha, gen)
    with torch.no_grad():
        t_adv = teacher(x_adv)
    clean, adv = model(x), model(x_adv)
    kl_clean, kl_adv = distill_kl(clean, t_clean, cfg.temperature), distill_kl(adv, t_adv, cfg.temperature)
    h = cfg.teacher_hard  # a convex mix: the gradient keeps cross-entropy's scale whatever h is
    loss = (1.0 - h) * 0.5 * (kl_clean + kl_adv)
    terms = {"kl_clean": float(kl_clean.detach()), "kl_adv": float(kl_adv.detach())}
    if h > 0:  # FAT's own term on the teacher's labels: the sharp signal soft targets lack
        ce = F.cross_entropy(adv, y)
        loss, terms["ce_adv"] = loss + h * ce, float(ce.detach())
    if cfg.grad_align > 0:
        reg, _ = _grad_align(model, x, y, cfg, lo, hi, gen)
        loss = loss + reg
    return BatchLoss(loss, clean.detach(), adv.detach(), y, terms)


def rs_loss(bounds: NetBounds, kept: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean ``−tanh(1 + l·u)`` over the units still ReLUs (``kept`` masks grafted units out)."""
    total = count = None
    for name, iv in bounds.relus.items():
        w = kept.get(name)
        w = torch.ones_like(iv.lo) if w is None else w.expand_as(iv.lo)
        s = (-torch.tanh(1.0 + iv.lo * iv.hi) * w).sum()
        total = s if total is None else total + s
        count = w.sum() if count is None else count + w.sum()
    if total is None or not float(count) > 0:  # type: ignore[arg-type]
        return torch.zeros((), device=bounds.out.lo.device)
    return total / count


def ibp_loss(bounds: NetBounds, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the worst-case margins: ``CE(−m, y)`` with ``m_j`` the lower bound of ``z_y − z_j``
    (through the last layer when it is a Gemm; Gowal et al. 2018)."""
    return F.cross_entropy(-bounds.margin_lower(y), y)


def batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, lo: float, hi: float,
               gen: torch.Generator, aids: Aids, bound_eps: float) -> BatchLoss:
    """The full training loss of one (augmented) batch on the model's device."""
    if aids.teacher is not None:
        out = _teacher_loss(model, aids.teacher, x, cfg, lo, hi, gen)
    else:
        loss, clean, adv = fat_loss(model, x, y, cfg, lo, hi, gen)
        out = BatchLoss(loss, clean, adv, y, {})
    if not cfg.uses_bounds or aids.interval is None:
        return out
    bounds = aids.interval((x - bound_eps).clamp(lo, hi), (x + bound_eps).clamp(lo, hi))
    loss, terms = out.loss, dict(out.terms)
    if cfg.rs_weight > 0:
        rs = rs_loss(bounds, aids.interval.kept())
        loss, terms["rs"] = loss + cfg.rs_weight * rs, float(rs.detach())
    if cfg.ibp_weight > 0:
        ibp = ibp_loss(bounds, out.target)
        loss, terms["ibp"] = loss + cfg.ibp_weight * ibp, float(ibp.detach())
    with torch.no_grad():
        kept = aids.interval.kept()
        unstable = sum(float((((iv.lo < 0) & (iv.hi > 0)).float() * kept.get(n, 1.0)).sum())
                       for n, iv in bounds.relus.items())
        size = sum(float(kept[n].expand_as(iv.lo).sum()) if n in kept else iv.lo.numel()
                   for n, iv in bounds.relus.items())
        terms["ibp_unr"] = unstable / max(size, 1.0)
    return BatchLoss(loss, out.clean, out.adv, out.target, terms)
