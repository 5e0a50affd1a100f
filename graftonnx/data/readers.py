"""Readers for dataset files: npz, npy, ERAN CSV, MNIST IDX and CIFAR-10 pickle batches.

Each reader registers itself with :func:`~graftonnx.data.formats.data_format` and returns
:class:`~graftonnx.data.formats.RawImages` in the file's natural layout; fitting to a
model (layout, scale, validation) happens once, in :mod:`graftonnx.data.load`.
Pickles are only ever opened through :func:`safe_unpickle`, never ``allow_pickle=True``.
"""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np

from ..errors import BadInput
from ._safe_pickle import safe_unpickle
from .dataset import DataSpec
from .formats import RawImages, data_format

__all__ = ["read_npz", "read_npy", "read_eran_csv", "read_idx", "read_cifar", "read_labels", "raw_from_array",
           "idx_labels_path"]

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _need(path: Path | None) -> Path:
    if path is None:
        raise BadInput("this data format reads a file: give its path with --data")
    return path


def raw_from_array(x: np.ndarray, y: np.ndarray | None, where: object) -> RawImages:
    """Guess the natural layout of an array dump from its shape.

    (N, D) is flat; (N, H, W) is greyscale HWC; (N, A, B, C) is CHW when only A is a
    plausible channel count (1 or 3), else HWC when C is, else its rows are taken flat.
    """
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise BadInput(f"{where}: images have dtype {x.dtype}; store them as a numeric array")
    if x.ndim == 2:
        return RawImages(x, y, "flat")
    if x.ndim == 3:
        return RawImages(x[..., None], y, "hwc")
    if x.ndim == 4:
        if x.shape[1] in (1, 3) and x.shape[3] not in (1, 3):
            return RawImages(x, y, "chw")
        if x.shape[3] in (1, 3):
            return RawImages(x, y, "hwc")
        return RawImages(x.reshape(len(x), -1), y, "flat")
    raise BadInput(f"{where}: images have shape {x.shape}; expected one sample per row, "
                   "i.e. (N, D), (N, H, W), (N, C, H, W) or (N, H, W, C)")


@data_format("npz", suffixes=(".npz",), magic=lambda h: h[:4] == b"PK\x03\x04")
def read_npz(path: Path | None, spec: DataSpec) -> RawImages:
    """numpy .npz: arrays x/y, or images/labels, or else the first two arrays."""
    path = _need(path)
    with np.load(path, allow_pickle=False) as z:
        names = list(z.files)
        if not names:
            raise BadInput(f"{path} holds no arrays: save the images as x (and labels as y)")
        for xk, yk in (("x", "y"), ("images", "labels"), ("X", "y"), ("X", "Y")):
            if xk in names:
                return raw_from_array(z[xk], z[yk] if yk in names else None, path)
        return raw_from_array(z[names[0]], z[names[1]] if len(names) > 1 else None, path)


