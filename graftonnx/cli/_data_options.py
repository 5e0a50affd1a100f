"""The dataset options every data-consuming command shares (score, graft, finetune, evaluate, export).

Usage in a command module::

    @main.command("score")
    @click.argument("model")
    @data_options
    def score_cmd(model: str, **kwargs) -> None:
        info = inspect_model(load_model(model))
        ds = load_from_options(info, kwargs)

The options are :class:`graftonnx.data.DataSpec`'s knobs (declared there, once); their
keyword names are the flags' names (``--data`` → ``data``, ``--data-format`` →
``data_format``).  A command must not define its own ``--seed``: it may read
``kwargs["seed"]`` for its other randomness too.  :func:`spec_from_options` ignores other
keys, so a command can pass all its kwargs straight through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..data import Dataset, DataSpec, load_dataset
from ..model.info import ModelInfo
from ..settings import dest_of, from_options, knobs, options

__all__ = ["data_options", "spec_from_options", "load_from_options", "DATA_OPTION_NAMES"]

#: The keyword names the data options add.
DATA_OPTION_NAMES = tuple(dest_of(f, k) for f, k in knobs(DataSpec))

data_options = options(DataSpec)


def spec_from_options(**kwargs: Any) -> DataSpec:
    """The DataSpec for the data options in ``kwargs`` (other keys are ignored)."""
    return from_options(DataSpec, kwargs)


def load_from_options(info: ModelInfo, kwargs: Mapping[str, Any]) -> Dataset:
    """Load ``kwargs["data"]`` for the model described by ``info`` using the other data options."""
    spec = spec_from_options(**kwargs)
    return load_dataset(spec.source, info, spec)
