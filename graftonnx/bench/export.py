"""Export a VNN-COMP benchmark folder: models + L∞ robustness properties + instances.csv.

Why this layout: it is exactly what VNN-COMP runners (and α,β-CROWN / NeuralSAT scripts)
consume: ``instances.csv`` lines ``onnx,vnnlib,timeout`` relative to the folder.  The
same properties are also written in VNN-LIB 2.0 under ``2.0/`` for VNN-COMP 2026 tools.
Models get the Dataset's normalisation folded in, so every box is in raw pixel space and
clipped to the valid range.  A grafted model is written in its verifier-ready form
(``rewrite.native``: grafted units out of the Relus, no Mul on a feature map, patches mode
in α,β-CROWN) after a check that its outputs equal the mask form's; ``simplify=False``
keeps the mask form.  Everything is built in a temporary sibling folder and
renamed at the end: a failed export leaves nothing behind, and the same seed gives
byte-identical files.  What the VNN-COMP rules add (``generate_properties.py`` and its
``data/``, LICENSE, the 6-hour check) lives in :mod:`.genprops`, the README in :mod:`.readme`.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from .._io import install_folder
from ..data.dataset import Dataset
from ..errors import BadInput, GraftFailure
from ..model import OrtRunner, graph_inputs, load_model, prepend_normalisation
from ..model.graftmeta import read_grafts, read_smooth
from ..parity import compare, random_inputs
from ..rewrite.native import native_form
from .genprops import (
    STATUS_ATTACKED,
    STATUS_MISCLASSIFIED,
    check_total_time,
    generator_config,
    license_text,
    write_generator,
)
from .readme import NATIVE_RTOL
from .readme import readme_text as _readme  # the name tests patch to simulate a failed write
from .settings import UNSPECIFIED_LICENSE
from .spec import Property
from .vnnlib import vnnlib_text
from .vnnlib2 import vnnlib2_text

__all__ = ["BenchmarkInfo", "ExportModel", "export_benchmark", "check_benchmark_output", "SKIP_MODES", "NATIVE_RTOL"]

SKIP_MODES = ("misclassified", "none", "attacked")


@dataclass(frozen=True)
class ExportModel:
    """One model as exported: its source, its path in the folder and its I/O shapes."""

    source: str
    path: str
    input_name: str
    output_name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    form: str = ""  # what was done to the source's graph (README), "" for an unchanged copy


@dataclass(frozen=True)
class BenchmarkInfo:
    """What :func:`export_benchmark` wrote; paths relative to ``out``."""

    out: Path
    models: tuple[ExportModel, ...]
    properties: tuple[str, ...]
    properties_v2: tuple[str, ...]
    indices: tuple[int, ...]
    labels: tuple[int, ...]
    eps: float
    seed: int
    timeout: float
    skip: str
    requested: int
    skipped_misclassified: int
    skipped_attacked: int
    gz: bool
    dataset: str
    gz_only: bool = False
    license: str = UNSPECIFIED_LICENSE

    @property
    def n_properties(self) -> int:
        return len(self.properties)

    @property
    def n_instances(self) -> int:
        return len(self.models) * len(self.properties)

    @property
    def total_timeout(self) -> float:
        """Summed timeouts of all instances: VNN-COMP allows 6 hours per benchmark."""
        return self.n_instances * self.timeout


def _check_args(models: Sequence[Path], data: Dataset, eps: float, n: int, timeout: float, skip: str) -> None:
    if not models:
        raise BadInput("no model given: name at least one .onnx file to export")
    if not (math.isfinite(eps) and eps >= 0):
        raise BadInput(f"--eps {eps} is invalid: give a finite L∞ radius >= 0 on the raw pixel scale (e.g. 0.02)")
    if n < 1:
        raise BadInput(f"--instances {n} is invalid: export at least 1 property")
    if not (math.isfinite(timeout) and timeout > 0):
        raise BadInput(f"--timeout {timeout} is invalid: give a positive number of seconds per instance")
    if skip not in SKIP_MODES:
        raise BadInput(f"--skip {skip!r} is unknown: choose one of {', '.join(SKIP_MODES)}")
    if data.y is None:
        raise BadInput(f"dataset {data.source} has no labels: robustness properties need the true class of each image")
    if len(data) == 0:
        raise BadInput(f"dataset {data.source} is empty: nothing to export")


def check_benchmark_output(out: str | os.PathLike[str], force: bool = False) -> Path:
    """Fail early (before any work) when ``out`` cannot become the benchmark folder."""
    out = Path(out)
    if not out.parent.is_dir():
        raise BadInput(f"output folder's parent {out.parent} does not exist: create it first or choose another -o")
    if out.exists() and not force:
        raise BadInput(f"output {out} already exists: pass --force to replace it, or choose another -o")
    if out.exists() and not out.is_dir():
        raise BadInput(f"output {out} exists and is not a folder: choose another -o")
    return out


def _dims(vi: onnx.ValueInfoProto) -> tuple[int, ...]:
    """Concrete dims of a graph input/output; a symbolic (batch) axis becomes 1."""
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                 for d in vi.type.tensor_type.shape.dim)



def _verifier_ready(model: onnx.ModelProto, data: Dataset, where: Path) -> tuple[onnx.ModelProto, str]:
    """The native form of a grafted ``model``, checked equal to it on data and random inputs; README note."""
    native, rep = native_form(model)
    lo, hi = data.input_range
    x = np.concatenate([np.asarray(data.x[:64], np.float32), random_inputs(data.sample_shape, 64, lo, hi)])
    ref = OrtRunner(model).logits(x)
    diff = compare(lambda _: ref, lambda v: OrtRunner(native).logits(v), x).max_abs_diff
    tol = NATIVE_RTOL * max(1.0, float(np.abs(ref).max()))
    if not diff <= tol:
        raise GraftFailure(f"the verifier-ready form of {where} differs from the grafted model by {diff:.3g} "
                           f"(> {tol:.3g}): export with --no-simplify and report this model")
    left = f"; {len(rep.skipped)} site(s) left in mask form" if rep.skipped else ""
    return native, (f"verifier-ready form (graftonnx simplify): ReLU neurons {rep.relu_neurons_before} → "
                    f"{rep.relu_neurons_after}, max output difference from the grafted mask form {diff:.2g} "
                    f"on {len(x)} inputs{left}")


def _prepare(paths: Sequence[Path], data: Dataset, simplify: bool = True) -> list[tuple[onnx.ModelProto, ExportModel]]:
    """Load every model, fold the data's normalisation in, check all fit the data the same way.

    With ``simplify``, grafted models become their verifier-ready form (see the module doc).
    """
    out: list[tuple[onnx.ModelProto, ExportModel]] = []
    used: set[str] = set()
    for p in paths:
        model = prepend_normalisation(load_model(p), data.mean, data.std, data.channel_axis)
        form = ""
        if simplify and (read_grafts(model) or read_smooth(model)):
            model, form = _verifier_ready(model, data, p)
        inp, outp = graph_inputs(model)[0], model.graph.output[0]
        xs, ys = _dims(inp), _dims(outp)
        if math.prod(xs) != math.prod(data.sample_shape) or (len(xs) == len(data.sample_shape) + 1
                                                             and xs[1:] != data.sample_shape):
            raise BadInput(f"model {p} takes input {list(xs)} but the dataset's images are {list(data.sample_shape)}: "
                           "load the data in this model's layout (--layout)")
        if out and (xs, ys) != (out[0][1].input_shape, out[0][1].output_shape):
            raise BadInput(f"model {p} has input {list(xs)} / output {list(ys)} but {out[0][1].source} has "
                           f"{list(out[0][1].input_shape)} / {list(out[0][1].output_shape)}: "
                           "models sharing a benchmark must share input layout and classes")
        stem, k = Path(p).stem, 1
        while f"{stem}.onnx" in used:
            k += 1
            stem = f"{Path(p).stem}_{k}"
        used.add(f"{stem}.onnx")
        out.append((model, ExportModel(str(p), f"onnx/{stem}.onnx", inp.name, outp.name, xs, ys, form)))
    return out


def _model_bytes(model: onnx.ModelProto, spec: ExportModel, folded: bool) -> bytes:
    """The source file's bytes when nothing was folded or rewritten (an exact copy), else the new graph."""
    return model.SerializeToString() if folded or spec.form else Path(spec.source).read_bytes()


