"""Python API of the training stage: finetune a grafted ONNX, train a base network from scratch.

Why ONNX in, ONNX out: every other stage (bounds, export, verification) works on ONNX,
so finetuning runs the grafted graph itself in torch and writes the trained values back
into the *same* graph; a parity check against onnxruntime guards the write-back, so the
file on disk is exactly the network that was trained and evaluated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from torch import nn

from ..data.dataset import Dataset
from ..errors import BadInput, GraftFailure
from ..model import inspect_model, prepend_normalisation
from ..model.graftmeta import metadata, read_all_grafts, set_metadata
from ..model.info import ModelInfo, TensorInfo
from ..parity import compare, ort_callable, random_inputs
from ..settings import to_dict
from .arch import build_arch, export_onnx
from .augment import augmenter_for
from .bridge import write_back
from .checks import as_tensors, check_dataset
from .config import TrainConfig
from .evaluate import pixel_module
from .loop import TrainResult, fit
from .losses import Aids
from .nets import PixelModel
from .teacher import load_teacher, training_aids

__all__ = ["Outcome", "finetune", "train_from_scratch", "stub_info", "TRAIN_KEY", "PARITY_ATOL"]

#: Metadata key recording how a model was trained (the TrainConfig as JSON).
TRAIN_KEY = "graftonnx.training"
#: Largest |ONNX − torch| logit difference accepted after write-back, per unit of the largest |logit|.
PARITY_ATOL = 1e-4


@dataclass(frozen=True, eq=False)
class Outcome:
    """The trained ONNX model, its pixel-space torch twin, the run record and the measured parity."""

    model: onnx.ModelProto
    module: nn.Module
    result: TrainResult
    parity: float

    def to_dict(self) -> dict[str, object]:
        return self.result.to_dict() | {"onnx_torch_max_abs_diff": self.parity}


def _n_classes(info: ModelInfo) -> int | None:
    dims = info.outputs[0].dims if info.outputs else ()
    return int(dims[-1]) if dims and dims[-1] else None


def _check_parity(model: onnx.ModelProto, module: nn.Module, data: Dataset) -> float:
    """Largest logit difference between onnxruntime (normalisation prepended) and torch, on data and noise."""
    module.eval()
    xs = np.concatenate([data.x[:128], random_inputs(data.sample_shape, 32, *data.input_range, seed=1)])

    def torch_fn(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    ort_fn = ort_callable(prepend_normalisation(model, data.mean, data.std, data.channel_axis))
    xs = xs.astype(np.float32)
    diff = compare(torch_fn, ort_fn, xs).max_abs_diff
    # float32 rounding grows with the logits' size (they reach ~100s on noise), so the limit is relative
    limit = PARITY_ATOL * max(1.0, float(np.abs(ort_fn(xs)).max()))
    if not diff <= limit:
        raise GraftFailure(f"the trained ONNX differs from the trained torch model by {diff:.3g} (> {limit:.3g}): "
                           "the write-back is wrong; please report this with the model")
    return diff


def _record(model: onnx.ModelProto, result: TrainResult, kind: str) -> onnx.ModelProto:
    meta = metadata(model)
    meta[TRAIN_KEY] = json.dumps({"kind": kind, "config": to_dict(result.config),  # provenance: every knob
                                  "best_epoch": result.best_epoch})
    return set_metadata(model, meta)


def finetune(model: onnx.ModelProto, data: Dataset, cfg: TrainConfig,
             teacher: onnx.ModelProto | None = None) -> Outcome:
    """FAT + GradAlign finetuning of a grafted model's a, b (and weights unless frozen); returns the tuned ONNX.

    ``teacher`` (or the file ``cfg.teacher``) switches the loss to distillation from that
    network; ``data`` then needs no labels.  A model without graft metadata is finetuned on
    its weights only, with a note.
    """
    if not cfg.eps > 0:
        raise BadInput(f"--eps {cfg.eps}: finetuning is adversarial and needs eps > 0 on the pixel scale "
                       "(e.g. --eps 0.1 for MNIST); use graftonnx train --eps 0 for clean training")
    info = inspect_model(model)
    teacher = load_teacher(cfg.teacher, info) if teacher is None and cfg.teacher else teacher
    check_dataset(data, info.input.sample_shape, _n_classes(info), labels=teacher is None)
    notes: tuple[str, ...] = ()
    if not read_all_grafts(model):
        if cfg.freeze_weights:
            raise BadInput("--freeze-weights on a model that is not grafted leaves nothing to train: "
                           "graft it first (graftonnx graft) or drop --freeze-weights")
        notes = ("model has no graftonnx.grafts metadata (not grafted): finetuning its weights only",)
    module = pixel_module(model, data)
    aids = training_aids(model, module, data, cfg, teacher, info)
    x, y = as_tensors(data)
    result = fit(module, x, y, cfg, data.input_range, notes, aids)
    inner = module.net if isinstance(module, PixelModel) else module
    tuned = _record(write_back(model, inner), result, "finetune")
    return Outcome(tuned, module, result, _check_parity(tuned, module, data))


def stub_info(sample_shape: tuple[int, ...], n_classes: int | None = None) -> ModelInfo:
    """A ModelInfo for a network that does not exist yet, so data can be fitted to its planned input."""
    return ModelInfo(13, (TensorInfo("input", (None, *sample_shape), "float32"),),
                     (TensorInfo("logits", (None, n_classes), "float32"),), (), {}, ())


def train_from_scratch(arch: str, data: Dataset, cfg: TrainConfig) -> Outcome:
    """Build ``arch`` for ``data``'s sample shape, train it (adversarially unless eps = 0), export to ONNX."""
    check_dataset(data, None, None)
    if cfg.teacher or cfg.uses_bounds:
        raise BadInput("--teacher, --rs-weight and --ibp-weight are finetuning options: train the base network "
                       "without them, then graftonnx finetune the grafted ONNX")
    n_classes = max(int(np.asarray(data.y).max()) + 1, 2)
    torch.manual_seed(cfg.seed)
    net = build_arch(arch, data.sample_shape, n_classes)
    module = PixelModel(net, data.sample_shape, data.mean, data.std, data.channel_axis)
    x, y = as_tensors(data)
    augment = augmenter_for(data.sample_shape, data.channel_axis, cfg.crop_pad, cfg.flip, cfg.eps if cfg.noise else 0)
    result = fit(module, x, y, cfg, data.input_range, aids=Aids(augment=augment if augment.active else None))
    exported = _record(export_onnx(net, data.sample_shape, (-3.0, 3.0) if data.normalised else data.input_range),
                       result, f"train {arch}")
    return Outcome(exported, module, result, _check_parity(exported, module, data))
