"""Unpickling that can only rebuild plain containers and numpy arrays.

Why: CIFAR-10 batches and ``np.save``-d dicts are pickles, and ``pickle.load`` runs
whatever code a file names.  A dataset is user input, so we refuse every global except
the handful numpy needs to rebuild an array (and ``_codecs.encode``, which Python-2
era pickles use for byte strings); anything else is reported as a bad file.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

try:
    from numpy._core import multiarray as _ma
    from numpy._core import numeric as _num
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _ma  # type: ignore[no-redef]
    from numpy.core import numeric as _num  # type: ignore[no-redef]

__all__ = ["safe_unpickle", "UnsafePickle"]

# (module, name) pairs a pickled numpy array may reference.  ``numpy.core`` is the
# pre-2.0 spelling of ``numpy._core``; old files (e.g. the CIFAR-10 batches) use it.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy._core.multiarray", "_reconstruct"): _ma._reconstruct,
    ("numpy.core.multiarray", "_reconstruct"): _ma._reconstruct,
    ("numpy._core.multiarray", "scalar"): _ma.scalar,
    ("numpy.core.multiarray", "scalar"): _ma.scalar,
    ("numpy._core.numeric", "_frombuffer"): _num._frombuffer,
    ("numpy.core.numeric", "_frombuffer"): _num._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("codecs").encode,
}


class UnsafePickle(pickle.UnpicklingError):
    """The pickle names a global outside the allowed numpy/array set."""


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            # numpy 2 pickles dtypes through numpy.dtypes.<X>DType classes.
            if module == "numpy.dtypes" and name.endswith("DType") and hasattr(np.dtypes, name):
                return getattr(np.dtypes, name)
            raise UnsafePickle(f"refusing to load {module}.{name} from a pickle (only numpy arrays and plain "
                               "containers are allowed)") from None


def safe_unpickle(data: bytes, encoding: str = "ASCII") -> Any:
    """Unpickle ``data`` allowing only numpy arrays, dicts, lists, numbers and strings."""
    return _Restricted(io.BytesIO(data), encoding=encoding).load()
