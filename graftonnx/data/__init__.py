"""Datasets stage: read images from files or built-ins and fit them to a model's input.

``load_dataset(source, info, spec)`` is the one entry point; formats are pluggable
through :data:`DATA_FORMATS` (``npz``, ``npy``, ``eran-csv``, ``idx``, ``cifar`` and the
built-ins ``digits`` and ``mnist5k``).
"""

from . import bundled, readers  # noqa: F401  (importing registers the formats)
from .dataset import Dataset, DataSpec
from .formats import DATA_FORMATS, DataFormat, RawImages, builtin_names, data_format
from .layout import MODEL_LAYOUTS, SCALES, channel_axis_of, model_layout
from .load import SyntheticDataWarning, check_spec, load_dataset
from .readers import read_labels

__all__ = [
    "Dataset", "DataSpec", "DATA_FORMATS", "DataFormat", "RawImages", "builtin_names", "data_format",
    "MODEL_LAYOUTS", "SCALES", "channel_axis_of", "model_layout", "SyntheticDataWarning", "check_spec",
    "load_dataset", "read_labels",
]
