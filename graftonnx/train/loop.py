"""The one training loop behind ``finetune`` and ``train``: FAT (FGSM-RS) + GradAlign.

Why this recipe: the paper robustifies with fast adversarial training plus the
GradAlign regulariser (Andriushchenko & Flammarion, 2020, weight 0.2), which prevents
the catastrophic overfitting single-step training is prone to, and finetunes grafted
slopes/intercepts with a larger learning rate than the weights under a cosine schedule.
Every epoch draws its shuffling and attack noise from a generator seeded by
``(seed, epoch)`` and the learning rate is a pure function of the step, so a run resumed
from an epoch checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._progress import bar as progress_bar
from ..device import module_device, resolve
from .attacks import fgsm_rs, input_grad, uniform_in_ball
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .evaluate import torch_accuracy
from .nets import ParamGroups, param_groups

__all__ = ["EpochStats", "TrainResult", "fit", "fat_loss", "split_validation"]


@dataclass(frozen=True)
class EpochStats:
    """Training (FGSM-RS) and validation (PGD) numbers of one epoch; accuracies in [0, 1]."""

    epoch: int
    lr: float
    loss: float
    train_sa: float
    train_ra: float | None
    val_sa: float | None
    val_ra: float | None
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """What :func:`fit` did: the config, per-epoch history and the chosen (best) epoch."""

    config: TrainConfig
    history: tuple[EpochStats, ...]
    best_epoch: int
    n_train: int
    n_val: int
    grafted: bool
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        best = next((h for h in self.history if h.epoch == self.best_epoch), None)
        return {"config": self.config.to_dict(), "best_epoch": self.best_epoch,
                "best": None if best is None else best.__dict__, "n_train": self.n_train, "n_val": self.n_val,
                "grafted": self.grafted, "seconds": round(self.seconds, 3), "device": self.device,
                "notes": list(self.notes),
                "history": [h.__dict__ for h in self.history]}


def split_validation(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded disjoint (train, validation) index sets; validation gets ``round(fraction·n)`` samples."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))
    n_val = int(round(fraction * n)) if n > 1 else 0
    return perm[n_val:].sort().values, perm[:n_val].sort().values


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
        g_clean, clean_logits = input_grad(model, x, y)
        g_rand, _ = input_grad(model, uniform_in_ball(x, cfg.eps, lo, hi, gen), y, create_graph=True)
        cos = F.cosine_similarity(g_clean.flatten(1), g_rand.flatten(1), dim=1)
        loss = loss + cfg.grad_align * (1.0 - cos.mean())
    else:
        with torch.no_grad():
            clean_logits = model(x)
    return loss, clean_logits.detach(), adv_logits.detach()


def _optimizer(groups: ParamGroups, cfg: TrainConfig) -> torch.optim.SGD:
    specs = []
    if not cfg.freeze_weights and groups.weights:
        specs.append({"params": list(groups.weights), "lr": cfg.lr, "weight_decay": cfg.weight_decay,
                      "base_lr": cfg.lr})
    if groups.grafts:
        specs.append({"params": list(groups.grafts), "lr": cfg.graft_learning_rate, "weight_decay": 0.0,
                      "base_lr": cfg.graft_learning_rate})
    return torch.optim.SGD(specs, lr=cfg.lr, momentum=cfg.momentum)


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Seed torch for the run (weight init of lazily built parts, any op that draws from the global RNG).

    ``torch.use_deterministic_algorithms`` is not switched on: on the CPU the ops used
    here are deterministic already, and the switch imports torch._inductor (seconds).
    """
    torch.manual_seed(seed)
    yield