def _attacked(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray, eps: float, data: Dataset, seed: int
              ) -> np.ndarray:
    """True where a quick PGD attack (20 steps, 1 restart) finds a counterexample in the box."""
    try:
        import torch

        from .. import torch_bridge  # noqa: F401  (the converter to_torch needs)
        from ..attack import PgdConfig, pgd
        from ..train.bridge import to_torch
    except ImportError as exc:
        raise BadInput(f"--skip attacked needs the PGD attack and the ONNX→torch converter, not available ({exc}): "
                       "use --skip misclassified") from None
    module = to_torch(model)
    lo, hi = data.input_range
    _, fooled = pgd(module, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y),
                    PgdConfig(eps=eps, steps=20, restarts=1, seed=seed), lo, hi)
    return fooled.numpy()


def _select(model: onnx.ModelProto, data: Dataset, eps: float, n: int, seed: int, skip: str
            ) -> tuple[list[int], int, int, np.ndarray]:
    """Up to ``n`` dataset indices in a seeded random order, skipping as ``skip`` asks.

    Returns the chosen indices, how many images before the last chosen one were skipped
    as misclassified and as attacked (the counts the README reports), and every image's
    status (``genprops.STATUS_*``), which ``generate_properties.py`` selects from.
    """
    order = np.random.default_rng(seed).permutation(len(data))
    y = np.asarray(data.y, dtype=np.int64)
    correct = np.ones(len(data), dtype=bool)
    if skip != "none":
        correct = OrtRunner(model).logits(data.x).reshape(len(data), -1).argmax(axis=1) == y
    fooled = np.zeros(len(data), dtype=bool)
    if skip == "attacked":
        fooled = _fooled(model, data, order[correct[order]], n, eps, seed)
    chosen: list[int] = []
    n_wrong = n_attacked = 0
    for i in order:
        if len(chosen) == n:
            break
        if not correct[i]:
            n_wrong += 1
        elif fooled[i]:
            n_attacked += 1
        else:
            chosen.append(int(i))
    status = np.where(~correct, STATUS_MISCLASSIFIED, np.where(fooled, STATUS_ATTACKED, 0)).astype(np.int8)
    return chosen, n_wrong, n_attacked, status


