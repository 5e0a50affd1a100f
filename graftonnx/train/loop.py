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
from torch import nn

from .._progress import bar as progress_bar
from ..device import module_device, resolve
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .evaluate import torch_accuracy
from .losses import Aids, batch_loss, fat_loss
from .nets import ParamGroups, param_groups

__all__ = ["EpochStats", "TrainResult", "fit", "fat_loss", "split_validation", "teacher_labels", "Aids"]


@dataclass(frozen=True)
class EpochStats:
    """Training (FGSM-RS) and validation (PGD) numbers of one epoch; accuracies in [0, 1].

    With a teacher, ``train_sa``/``train_ra`` count agreement with the teacher's clean top-1,
    ``val_fidelity`` is that agreement on the validation split, ``val_robust_fidelity`` its
    PGD counterpart (the attack targets the teacher's label), ``val_sa`` clean accuracy on the
    data's own labels when it has them, and ``val_ra`` is not measured.  ``terms``: the mean of
    each extra loss term (KL parts, RS, IBP, share of unstable kept units under the bounds).
    """

    epoch: int
    lr: float
    loss: float
    train_sa: float
    train_ra: float | None
    val_sa: float | None
    val_ra: float | None
    seconds: float
    val_fidelity: float | None = None
    val_robust_fidelity: float | None = None
    bound_eps: float | None = None
    terms: dict[str, float] = field(default_factory=dict)


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


def bound_radius(cfg: TrainConfig, step: int, n_batches: int) -> float:
    """The ε of the RS/IBP terms at a global step: linear from 0 to ``eps`` over ``bound_warmup`` epochs."""
    if cfg.bound_warmup == 0:
        return cfg.eps
    return cfg.eps * min(1.0, (step + 1) / (cfg.bound_warmup * n_batches))


def _run_epoch(model: nn.Module, opt: torch.optim.SGD, groups: ParamGroups, x: torch.Tensor, y: torch.Tensor,
               cfg: TrainConfig, epoch: int, bounds: tuple[float, float], aids: Aids) -> dict[str, Any]:
    """One pass over the shuffled training set: mean loss, train SA/RA, last lr and bound ε, mean terms."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    order = torch.randperm(len(x), generator=gen)
    n_batches = math.ceil(len(x) / cfg.batch_size)
    total_steps = cfg.epochs * n_batches
    loss_sum = correct = robust = seen = 0.0
    terms: dict[str, float] = {}
    lr = beps = 0.0
    model.train()
    dev = module_device(model)
    bar = progress_bar(range(n_batches), desc=f"epoch {epoch + 1}/{cfg.epochs}", progress=cfg.progress, leave=False)
    for b in bar:
        idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        step = epoch * n_batches + b
        factor = 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
        for g in opt.param_groups:
            g["lr"] = lr = g["base_lr"] * factor
        xb = x[idx] if aids.augment is None else aids.augment(x[idx], bounds[0], bounds[1], gen)
        xb, yb = xb.to(dev), y[idx].to(dev)
        beps = bound_radius(cfg, step, n_batches)
        out = batch_loss(model, xb, yb, cfg, bounds[0], bounds[1], gen, aids, beps)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        if groups.grafted:
            groups.clamp_slopes(*cfg.slope_range)
        loss_sum += float(out.loss.detach()) * len(idx)
        correct += float((out.clean.argmax(1) == out.target).sum())
        robust += float((out.adv.argmax(1) == out.target).sum())
        for k, v in out.terms.items():
            terms[k] = terms.get(k, 0.0) + v * len(idx)
        seen += len(idx)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", SA=f"{correct / seen:.3f}",
                        RA=f"{robust / seen:.3f}" if cfg.eps > 0 else "-")
    bar.close()
    return {"loss": loss_sum / seen, "sa": correct / seen, "ra": robust / seen if cfg.eps > 0 else None, "lr": lr,
            "bound_eps": beps if cfg.uses_bounds else None, "terms": {k: v / seen for k, v in terms.items()}}


def teacher_labels(teacher: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The teacher's clean top-1 of every sample (CPU int64), computed on the teacher's device."""
    dev = module_device(teacher)
    with torch.no_grad():
        return torch.cat([teacher(x[s:s + batch_size].to(dev)).argmax(1).cpu()
                          for s in range(0, len(x), batch_size)]) if len(x) else torch.zeros(0, dtype=torch.int64)