def _npy_dict(path: Path) -> dict[str, np.ndarray]:
    """A pickled ``{"x": ..., "y": ...}`` saved by ``np.save``, unpickled safely."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(fh)
        if dtype.kind != "O" or shape != ():
            raise BadInput(f"{path} holds a pickled {dtype} array of shape {shape}: only a dict with x (and y) "
                           "can be pickled; save plain arrays instead")
        obj = safe_unpickle(fh.read())
    obj = obj.item() if isinstance(obj, np.ndarray) else obj
    if not isinstance(obj, dict) or "x" not in obj:
        raise BadInput(f"{path} holds a pickled {type(obj).__name__}, not a dict with key 'x': "
                       "save np.save(path, {'x': images, 'y': labels}) or a plain array")
    return obj


@data_format("npy", suffixes=(".npy",), magic=lambda h: h[:6] == b"\x93NUMPY")
def read_npy(path: Path | None, spec: DataSpec) -> RawImages:
    """numpy .npy: an image array (no labels), or a pickled dict with x and y."""
    path = _need(path)
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise
        d = _npy_dict(path)
        return raw_from_array(np.asarray(d["x"]), None if d.get("y") is None else np.asarray(d["y"]), path)
    return raw_from_array(x, None, path)


def _looks_like_csv(head: bytes) -> bool:
    text = head.split(b"\n", 1)[0]
    return bool(text) and all(c in b"0123456789.,-+eE \t\r" for c in text) and b"," in text


@data_format("eran-csv", suffixes=(".csv",), magic=_looks_like_csv)
def read_eran_csv(path: Path | None, spec: DataSpec) -> RawImages:
    """ERAN CSV: per row the label, then the pixels (row-major, RGB interleaved for colour)."""
    path = _need(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # numpy warns on an empty file; we report it ourselves
        rows = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    if rows.size == 0:
        return RawImages(np.zeros((0, 0)), np.zeros(0, np.int64), "flat")
    if rows.shape[1] < 2:
        raise BadInput(f"{path} has {rows.shape[1]} column(s): an ERAN CSV row is the label, then the pixels")
    return RawImages(rows[:, 1:], rows[:, 0], "flat")


def _open(path: Path) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as fh:
        return fh.read()


def _idx_array(path: Path) -> np.ndarray:
    data = _open(path)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise BadInput(f"{path} is not an IDX file (bad magic number): give an MNIST *-idx3-ubyte file")
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", count=ndim, offset=4).astype(int)
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    count = int(np.prod(dims))
    if len(data) - 4 - 4 * ndim < count * dtype.itemsize:
        raise BadInput(f"{path} is truncated: its header promises shape {tuple(dims)}; re-download the file")
    arr = np.frombuffer(data, dtype, count=count, offset=4 + 4 * ndim)
    return arr.reshape(tuple(dims)).astype(dtype.newbyteorder("="))


def idx_labels_path(images: Path) -> Path:
    """The usual labels file next to an IDX images file (``*-images-idx3-ubyte`` → ``*-labels-idx1-ubyte``)."""
    return images.with_name(images.name.replace("images", "labels").replace("idx3", "idx1"))


def _idx_magic(head: bytes) -> bool:
    return len(head) >= 4 and head[:2] == b"\0\0" and head[2] in _IDX_DTYPES and 1 <= head[3] <= 4


@data_format("idx", suffixes=("idx3-ubyte", ".idx"), magic=_idx_magic)
def read_idx(path: Path | None, spec: DataSpec) -> RawImages:
    """MNIST IDX images (optionally .gz); labels from the matching *-labels-idx1-ubyte file."""
    path = _need(path)
    x = _idx_array(path)
    y = None
    if spec.labels is None:
        lab = idx_labels_path(path)
        if lab != path and lab.exists():
            y = _idx_array(lab)
        else:
            warnings.warn(f"no labels file {lab.name} next to {path}: loading images without labels "
                          "(pass --data-labels to give one)", stacklevel=2)
    raw = raw_from_array(x, y, path)
    return RawImages(raw.x, raw.y, raw.layout, 255.0 if x.dtype == np.uint8 else None)


def _pick(d: dict, *keys: str) -> object:
    for k in keys:
        for kk in (k, k.encode()):
            if kk in d:
                return d[kk]
    return None


@data_format("cifar", suffixes=("_batch", "_batch_1", "_batch_2", "_batch_3", "_batch_4", "_batch_5"),
             magic=lambda h: h[:1] == b"\x80")
def read_cifar(path: Path | None, spec: DataSpec) -> RawImages:
    """CIFAR-10/100 python pickle batch: b'data' rows CHW-planar (3×32×32), b'labels'."""
    path = _need(path)
    obj = safe_unpickle(_open(path), encoding="bytes")
    data = _pick(obj, "data") if isinstance(obj, dict) else None
    if data is None:
        raise BadInput(f"{path} is a pickle but not a CIFAR batch (no b'data' key): give a data_batch_* or "
                       "test_batch file from cifar-10-batches-py")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] % 3:
        raise BadInput(f"{path}: CIFAR b'data' has shape {data.shape}; expected (N, 3*H*W) rows")
    side = int(round((data.shape[1] // 3) ** 0.5))
    if 3 * side * side != data.shape[1]:
        raise BadInput(f"{path}: CIFAR rows have {data.shape[1]} values, not 3 square colour planes")
    labels = _pick(obj, "labels", "fine_labels")
    y = None if labels is None else np.asarray(labels)
    return RawImages(data.reshape(len(data), 3, side, side), y, "chw", 255.0 if data.dtype == np.uint8 else None)


def read_labels(path: str | Path) -> np.ndarray:
    """Labels from a separate file: IDX (``*-idx1-ubyte``, .gz), .npy or text (one per line or comma-separated)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise BadInput(f"labels file {p} not found: check --data-labels")
    try:
        if _idx_magic(_open(p)[:4]):
            return _idx_array(p).ravel()
        if p.suffix == ".npy":
            return np.load(p, allow_pickle=False).ravel()
        return np.loadtxt(p, delimiter=",", ndmin=1).ravel() if b"," in p.read_bytes()[:4096] \
            else np.loadtxt(p, ndmin=1).ravel()
    except (OSError, ValueError, EOFError) as exc:
        raise BadInput(f"cannot read labels file {p}: {' '.join(str(exc).split())}; give IDX, .npy or text "
                       "labels") from None
