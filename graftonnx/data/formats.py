"""The dataset-format registry: how a file (or built-in name) becomes raw images + labels.

Why a registry: people arrive with MNIST IDX files, CIFAR pickles, numpy dumps or the
ERAN CSVs.  Each format is one reader function registered with :func:`data_format`
right where it is defined (``readers.py``, ``bundled.py``); detection and error
reporting live here once.  A reader only *reads*: it returns the images in their
natural layout (:class:`RawImages`) and leaves fitting them to a model to
:mod:`graftonnx.data.load`.
"""

from __future__ import annotations

import gzip
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput
from ..registry import Registry
from .dataset import DataSpec

__all__ = ["RawImages", "DataFormat", "DATA_FORMATS", "data_format", "resolve_source", "read_source",
           "builtin_names", "RAW_LAYOUTS"]

RAW_LAYOUTS = ("hwc", "chw", "flat")


@dataclass(frozen=True, eq=False)
class RawImages:
    """Images as a reader found them, before any fitting to a model.

    ``layout`` says how ``x`` is arranged: ``"hwc"`` (N, H, W, C), ``"chw"`` (N, C, H, W,
    CHW-planar as in CIFAR pickles) or ``"flat"`` (N, D): rows in the source's row-major
    pixel order, HWC-interleaved for colour (as in the ERAN CSVs).  ``full_scale`` is the
    value of a white pixel when the format fixes it (16 for ``digits``, 255 for byte
    formats); ``None`` lets ``scale=auto`` decide from the data.
    """

    x: np.ndarray
    y: np.ndarray | None
    layout: str
    full_scale: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.layout not in RAW_LAYOUTS:
            raise ValueError(f"raw layout must be one of {RAW_LAYOUTS}, not {self.layout!r}")
        want = {"hwc": 4, "chw": 4, "flat": 2}[self.layout]
        if self.x.ndim != want:
            raise ValueError(f"{self.layout} images need {want} axes, got shape {self.x.shape}")


Reader = Callable[[Path | None, DataSpec], RawImages]


@dataclass(frozen=True)
class DataFormat:
    """One registered format: its reader plus what detection needs to recognise its files.

    ``magic`` tests the first bytes of a file (after gunzipping ``.gz``); ``suffixes`` are
    the fallback when no magic matches; ``builtin`` formats take no path (the source
    string is the format's name).
    """

    name: str
    read: Reader
    suffixes: tuple[str, ...] = ()
    magic: Callable[[bytes], bool] | None = None
    builtin: bool = False
    help: str = ""


DATA_FORMATS: Registry[DataFormat] = Registry("data format")


def data_format(name: str, *, suffixes: tuple[str, ...] = (), magic: Callable[[bytes], bool] | None = None,
                builtin: bool = False, help: str = "") -> Callable[[Reader], Reader]:
    """Decorator: register the decorated reader function as data format ``name``."""

    def deco(fn: Reader) -> Reader:
        doc = help or next(iter((fn.__doc__ or "").strip().splitlines()), "")
        DATA_FORMATS.register(name)(DataFormat(name, fn, suffixes, magic, builtin, doc))
        return fn

    return deco


def builtin_names() -> list[str]:
    """Names usable as a source without a file (``digits``, ``mnist5k``)."""
    return [k for k in DATA_FORMATS if DATA_FORMATS.get(k).builtin]


def _head(path: Path) -> bytes:
    """The first bytes of ``path``, gunzipped when it is a gzip file."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as gz:
            head = gz.read(64)
    return head


def _detect(path: Path) -> DataFormat:
    try:
        head = _head(path)
    except (OSError, EOFError) as exc:
        raise BadInput(f"cannot read data file {path}: {exc}; check the file and its permissions") from None
    if not head:
        raise BadInput(f"data file {path} is empty: give a file with at least one sample")
    formats = [DATA_FORMATS.get(k) for k in DATA_FORMATS]
    for fmt in formats:
        if fmt.magic is not None and fmt.magic(head):
            return fmt
    name = path.name.lower().removesuffix(".gz")
    for fmt in formats:
        if any(name.endswith(s) for s in fmt.suffixes):
            return fmt
    files = [k for k in DATA_FORMATS if not DATA_FORMATS.get(k).builtin]
    raise BadInput(f"cannot tell the format of data file {path}: pass --data-format (one of {', '.join(files)})")


def resolve_source(source: str, spec: DataSpec) -> tuple[DataFormat, Path | None]:
    """The format and file for ``source``: ``spec.format`` if set, else built-in name or detection."""
    path = Path(source).expanduser()
    if spec.format is not None:
        fmt = DATA_FORMATS.get(spec.format)
        if fmt.builtin:
            return fmt, None
    elif source in DATA_FORMATS and DATA_FORMATS.get(source).builtin and not path.exists():
        return DATA_FORMATS.get(source), None
    else:
        fmt = None
    if not path.exists():
        builtins = ", ".join(builtin_names())
        raise BadInput(f"data file {path} not found: give an existing file or a built-in dataset ({builtins})")
    if path.is_dir():
        raise BadInput(f"data source {path} is a directory: give the data file itself")
    return (fmt if fmt is not None else _detect(path)), path


_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile,
                pickle.UnpicklingError, gzip.BadGzipFile)


def read_source(fmt: DataFormat, path: Path | None, spec: DataSpec) -> RawImages:
    """Run ``fmt``'s reader, turning any parsing failure into one BadInput line."""
    where = path if path is not None else fmt.name
    try:
        raw = fmt.read(path, spec)
    except BadInput:
        raise
    except _READ_ERRORS as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise BadInput(f"cannot read {where} as {fmt.name} data: {msg}; check the file or pass the right "
                       "--data-format") from None
    return raw