def _run_epoch(model: nn.Module, opt: torch.optim.SGD, groups: ParamGroups, x: torch.Tensor, y: torch.Tensor,
               cfg: TrainConfig, epoch: int, bounds: tuple[float, float]) -> tuple[float, float, float | None, float]:
    """One pass over the shuffled training set; returns (mean loss, train SA, train RA, last lr)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    order = torch.randperm(len(x), generator=gen)
    n_batches = math.ceil(len(x) / cfg.batch_size)
    total_steps = cfg.epochs * n_batches
    loss_sum = correct = robust = seen = 0.0
    lr = 0.0
    model.train()
    dev = module_device(model)
    bar = progress_bar(range(n_batches), desc=f"epoch {epoch + 1}/{cfg.epochs}", progress=cfg.progress, leave=False)
    for b in bar:
        idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        factor = 0.5 * (1.0 + math.cos(math.pi * (epoch * n_batches + b) / total_steps))
        for g in opt.param_groups:
            g["lr"] = lr = g["base_lr"] * factor
        xb, yb = x[idx].to(dev), y[idx].to(dev)
        loss, clean, adv = fat_loss(model, xb, yb, cfg, bounds[0], bounds[1], gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if groups.grafted:
            groups.clamp_slopes(*cfg.slope_range)
        loss_sum += float(loss.detach()) * len(idx)
        correct += float((clean.argmax(1) == yb).sum())
        robust += float((adv.argmax(1) == yb).sum())
        seen += len(idx)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", SA=f"{correct / seen:.3f}",
                        RA=f"{robust / seen:.3f}" if cfg.eps > 0 else "-")
    bar.close()
    return loss_sum / seen, correct / seen, (robust / seen if cfg.eps > 0 else None), lr


def _validate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
              bounds: tuple[float, float]) -> tuple[float | None, float | None]:
    if len(x) == 0:
        return None, None
    eps = cfg.eps if cfg.val_steps > 0 else 0.0
    sa, ra = torch_accuracy(model, x, y, eps, bounds, steps=cfg.val_steps, restarts=cfg.val_restarts,
                            seed=cfg.seed, batch_size=max(cfg.batch_size, 256))
    return sa, (ra if eps > 0 else None)


def _score(stats: EpochStats) -> tuple[float, float]:
    """Selection key: validation RA (PGD) first, then SA; without validation, the latest epoch wins."""
    if stats.val_sa is None:
        return (float(stats.epoch), 0.0)
    return (stats.val_ra if stats.val_ra is not None else stats.val_sa, stats.val_sa)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
        input_range: tuple[float, float] = (0.0, 1.0), notes: tuple[str, ...] = ()) -> TrainResult:
    """Train ``model`` (pixel-space input) in place on ``(x, y)``; leaves it at the best epoch's weights.

    It trains on ``cfg.device`` (batches moved there one at a time; the data stays on the
    CPU) and is back on the CPU when this returns.
    """
    start = time.perf_counter()
    dev = resolve(cfg.device)
    model.to(dev)
    groups = param_groups(model)
    if cfg.freeze_weights:
        groups.freeze_weights()
    train_idx, val_idx = split_validation(len(x), cfg.val_fraction, cfg.seed)
    xt, yt, xv, yv = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    with _deterministic(cfg.seed):
        opt = _optimizer(groups, cfg)
        history: list[EpochStats] = []
        best_state: dict[str, torch.Tensor] | None = None
        first = 0
        if cfg.resume:
            first, history, best_state = load_checkpoint(cfg, model, opt)
        stop = cfg.epochs if cfg.epochs_run_limit is None else min(cfg.epochs, first + cfg.epochs_run_limit)
        for epoch in range(first, stop):
            t0 = time.perf_counter()
            loss, tsa, tra, lr = _run_epoch(model, opt, groups, xt, yt, cfg, epoch, input_range)
            vsa, vra = _validate(model, xv, yv, cfg, input_range)
            stats = EpochStats(epoch + 1, lr, loss, tsa, tra, vsa, vra, time.perf_counter() - t0)
            if not history or _score(stats) > max(_score(h) for h in history):
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            history.append(stats)
            if cfg.checkpoint:
                save_checkpoint(cfg, epoch + 1, model, opt, history, best_state)
    best_epoch = max(history, key=_score).epoch if history else 0
    if best_state is not None and stop == cfg.epochs:
        model.load_state_dict(best_state)
    model.to("cpu")
    return TrainResult(cfg, tuple(history), best_epoch, len(xt), len(xv), groups.grafted,
                       time.perf_counter() - start, notes, dev.type)
