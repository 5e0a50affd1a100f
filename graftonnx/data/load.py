"""``load_dataset``: read a source, fit it to a model's input, validate it, once.

Why all checks live here: later stages (scoring, bounds, finetuning) trust a Dataset
blindly, so every way user data can be wrong — wrong size, NaNs, labels the model
cannot output, values outside the ε-clipping range, a mean/std that does not match
the channels — is caught at the door with one line naming the file and the fix.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..errors import BadInput
from ..model.info import ModelInfo
from . import bundled, readers  # noqa: F401  (importing registers the formats)
from .dataset import Dataset, DataSpec
from .formats import RawImages, read_source, resolve_source
from .layout import channel_axis_of, channels_of, model_layout, scale_divisor, to_model_layout

__all__ = ["load_dataset", "SyntheticDataWarning", "NormalisationWarning", "check_spec"]


class SyntheticDataWarning(UserWarning):
    """No dataset was given, so random inputs stand in for real images."""


class NormalisationWarning(UserWarning):
    """Only one of mean/std was given; the other takes its identity value."""


def _norm(values: tuple[float, ...] | None, what: str, channels: int, layout: str) -> tuple[float, ...] | None:
    if values is None:
        return None
    vals = tuple(float(v) for v in values)
    if len(vals) not in (1, channels):
        allowed = "1 value" if channels == 1 else f"1 or {channels} values"
        raise BadInput(f"--{what} has {len(vals)} values but the model input ({layout}) has {channels} "
                       f"channel(s): give {allowed}, comma-separated")
    if not all(math.isfinite(v) for v in vals):
        raise BadInput(f"--{what} {','.join(map(str, vals))} contains NaN or inf: give finite numbers")
    if what == "std" and any(v <= 0 for v in vals):
        raise BadInput(f"--std {','.join(map(str, vals))} has a value <= 0: every std must be positive")
    return vals


def check_spec(spec: DataSpec, channels: int = 1, layout: str = "flat") -> tuple[tuple[float, ...] | None,
                                                                                     tuple[float, ...] | None]:
    """Check mean/std against the model's channels (the spec's own knobs are checked where it is made).

    One of the two alone is completed (std 1, mean 0) with a one-line warning: the intent
    (normalise) is clear and the default is the identity, but it used to pass silently,
    and the Dataset now records the value actually used.
    """
    mean, std = _norm(spec.mean, "mean", channels, layout), _norm(spec.std, "std", channels, layout)
    if (mean is None) != (std is None):
        given, missing, default = ("mean", "std", 1.0) if std is None else ("std", "mean", 0.0)
        warnings.warn(f"--{given} given without --{missing}: {missing} defaults to {default:g}; "
                      f"pass --{missing} too if the model expects another value", NormalisationWarning, stacklevel=2)
        mean, std = mean or (0.0,), std or (1.0,)
    return mean, std


def _labels(y: np.ndarray | None, n: int, n_classes: int | None, where: object) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y).ravel()
    if len(y) != n:
        raise BadInput(f"{where}: {n} images but {len(y)} labels: give one label per image")
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        raise BadInput(f"{where}: labels must be whole numbers (class indices), got dtype {y.dtype}")
    y = y.astype(np.int64)
    if n_classes is not None and y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = int(np.flatnonzero((y < 0) | (y >= n_classes))[0])
        raise BadInput(f"{where}: label {int(y[bad])} of sample {bad} is outside [0, {n_classes}) (the model has "
                       f"{n_classes} outputs): use labels for this model's classes")
    return y


def _check_values(x: np.ndarray, where: object, input_range: tuple[float, float], divisor: float) -> None:
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise BadInput(f"{where}: sample {int(np.flatnonzero(bad)[0])} contains NaN or inf; clean the data first")
    lo, hi = input_range
    xmin, xmax = float(x.min()), float(x.max())
    if xmin < lo - 1e-6 or xmax > hi + 1e-6:
        raise BadInput(f"{where}: values after scaling (÷{divisor:g}) span [{xmin:.4g}, {xmax:.4g}], outside "
                       f"--input-range [{lo:g}, {hi:g}]: fix --scale (auto|255|1) or --input-range")


def _n_classes(info: ModelInfo) -> int | None:
    if not info.outputs or not info.outputs[0].dims:
        return None
    last = info.outputs[0].dims[-1]
    return int(last) if last else None


def _synthetic(info: ModelInfo, spec: DataSpec, layout: str, mean: tuple[float, ...] | None,
               std: tuple[float, ...] | None) -> Dataset:
    n = spec.n or 100
    shape = info.input.sample_shape
    warnings.warn(f"no --data given: using {n} random inputs uniform in {list(spec.input_range)}; real images "
                  "give much better neuron choices and accuracy numbers", SyntheticDataWarning, stacklevel=3)
    lo, hi = (float(v) for v in spec.input_range)
    x = np.random.default_rng(spec.seed).uniform(lo, hi, size=(n, *shape)).astype(np.float32)
    return Dataset(x, None, f"synthetic:uniform(seed={spec.seed})", (lo, hi), mean, std,
                   channel_axis_of(shape, layout), True, {"format": "synthetic", "layout": layout})


def _fit(raw: RawImages, info: ModelInfo, spec: DataSpec, layout: str, where: object) -> tuple[np.ndarray, float]:
    if raw.x.shape[0] == 0 or raw.x.size == 0:
        raise BadInput(f"{where} holds no samples: give a dataset with at least one image")
    if spec.n is not None:
        raw = RawImages(raw.x[:spec.n], None if raw.y is None else raw.y[:spec.n], raw.layout, raw.full_scale,
                        raw.note)
    x = to_model_layout(raw, info.input.sample_shape, layout, where)
    divisor = scale_divisor(raw, spec.scale)
    x = np.ascontiguousarray(x, dtype=np.float32) / np.float32(divisor)  # float32 throughout: 60k MNIST fits
    _check_values(x, where, tuple(float(v) for v in spec.input_range), divisor)
    return x, divisor


def load_dataset(source: str | None, info: ModelInfo, spec: DataSpec | None = None) -> Dataset:
    """Load ``source`` (a file path or built-in name; None for synthetic inputs) fitted to ``info``'s input.

    The result holds raw pixels scaled into ``spec.input_range`` in the model's input
    layout; ``spec.mean``/``spec.std`` are validated and stored, never applied to ``x``.
    """
    spec = spec or DataSpec()
    shape = info.input.sample_shape
    layout = model_layout(shape, spec.layout)
    channels = channels_of(shape, layout)
    mean, std = check_spec(spec, channels, layout)
    if source is None:
        return _synthetic(info, spec, layout, mean, std)
    fmt, path = resolve_source(str(source), spec)
    where = path if path is not None else f"built-in dataset {fmt.name}"
    raw = read_source(fmt, path, spec)
    if spec.labels is not None:
        raw = RawImages(raw.x, readers.read_labels(spec.labels), raw.layout, raw.full_scale, raw.note)
    n_all = len(raw.x)
    x, divisor = _fit(raw, info, spec, layout, where)
    y = _labels(raw.y, n_all, _n_classes(info), where)
    y = None if y is None else y[:len(x)]
    meta = {"format": fmt.name, "layout": layout, "source_layout": raw.layout, "scale": f"1/{divisor:g}",
            "samples_in_source": str(n_all)}
    if raw.note:
        meta["note"] = raw.note
    return Dataset(x, y, str(path) if path is not None else fmt.name, tuple(float(v) for v in spec.input_range),
                   mean, std, channel_axis_of(shape, layout), False, meta)
