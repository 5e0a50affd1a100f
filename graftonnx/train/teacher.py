"""Finetuning from the original network: loading the teacher, assembling the loss aids, measuring fidelity.

Why a teacher: grafting changes a trained network, and finetuning should bring back *that
network's* behaviour, not re-learn a task from labels the user may not have (a model zoo
often ships a network and a few hundred images).  The original's logits are a richer
target than labels (they carry its confidence and its mistakes), so a few hundred images
with augmentation go a long way; fidelity, the share of inputs where the tuned model's
top-1 equals the original's, says how close the result is, beside plain accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from torch import nn

from ..data.dataset import Dataset
from ..errors import BadInput
from ..model import inspect_model, load_model, prepend_normalisation
from ..model.info import ModelInfo
from ..model.runtime import OrtRunner
from .augment import augmenter_for
from .config import TrainConfig
from .evaluate import pixel_module
from .interval import IntervalNet
from .losses import Aids

__all__ = ["load_teacher", "training_aids", "fidelity", "TEACHER_ORIGINAL"]

#: The manifest value of ``finetune.teacher`` that names the zoo entry's own (ungrafted) model.
TEACHER_ORIGINAL = "original"


def load_teacher(path: str, info: ModelInfo) -> onnx.ModelProto:
    """The teacher ONNX at ``path``, checked to take the student's input and give as many classes."""
    if path == TEACHER_ORIGINAL:
        raise BadInput("--teacher original only works in a zoo manifest (it names the entry's model): "
                       "give the original network's ONNX path")
    if not Path(path).is_file():
        raise BadInput(f"--teacher {path}: no such file; give the original network's ONNX")
    teacher = load_model(path)
    check_teacher(teacher, info, path)
    return teacher


def check_teacher(teacher: onnx.ModelProto, info: ModelInfo, where: str = "teacher") -> None:
    """BadInput unless the teacher takes the student's per-sample input and has its number of outputs."""
    t = inspect_model(teacher)
    if tuple(t.input.sample_shape) != tuple(info.input.sample_shape):
        raise BadInput(f"--teacher {where} takes inputs of shape {t.input.sample_shape} but the model takes "
                       f"{info.input.sample_shape}: give the network the model was grafted from")
    t_out = t.outputs[0].dims[-1] if t.outputs and t.outputs[0].dims else None
    s_out = info.outputs[0].dims[-1] if info.outputs and info.outputs[0].dims else None
    if t_out and s_out and t_out != s_out:
        raise BadInput(f"--teacher {where} has {t_out} outputs but the model has {s_out}: give the network the "
                       "model was grafted from")


def _frozen(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


def training_aids(model: onnx.ModelProto, module: nn.Module, data: Dataset, cfg: TrainConfig,
                  teacher: onnx.ModelProto | None, info: ModelInfo | None = None) -> Aids:
    """The teacher module (frozen, pixel space), the interval net and the augmenter ``cfg`` asks for."""
    if teacher is not None:
        check_teacher(teacher, info or inspect_model(model))
    augment = augmenter_for(data.sample_shape, data.channel_axis, cfg.crop_pad, cfg.flip,
                            cfg.eps if cfg.noise else 0.0)
    return Aids(teacher=None if teacher is None else _frozen(pixel_module(teacher, data)),
                interval=IntervalNet(model, module) if cfg.uses_bounds else None,
                augment=augment if augment.active else None)


def fidelity(student: onnx.ModelProto, teacher: onnx.ModelProto, data: Dataset, batch_size: int = 256) -> float:
    """Share of ``data`` on which onnxruntime gives the student the teacher's top-1 class."""
    if len(data) == 0:
        raise BadInput(f"{data.source} holds no samples: fidelity needs at least one image")

    def top1(m: onnx.ModelProto) -> np.ndarray:
        runner = OrtRunner(prepend_normalisation(m, data.mean, data.std, data.channel_axis), batch_size=batch_size)
        return runner.logits(data.x).argmax(1)

    return float((top1(student) == top1(teacher)).mean())