def _validate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, bounds: tuple[float, float],
              y_teacher: torch.Tensor | None) -> dict[str, float | None]:
    """Validation SA and PGD RA; with a teacher, fidelity and robust fidelity, and SA on labels (y ≥ 0)."""
    if len(x) == 0:
        return {}
    eps = cfg.eps if cfg.val_steps > 0 else 0.0
    batch = max(cfg.batch_size, 256)
    if y_teacher is None:
        sa, ra = torch_accuracy(model, x, y, eps, bounds, steps=cfg.val_steps, restarts=cfg.val_restarts,
                                seed=cfg.seed, batch_size=batch)
        return {"val_sa": sa, "val_ra": ra if eps > 0 else None}
    fid, rfid = torch_accuracy(model, x, y_teacher, eps, bounds, steps=cfg.val_steps, restarts=cfg.val_restarts,
                               seed=cfg.seed, batch_size=batch)
    labelled = y >= 0
    sa = None
    if labelled.any():
        sa, _ = torch_accuracy(model, x[labelled], y[labelled], 0.0, bounds, batch_size=batch)
    return {"val_sa": sa, "val_fidelity": fid, "val_robust_fidelity": rfid if eps > 0 else None}


def _score(stats: EpochStats) -> tuple[float, float]:
    """Selection key: validation RA (PGD) first, then SA; with a teacher robust fidelity, then fidelity;
    without validation, the latest epoch wins."""
    if stats.val_fidelity is not None:
        rf = stats.val_robust_fidelity
        return (rf if rf is not None else stats.val_fidelity, stats.val_fidelity)
    if stats.val_sa is None:
        return (float(stats.epoch), 0.0)
    return (stats.val_ra if stats.val_ra is not None else stats.val_sa, stats.val_sa)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, cfg: TrainConfig,
        input_range: tuple[float, float] = (0.0, 1.0), notes: tuple[str, ...] = (),
        aids: Aids | None = None) -> TrainResult:
    """Train ``model`` (pixel-space input) in place on ``(x, y)``; leaves it at the best epoch's weights.

    It trains on ``cfg.device`` (batches moved there one at a time; the data stays on the
    CPU) and is back on the CPU when this returns.  With ``aids.teacher`` the labels ``y``
    are optional (None, or −1 for unlabelled samples): the loss distils the teacher.
    """
    start = time.perf_counter()
    aids = aids or Aids()
    dev = resolve(cfg.device)
    model.to(dev)
    if aids.teacher is not None:
        aids.teacher.to(dev).eval()
    groups = param_groups(model)
    if cfg.freeze_weights:
        groups.freeze_weights()
    y = torch.full((len(x),), -1, dtype=torch.int64) if y is None else y
    y_teacher = None if aids.teacher is None else teacher_labels(aids.teacher, x)
    train_idx, val_idx = split_validation(len(x), cfg.val_fraction, cfg.seed)
    xt, xv, yv = x[train_idx], x[val_idx], y[val_idx]
    yt = y[train_idx] if y_teacher is None else y_teacher[train_idx]
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
            r = _run_epoch(model, opt, groups, xt, yt, cfg, epoch, input_range, aids)
            v = _validate(model, xv, yv, cfg, input_range, None if y_teacher is None else y_teacher[val_idx])
            stats = EpochStats(epoch + 1, r["lr"], r["loss"], r["sa"], r["ra"], v.get("val_sa"), v.get("val_ra"),
                               time.perf_counter() - t0, v.get("val_fidelity"), v.get("val_robust_fidelity"),
                               r["bound_eps"], r["terms"])
            if not history or _score(stats) > max(_score(h) for h in history):
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            history.append(stats)
            if cfg.checkpoint:
                save_checkpoint(cfg, epoch + 1, model, opt, history, best_state)
    best_epoch = max(history, key=_score).epoch if history else 0
    if best_state is not None and stop == cfg.epochs:
        model.load_state_dict(best_state)
    model.to("cpu")
    if aids.teacher is not None:
        aids.teacher.to("cpu")
    return TrainResult(cfg, tuple(history), best_epoch, len(xt), len(xv), groups.grafted,
                       time.perf_counter() - start, notes, dev.type)
