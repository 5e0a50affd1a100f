#!/usr/bin/env python3
"""Regenerate this benchmark's properties and instances from a seed: ``python generate_properties.py SEED``.

Why this script exists: the VNN-COMP rules ask every benchmark for a ``generate_properties.py``
that takes the random seed as its only argument, so that the organisers can draw fresh
instances at competition time.  It runs in a plain environment: the Python standard library
and numpy only (no graftonnx, no torch, no onnx, no onnxruntime), and it never runs a network.

Design (written by ``graftonnx export``, which copies this file verbatim into the benchmark):

* ``data/images.npy`` is the whole image pool in its original order and raw pixel scale
  (the networks have any normalisation folded in), ``data/labels.npy`` the true classes,
  ``data/status.npy`` one code per image: 0 eligible, 1 misclassified by the first network,
  2 broken by export's PGD attack (``--skip attacked``).  Classifying or attacking needs the
  model, so export records what it found instead; under ``--skip attacked`` export attacks only
  the candidates it needed, so an image never attacked has status 0 and another seed may pick
  an image PGD could break: a ``sat`` instance, still valid.
* ``data/benchmark.json`` holds the model-independent settings: eps, the number of properties,
  timeout, input range, network paths and I/O shapes, the .gz layout and the export's seed.
* Selection is export's: the pool's indices in ``numpy.random.default_rng(seed).permutation``
  order, the first ``instances`` with status 0.  The L∞ box is ``clip(x ± eps)`` in float64,
  rounded to float32; numbers are the shortest decimal of the float32 value's double.
* So ``generate_properties.py <export's seed>`` rewrites ``vnnlib/``, ``2.0/vnnlib/``,
  ``instances.csv`` and ``2.0/instances.csv`` byte for byte; another seed gives another valid
  set (old property files are removed first, so the folder stays consistent).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["generate", "format_real", "main"]

HERE = Path(__file__).resolve().parent
ELIGIBLE = 0


def format_real(value: float) -> str:
    """Decimal text of ``value`` (no exponent) that reads back exactly."""
    text = np.format_float_positional(float(value), unique=True, trim="0")
    return "0.0" if text in ("-0.0", "0.0") else text


def _box(x: np.ndarray, eps: float, lo: float, hi: float) -> tuple[list[float], list[float]]:
    flat = np.asarray(x, dtype=np.float64).ravel()
    lower = np.clip(flat - eps, lo, hi).astype(np.float32)
    upper = np.clip(flat + eps, lo, hi).astype(np.float32)
    return lower.tolist(), upper.tolist()


def _v1(lower: list[float], upper: list[float], label: int, n_classes: int, comment: str) -> str:
    """VNN-LIB 1.0, laid out like the VNN-COMP 2021 benchmark files."""
    lines = [f"; {comment}", ""]
    lines += [f"(declare-const X_{i} Real)" for i in range(len(lower))]
    lines.append("")
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_classes)]
    lines += ["", "; Input constraints:"]
    for i, (lo, hi) in enumerate(zip(lower, upper)):  # noqa: B905 (no strict=: Python < 3.10 too)
        lines += [f"(assert (<= X_{i} {format_real(hi)}))", f"(assert (>= X_{i} {format_real(lo)}))", ""]
    lines += ["; Output constraints:", "(assert (or"]
    lines += [f"    (and (>= Y_{j} Y_{label}))" for j in range(n_classes) if j != label]
    lines.append("))")
    return "\n".join(lines) + "\n"


def _indices(shape: list[int]) -> list[str]:
    grids = np.unravel_index(np.arange(int(np.prod(shape))), shape)
    return [",".join(str(int(g)) for g in t) for t in zip(*grids)]  # noqa: B905


def _v2(lower: list[float], upper: list[float], label: int, xs: list[int], ys: list[int], comment: str) -> str:
    """VNN-LIB 2.0 (VNN-COMP 2026): tensor-indexed float32 variables."""
    lines = [f"; {comment}", "(vnnlib-version <2.0>)", "(declare-network f",
             f"    (declare-input X float32 [{','.join(map(str, xs))}])",
             f"    (declare-output Y float32 [{','.join(map(str, ys))}])", ")"]
    for idx, lo, hi in zip(_indices(xs), lower, upper):  # noqa: B905
        lines += [f"(assert (>= X[{idx}] {format_real(lo)}))", f"(assert (<= X[{idx}] {format_real(hi)}))"]
    yi = _indices(ys)
    lines.append("(assert (or")
    lines += [f"    (>= Y[{yi[j]}] Y[{yi[label]}])" for j in range(len(yi)) if j != label]
    lines.append("))")
    return "\n".join(lines) + "\n"


def _write(root: Path, rel: str, text: str, copy_gz: bool) -> None:
    """``rel`` ending in .gz is written compressed; ``copy_gz`` adds a .gz copy next to a plain file."""
    path, data = root / rel, text.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if rel.endswith(".gz"):  # mtime=0, no file name inside: the same text gives the same bytes
        path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        return
    path.write_bytes(data)
    if copy_gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def _clear(folder: Path) -> None:
    """Drop the previous seed's property files so instances.csv and the folder agree."""
    for p in sorted(folder.glob("*.vnnlib")) + sorted(folder.glob("*.vnnlib.gz")):
        p.unlink()


