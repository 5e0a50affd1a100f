"""Input checks shared by finetune, train and evaluate: labelled, non-empty, model-shaped data.

Why here: every stage that computes a loss or an accuracy needs the same guarantees, and a
user who passes unlabelled or mismatched data must get one line naming the problem
instead of a shape error from deep inside torch.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import Dataset
from ..errors import BadInput

__all__ = ["check_dataset", "as_tensors"]


def check_dataset(data: Dataset, sample_shape: tuple[int, ...] | None, n_classes: int | None,
                  where: str = "--data", labels: bool = True) -> None:
    """Raise BadInput unless ``data`` is non-empty, labelled, shaped for the model and labelled in range.

    ``labels=False`` (distillation from a teacher) accepts unlabelled data; labels that are
    present are still checked.
    """
    if len(data) == 0:
        raise BadInput(f"{where} {data.source} holds no samples: give a dataset with at least one image")
    if data.y is None and labels:
        raise BadInput(f"{where} {data.source} has no labels: training and accuracy need a labelled dataset "
                       "(or finetune with --teacher ORIGINAL.onnx, which needs none)")
    if sample_shape is not None and tuple(data.sample_shape) != tuple(sample_shape):
        raise BadInput(f"{where} {data.source} has samples of shape {data.sample_shape} but the model expects "
                       f"{tuple(sample_shape)}: set --layout or reshape the data")
    if not np.isfinite(data.x).all():
        raise BadInput(f"{where} {data.source} contains NaN or infinite pixel values: clean the data")
    if data.y is None:
        return
    if len(data.y) != len(data):
        raise BadInput(f"{where} {data.source} has {len(data)} images but {len(data.y)} labels: fix the file")
    y = np.asarray(data.y)
    if not np.issubdtype(y.dtype, np.integer) and not np.all(np.equal(np.mod(y, 1), 0)):
        raise BadInput(f"{where} {data.source} has non-integer labels: labels must be class indices")
    if y.min() < 0 or (n_classes is not None and y.max() >= n_classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise BadInput(f"{where} {data.source} has label {bad} outside 0..{(n_classes or 1) - 1} "
                       "(the model's classes): check the label column and the model")


def as_tensors(data: Dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pixels as float32 and labels as int64 torch tensors, None when unlabelled (data must be checked first)."""
    x = torch.from_numpy(np.ascontiguousarray(data.x, dtype=np.float32))
    return x, None if data.y is None else torch.from_numpy(np.asarray(data.y).astype(np.int64))
