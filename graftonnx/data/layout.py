"""Fitting raw images to a model's input: layout and value scale.

Why one canonical pivot: every source is first turned into rows of pixels in
HWC-interleaved row-major order (the ERAN CSV order), together with its channel count
when known.  From there each model layout is a single reshape (+ transpose for NCHW),
so the n×m source/model combinations reduce to n + m small steps.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import BadInput
from .formats import RawImages

__all__ = ["MODEL_LAYOUTS", "SCALES", "model_layout", "channels_of", "channel_axis_of", "to_model_layout",
           "scale_divisor"]

MODEL_LAYOUTS = ("auto", "nchw", "nhwc", "flat")
SCALES = ("auto", "255", "1")


def model_layout(sample_shape: tuple[int, ...], override: str = "auto") -> str:
    """``nchw`` for (C,H,W), ``nhwc`` for (H,W,C) with C in {1,3}, else ``flat``; ``override`` wins if set."""
    if override not in MODEL_LAYOUTS:
        raise BadInput(f"unknown layout {override!r}: choose one of {', '.join(MODEL_LAYOUTS)}")
    if override != "auto":
        if override in ("nchw", "nhwc") and len(sample_shape) != 3:
            raise BadInput(f"--layout {override} needs a 3-axis model input per sample, but the model takes "
                           f"{sample_shape}: use --layout flat or auto")
        return override
    if len(sample_shape) == 3 and sample_shape[0] in (1, 3):
        return "nchw"
    if len(sample_shape) == 3 and sample_shape[-1] in (1, 3):
        return "nhwc"
    return "flat"


def channels_of(sample_shape: tuple[int, ...], layout: str) -> int:
    """Channel count the model's layout implies (1 for flat inputs)."""
    if layout == "nchw":
        return int(sample_shape[0])
    if layout == "nhwc":
        return int(sample_shape[-1])
    return 1


def channel_axis_of(sample_shape: tuple[int, ...], layout: str) -> int:
    """Per-sample channel axis for mean/std: 0 for nchw (and flat), the last for nhwc."""
    return len(sample_shape) - 1 if layout == "nhwc" else 0


def _hwc_rows(raw: RawImages) -> tuple[np.ndarray, tuple[int, int, int] | None]:
    """Rows in HWC-interleaved row-major order, plus the (H, W, C) geometry when known."""
    x = raw.x
    if raw.layout == "chw":
        x = x.transpose(0, 2, 3, 1)
    if raw.layout == "flat":
        return x.reshape(len(x), -1), None
    geom = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
    return np.ascontiguousarray(x).reshape(len(x), -1), geom


def _shape_name(raw: RawImages) -> str:
    names = {"hwc": "H,W,C", "chw": "C,H,W", "flat": "flat"}
    return f"{tuple(int(s) for s in raw.x.shape[1:])} ({names[raw.layout]})"


def to_model_layout(raw: RawImages, sample_shape: tuple[int, ...], layout: str, where: object) -> np.ndarray:
    """Reshape/transpose ``raw.x`` to (N, *sample_shape) for a model whose input layout is ``layout``.

    A flat model gets the HWC-interleaved rows reshaped row-major; an nhwc model the same
    rows as (H, W, C); an nchw model those transposed to (C, H, W).  Flat sources without
    a known geometry are read as HWC-interleaved (the ERAN CSV convention).
    """
    rows, geom = _hwc_rows(raw)
    want = math.prod(sample_shape)
    if rows.shape[1] != want:
        raise BadInput(f"{where}: each sample has {rows.shape[1]} values, shape {_shape_name(raw)}, but the model "
                       f"input takes {want} values, shape {tuple(sample_shape)}: use data made for this model")
    n = len(rows)
    if layout == "flat":
        return rows.reshape((n, *sample_shape))
    if layout == "nchw":
        c, h, w = sample_shape
    else:
        h, w, c = sample_shape
    if geom is not None and geom[2] != c:
        raise BadInput(f"{where}: images have {geom[2]} channel(s), shape {_shape_name(raw)}, but the model "
                       f"input {tuple(sample_shape)} ({layout}) has {c}: check --layout or the data")
    if geom is not None and c > 1 and geom[:2] != (h, w):
        raise BadInput(f"{where}: images are {geom[0]}x{geom[1]} but the model input {tuple(sample_shape)} "
                       f"({layout}) is {h}x{w}: use data made for this model or check --layout")
    x = rows.reshape(n, h, w, c)
    return x.transpose(0, 3, 1, 2) if layout == "nchw" else x


def scale_divisor(raw: RawImages, scale: str) -> float:
    """What to divide raw values by: ``255``, ``1`` or (``auto``) the format's full scale,
    else 255 for byte data or data whose maximum exceeds 1, else 1."""
    if scale not in SCALES:
        raise BadInput(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
    if scale != "auto":
        return float(scale)
    if raw.full_scale is not None:
        return float(raw.full_scale)
    if raw.x.dtype == np.uint8:
        return 255.0
    return 255.0 if raw.x.size and float(np.max(raw.x)) > 1.0 else 1.0