def _fooled(model: onnx.ModelProto, data: Dataset, candidates: np.ndarray, n: int, eps: float, seed: int
            ) -> np.ndarray:
    """Attack candidates in order, chunk by chunk, until ``n`` survive; True where PGD broke one."""
    fooled = np.zeros(len(data), dtype=bool)
    chunk, done, survivors = max(n, 32), 0, 0
    while done < len(candidates) and survivors < n:
        idx = candidates[done:done + chunk]
        hit = _attacked(model, data.x[idx], np.asarray(data.y, dtype=np.int64)[idx], eps, data, seed)
        fooled[idx[hit]] = True
        survivors += int((~hit).sum())
        done += len(idx)
    return fooled


def _write_bytes(path: Path, data: bytes, gz: bool) -> None:
    """A ``.gz`` path is written compressed, else plain plus a ``.gz`` copy when ``gz``.

    Plain writes: the whole temp folder is renamed at the end, which is what makes the export atomic.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):  # mtime=0 and no file name inside: the same input gives the same .gz bytes
        path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        return
    path.write_bytes(data)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def _eps_tag(eps: float) -> str:
    return f"{eps:.6g}"


def export_benchmark(models: Sequence[str | os.PathLike[str]], data: Dataset, eps: float, n: int, seed: int,
                     out: str | os.PathLike[str], timeout: float, skip: str = "misclassified", gz: bool = False,
                     force: bool = False, simplify: bool = True, gz_only: bool = False,
                     license: str = UNSPECIFIED_LICENSE, allow_over_6h: bool = True) -> BenchmarkInfo:
    """Write a VNN-COMP benchmark folder ``out`` with up to ``n`` L∞ properties of radius ``eps``.

    Images are taken in a ``seed``-shuffled order; ``skip`` drops images the first model
    misclassifies (``misclassified``), also those a quick PGD attack breaks (``attacked``),
    or none.  Every model is paired with every property in ``instances.csv``.  Grafted
    models are written in their verifier-ready form unless ``simplify=False``.  ``gz_only``
    writes ``.onnx.gz``/``.vnnlib.gz`` files only; ``license`` goes to LICENSE.  Summed
    timeouts over VNN-COMP's 6 hours raise BadInput unless ``allow_over_6h``: the CLI refuses
    by default (``ExportSettings``), the Python API allows it so internal experiments run as before.
    """
    out = Path(out)
    _check_args(models, data, eps, n, timeout, skip)
    if gz and gz_only:
        raise BadInput("gz and gz_only contradict: gz writes plain files and .gz copies, gz_only only .gz files")
    check_benchmark_output(out, force)
    prepared = _prepare([Path(m) for m in models], data, simplify)
    if gz_only:
        prepared = [(m, replace(spec, path=spec.path + ".gz")) for m, spec in prepared]
    chosen, n_wrong, n_attacked, status = _select(prepared[0][0], data, eps, n, seed, skip)
    if not chosen:
        raise BadInput(f"no image of {data.source} is left to export ({n_wrong} misclassified, {n_attacked} "
                       "attacked): check that the model and data match, or use --skip none")
    check_total_time(len(prepared) * len(chosen), float(timeout), allow_over_6h)
    n_classes = math.prod(prepared[0][1].output_shape)
    props = [Property.linf_ball(data.x[i], eps, int(data.y[i]), n_classes, data.input_range)  # type: ignore[index]
             for i in chosen]
    suffix = ".gz" if gz_only else ""
    names = [f"img{i}_label{p.label}_eps{_eps_tag(eps)}.vnnlib{suffix}" for i, p in zip(chosen, props, strict=True)]
    info = BenchmarkInfo(out, tuple(m for _, m in prepared), tuple(f"vnnlib/{x}" for x in names),
                         tuple(f"2.0/vnnlib/{x}" for x in names), tuple(chosen), tuple(p.label for p in props),
                         float(eps), int(seed), float(timeout), skip, int(n), n_wrong, n_attacked, bool(gz),
                         Path(data.source).name or data.source, bool(gz_only), license)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        _write_all(tmp, prepared, props, info, data)
        _write_vnncomp(tmp, info, data, status)
        install_folder(tmp, out, "benchmark folder")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _write_all(root: Path, prepared: list[tuple[onnx.ModelProto, ExportModel]], props: list[Property],
               info: BenchmarkInfo, data: Dataset) -> None:
    """Everything into ``root`` (a private temp folder, renamed as a whole afterwards).

    ``2.0/`` is a benchmark folder of its own (VNN-COMP 2026 takes 2.0 benchmarks as folders):
    it holds a copy of every network, so its ``instances.csv`` paths resolve inside it.
    """
    for model, spec in prepared:
        blob = _model_bytes(model, spec, data.normalised)
        _write_bytes(root / spec.path, blob, info.gz)
        _write_bytes(root / "2.0" / spec.path, blob, info.gz)
    spec0 = prepared[0][1]
    for i, prop, v1, v2 in zip(info.indices, props, info.properties, info.properties_v2, strict=True):
        comment = (f"{info.dataset} image {i}, label {prop.label}, L-inf eps {info.eps:g} in pixel range "
                   f"[{data.input_range[0]:g}, {data.input_range[1]:g}]; generated by graftonnx export")
        _write_bytes(root / v1, vnnlib_text(prop, comment).encode(), info.gz)
        _write_bytes(root / v2, vnnlib2_text(prop, spec0.input_shape, spec0.output_shape, comment).encode(), info.gz)
    t = f"{info.timeout:g}"
    rows = [f"{m.path},{v},{t}" for m in info.models for v in info.properties]
    rows2 = [f"{m.path},{v.removeprefix('2.0/')},{t}" for m in info.models for v in info.properties_v2]
    (root / "instances.csv").write_text("\n".join(rows) + "\n")
    (root / "2.0" / "instances.csv").write_text("\n".join(rows2) + "\n")
    (root / "README.md").write_text(_readme(info, data))
    os.chmod(root, 0o755)


def _write_vnncomp(root: Path, info: BenchmarkInfo, data: Dataset, status: np.ndarray) -> None:
    """What the VNN-COMP rules ask besides the instances: LICENSE, ``generate_properties.py`` and its data."""
    (root / "LICENSE").write_text(license_text(info.license))
    m0 = info.models[0]
    config = generator_config(dataset=info.dataset, eps=info.eps, instances=info.requested, timeout=info.timeout,
                              input_range=data.input_range, n_classes=math.prod(m0.output_shape),
                              models=[m.path for m in info.models], input_shape=m0.input_shape,
                              output_shape=m0.output_shape, gz=info.gz, gz_only=info.gz_only, seed=info.seed)
    write_generator(root, np.asarray(data.x), np.asarray(data.y, dtype=np.int64), status, config)
