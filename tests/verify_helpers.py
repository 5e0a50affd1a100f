"""Helpers for the verify tests: tiny benchmark folders built from the real MNIST net and images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from graftonnx.bench.spec import Property
from graftonnx.bench.vnnlib import write_vnnlib

__all__ = ["mnist_image", "make_bench", "NET"]

NET = "mnist-net_256x2"


def mnist_image(csv: Path, idx: int) -> tuple[np.ndarray, int]:
    row = np.loadtxt(csv, delimiter=",", max_rows=idx + 1, ndmin=2)[idx]
    return row[1:] / 255.0, int(row[0])


def make_bench(tmp: Path, model: Path, csv: Path, cases: list[tuple[int, float]], timeout: float = 30) -> Path:
    """A VNN-COMP folder with ``model`` and one L∞ property per (image index, eps)."""
    root = tmp / "bench"
    (root / "onnx").mkdir(parents=True)
    (root / "vnnlib").mkdir()
    shutil.copy(model, root / "onnx" / model.name)
    rows = []
    for idx, eps in cases:
        x, label = mnist_image(csv, idx)
        name = f"vnnlib/img{idx}_eps{eps:g}.vnnlib"
        write_vnnlib(root / name, Property.linf_ball(x, eps, label, 10))
        rows.append(f"onnx/{model.name},{name},{timeout:g}")
    (root / "instances.csv").write_text("\n".join(rows) + "\n")
    return root
