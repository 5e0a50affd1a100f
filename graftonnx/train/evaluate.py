"""Standard accuracy (SA) and PGD robust accuracy (RA), with every attack re-checked in onnxruntime.

Why the re-check: the attack runs on a torch translation of the graph, but the artefact
that is verified and shipped is the ONNX file.  An adversarial example only counts when
onnxruntime, on the ONNX model itself, also misclassifies it (and it lies in the ε-ball
and the pixel range), so a converter bug can never make a model look less robust than
it is, and clean accuracy is onnxruntime's too.
"""

from __future__ import annotations

import time
from dataclasses import MISSING, asdict, dataclass, field

import numpy as np
import onnx
import torch
from torch import nn

from ..attack import PgdConfig, pgd
from ..data.dataset import Dataset
from ..device import device_knob, module_device, resolve
from ..model import inspect_model, prepend_normalisation
from ..model.runtime import OrtRunner
from ..settings import Settings, above, at_least, knob
from .checks import as_tensors, check_dataset
from .nets import PixelModel

__all__ = ["EvalConfig", "EvalResult", "evaluate", "torch_accuracy", "pixel_module"]


@dataclass(frozen=True)
class EvalConfig(Settings):
    """PGD-``steps`` with ``restarts`` random restarts at L∞ radius ``eps`` (raw pixel scale)."""

    eps: float = knob(MISSING, "L∞ attack radius on the raw pixel scale (0: SA only).", check=at_least(0))
    steps: int = knob(100, "PGD steps per restart.", check=at_least(1))
    restarts: int = knob(5, "PGD random restarts.", check=at_least(1))
    step_size: float | None = knob(None, "PGD step. Default: 1/8 of each pixel's box (eps/4).",
                                   check=above(0))
    seed: int = knob(0, "Random seed (attack starts).")
    batch_size: int = knob(256, "Images attacked at once.", check=at_least(1))
    device: str = device_knob()
    teacher: str | None = knob(None, "Also report fidelity: the share of images where the model's top-1 equals this "
                                     "network's (the original before grafting).", metavar="ONNX")


@dataclass(frozen=True)
class EvalResult:
    """Counts and accuracies (in [0, 1]); ``unconfirmed`` = torch attacks onnxruntime did not confirm."""

    n: int
    correct: int
    robust: int
    attacked: int
    confirmed: int
    unconfirmed: int
    eps: float
    steps: int
    restarts: int
    seconds: float
    fidelity: float | None = None  # agreement with EvalConfig.teacher's top-1, when one is given
    #: per sample: correctly classified and no confirmed attack (what "robust" counts); for
    #: per-instance pairing (the paper's times: instances correctly classified and not attacked)
    robust_mask: tuple[bool, ...] = field(default=(), repr=False, compare=False)

    @property
    def sa(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def ra(self) -> float:
        return self.robust / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("robust_mask")
        return d | {"sa": self.sa, "ra": self.ra, "seconds": round(self.seconds, 3)}


def torch_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, bounds: tuple[float, float],
                   steps: int = 10, restarts: int = 1, seed: int = 0, batch_size: int = 256) -> tuple[float, float]:
    """(SA, RA) of a pixel-space torch model; RA counts only correctly classified, unattacked samples."""
    was = model.training
    model.eval()
    correct = robust = 0
    dev = module_device(model)
    try:
        for s in range(0, len(x), batch_size):
            xb, yb = x[s:s + batch_size].to(dev), y[s:s + batch_size].to(dev)
            with torch.no_grad():
                ok = model(xb).argmax(1) == yb
            correct += int(ok.sum())
            if eps > 0 and ok.any():
                _, fooled = pgd(model, xb[ok], yb[ok], PgdConfig(eps, steps, restarts, seed=seed + s), *bounds)
                robust += int((~fooled).sum())
            elif eps == 0:
                robust += int(ok.sum())
    finally:
        model.train(was)
    n = max(len(x), 1)
    return correct / n, robust / n


def pixel_module(model: onnx.ModelProto, data: Dataset) -> nn.Module:
    """The ONNX graph in torch with the dataset's outside-the-graph normalisation in front."""
    from .bridge import to_torch

    return PixelModel(to_torch(model), data.sample_shape, data.mean, data.std, data.channel_axis)


def evaluate(model: onnx.ModelProto, data: Dataset, cfg: EvalConfig, module: nn.Module | None = None) -> EvalResult:
    """SA and PGD RA of ``model`` on ``data``; ``module`` (pixel-space torch twin) is built if not given."""
    start = time.perf_counter()
    info = inspect_model(model)
    check_dataset(data, info.input.sample_shape, _n_classes(info))
    fid = None
    if cfg.teacher:
        from .teacher import fidelity, load_teacher  # local: teacher.py builds on this module

        fid = fidelity(model, load_teacher(cfg.teacher, info), data, cfg.batch_size)
    runner = OrtRunner(prepend_normalisation(model, data.mean, data.std, data.channel_axis),
                       batch_size=cfg.batch_size)
    x, y = as_tensors(data)
    ok = runner.logits(data.x).argmax(1) == np.asarray(data.y)
    n_correct = int(ok.sum())
    attacked = confirmed = 0
    if cfg.eps > 0 and ok.any():
        module = module if module is not None else pixel_module(model, data)
        home, dev = module_device(module), resolve(cfg.device)
        module.to(dev)
        idx = np.flatnonzero(ok)
        lo, hi = data.input_range
        try:
            for s in range(0, len(idx), cfg.batch_size):
                b = idx[s:s + cfg.batch_size]
                adv, fooled = pgd(module, x[b].to(dev), y[b].to(dev),
                                  PgdConfig(cfg.eps, cfg.steps, cfg.restarts, cfg.step_size, cfg.seed + s), lo, hi)
                adv, fooled = adv.cpu(), fooled.cpu()
                hits = b[fooled.numpy()]
                attacked += len(hits)
                real = _confirm(runner, adv[fooled].numpy(), data, hits, cfg.eps)
                confirmed += int(real.sum())
                ok[hits[real]] = False
        finally:
            module.to(home)  # a caller's module goes back where it was
    return EvalResult(len(data), n_correct, int(ok.sum()), attacked, confirmed, attacked - confirmed,
                      cfg.eps, cfg.steps, cfg.restarts, time.perf_counter() - start, fid, tuple(bool(v) for v in ok))


def _confirm(runner: OrtRunner, adv: np.ndarray, data: Dataset, hits: np.ndarray, eps: float) -> np.ndarray:
    """Which torch adversarial examples onnxruntime also misclassifies, inside the ε-ball and range."""
    if len(hits) == 0:
        return np.zeros(0, dtype=bool)
    lo, hi = data.input_range
    delta = np.abs(adv - data.x[hits]).reshape(len(hits), -1).max(axis=1)
    inside = (delta <= eps * (1 + 1e-5) + 1e-7) & (adv >= lo - 1e-7).reshape(len(hits), -1).all(1) \
        & (adv <= hi + 1e-7).reshape(len(hits), -1).all(1)
    wrong = runner.logits(adv).argmax(1) != np.asarray(data.y)[hits]
    return inside & wrong


def _n_classes(info: object) -> int | None:
    out = info.outputs[0]  # type: ignore[attr-defined]
    return out.dims[-1] if out.dims and out.dims[-1] else None
