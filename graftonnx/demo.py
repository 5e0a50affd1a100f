"""The embedded default job: train, graft, finetune and measure a small digits classifier.

Why: a newcomer on a fresh machine (no GPU, no network, no data of their own) should see
the whole method work in about a minute: a network adversarially trained here on
scikit-learn's bundled 8×8 digits, grafted at 50 %, finetuned, and measured before and
after (clean and PGD accuracy, unstable neurons per image under IBP and CROWN).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import api
from ._io import atomic_write_text
from .data import load_dataset
from .data.dataset import Dataset, DataSpec
from .errors import BadInput

__all__ = ["DemoRow", "DemoReport", "run_demo"]


@dataclass(frozen=True)
class DemoRow:
    """One model's measurements on the held-out digits."""

    name: str
    sa: float
    ra: float
    unr_ibp: float
    unr_crown: float
    relu_neurons: int


@dataclass(frozen=True)
class DemoReport:
    eps: float
    ratio: float
    n_train: int
    n_test: int
    rows: tuple[DemoRow, ...]
    folder: str

    def table(self) -> str:
        lines = [f"digits (sklearn, 8×8), eps = {self.eps} on [0, 1] pixels, {self.n_test} held-out images",
                 f"{'model':<26}{'SA':>7}{'RA(PGD)':>9}{'UNR ibp':>9}{'UNR crown':>11}"]
        lines += [f"{r.name:<26}{r.sa:>7.3f}{r.ra:>9.3f}{r.unr_ibp:>9.2f}{r.unr_crown:>11.2f}" for r in self.rows]
        return "\n".join(lines)


def _split(data: Dataset, n_test: int, seed: int) -> tuple[Dataset, Dataset]:
    order = np.random.default_rng(seed).permutation(len(data))
    test, train = order[:n_test], order[n_test:]

    def part(idx: np.ndarray) -> Dataset:
        return Dataset(data.x[idx], data.y[idx], data.source, data.input_range, data.mean, data.std,
                       data.channel_axis)

    return part(train), part(test)


def _measure(name: str, model: object, test: Dataset, eps: float) -> DemoRow:
    from .train import EvalConfig, evaluate

    m = api.load(model)
    ev = evaluate(m, test, EvalConfig(eps=eps, steps=20, restarts=1))
    info = api.inspect(m)
    return DemoRow(name, ev.sa, ev.ra, sum(api.unr(m, test, eps, "ibp").values()),
                   sum(api.unr(m, test, eps, "crown").values()), info.n_neurons)


def run_demo(folder: str | os.PathLike[str] = "graftonnx-demo", eps: float = 0.05, ratio: float = 0.5,
             epochs: int = 20, seed: int = 0, progress: bool = True) -> DemoReport:
    """Train → graft → finetune → measure; models and ``report.json`` go to ``folder``."""
    from .train import TrainConfig
    from .train.api import finetune, stub_info, train_from_scratch

    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise BadInput(f"demo folder {out} is a file: choose another --output")
    out.mkdir(parents=True, exist_ok=True)
    digits = load_dataset("digits", stub_info((64,), 10), DataSpec(layout="flat"))
    train, test = _split(digits, 300, seed)
    cfg = TrainConfig(epochs=epochs, eps=eps, lr=0.05, batch_size=64, seed=seed, progress=progress)
    base = train_from_scratch("mlp:64,64", train, cfg).model
    grafted = api.graft(base, train, ratio=ratio, eps=eps, init="fit", seed=seed).model
    tuned = finetune(grafted, train, TrainConfig(epochs=max(epochs // 2, 1), eps=eps, lr=0.01, batch_size=64,
                                                 seed=seed, progress=progress)).model
    for name, m in (("base.onnx", base), ("grafted.onnx", grafted), ("tuned.onnx", tuned)):
        api.save_model(m, out / name)
    rows = (_measure("baseline", base, test, eps), _measure(f"grafted {ratio:.0%} (no finetune)", grafted, test, eps),
            _measure(f"grafted {ratio:.0%} + finetune", tuned, test, eps))
    report = DemoReport(eps, ratio, len(train), len(test), rows, str(out))
    atomic_write_text(out / "report.json", json.dumps(asdict(report), indent=2) + "\n")
    return report