def select(status: np.ndarray, n: int, seed: int) -> list[int]:
    """The first ``n`` eligible pool indices in ``default_rng(seed).permutation`` order."""
    order = np.random.default_rng(seed).permutation(len(status))
    return [int(i) for i in order if status[i] == ELIGIBLE][:n]


def generate(root: Path, seed: int) -> list[str]:
    """Write the properties and both instances.csv files for ``seed``; the 1.0 property paths."""
    cfg = json.loads((root / "data" / "benchmark.json").read_text(encoding="utf-8"))
    images = np.load(root / "data" / "images.npy", allow_pickle=False)
    labels = np.load(root / "data" / "labels.npy", allow_pickle=False)
    status = np.load(root / "data" / "status.npy", allow_pickle=False)
    chosen = select(status, int(cfg["instances"]), seed)
    if not chosen:
        raise SystemExit("no eligible image in data/status.npy: nothing to generate")
    eps, (lo, hi), suffix = float(cfg["eps"]), cfg["input_range"], ".gz" if cfg["gz_only"] else ""
    _clear(root / "vnnlib")
    _clear(root / "2.0" / "vnnlib")
    names = []
    for i in chosen:
        label = int(labels[i])
        lower, upper = _box(images[i], eps, float(lo), float(hi))
        comment = (f"{cfg['dataset']} image {i}, label {label}, L-inf eps {eps:g} in pixel range "
                   f"[{float(lo):g}, {float(hi):g}]; generated by graftonnx export")
        name = f"img{i}_label{label}_eps{eps:.6g}.vnnlib{suffix}"
        _write(root, f"vnnlib/{name}", _v1(lower, upper, label, int(cfg["n_classes"]), comment), cfg["gz"])
        _write(root, f"2.0/vnnlib/{name}", _v2(lower, upper, label, cfg["input_shape"], cfg["output_shape"],
                                               comment), cfg["gz"])
        names.append(name)
    t = f"{float(cfg['timeout']):g}"
    rows = [f"{m},vnnlib/{v},{t}" for m in cfg["models"] for v in names]
    (root / "instances.csv").write_text("\n".join(rows) + "\n")
    (root / "2.0" / "instances.csv").write_text("\n".join(rows) + "\n")
    return [f"vnnlib/{v}" for v in names]


def main(argv: list[str]) -> int:
    """``generate_properties.py SEED``: the seed is the only argument (VNN-COMP's rule)."""
    if len(argv) != 1:
        print("usage: python generate_properties.py SEED", file=sys.stderr)
        return 2
    try:
        seed = int(argv[0])
    except ValueError:
        seed = -1
    if seed < 0:  # numpy's default_rng takes non-negative seeds only
        print(f"seed {argv[0]!r} is not a non-negative integer: give e.g. 0", file=sys.stderr)
        return 2
    written = generate(HERE, seed)
    print(f"seed {seed}: wrote {len(written)} properties and instances.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
