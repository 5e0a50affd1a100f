"""The dataset options every data-consuming command shares (score, graft, finetune, evaluate, export).

Usage in a command module::

    @main.command("score")
    @click.argument("model")
    @data_options
    def score_cmd(model: str, **kwargs) -> None:
        info = inspect_model(load_model(model))
        ds = load_from_options(info, kwargs)

Stable keyword names the decorator adds (and :func:`spec_from_options` reads):

=================  ======================  ==========================================
kwarg              option                  meaning (default)
=================  ======================  ==========================================
``data``           ``--data SOURCE``       file path or built-in name (none: synthetic)
``data_format``    ``--data-format``       force a format (detected from the file)
``data_labels``    ``--data-labels PATH``  separate labels file (the source's own)
``layout``         ``--layout``            auto|nchw|nhwc|flat (auto)
``scale``          ``--scale``             auto|255|1 (auto)
``mean``           ``--mean FLOATS``       comma-separated per-channel mean (none)
``std``            ``--std FLOATS``        comma-separated per-channel std (none)
``n``              ``--n INT``             first n samples (all; 100 if synthetic)
``input_range``    ``--input-range LO HI`` valid raw pixel range (0 1)
``seed``           ``--seed INT``          seed for synthetic inputs (0)
=================  ======================  ==========================================

A command must not define its own ``--seed`` (click would see it twice): it may read
``kwargs["seed"]`` for its other randomness too.  :func:`spec_from_options` ignores keys
outside :data:`DATA_OPTION_NAMES`, so a command can pass all its kwargs straight through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from ..data import DATA_FORMATS, MODEL_LAYOUTS, SCALES, Dataset, DataSpec, builtin_names, load_dataset
from ..errors import BadInput
from ..model.info import ModelInfo

__all__ = ["data_options", "spec_from_options", "load_from_options", "DATA_OPTION_NAMES",
           "parse_floats"]

F = TypeVar("F", bound=Callable[..., Any])

DATA_OPTION_NAMES = ("data", "data_format", "data_labels", "layout", "scale", "mean", "std", "n", "input_range",
                     "seed")


def parse_floats(text: str | float | tuple[float, ...] | list[float] | None, flag: str) -> tuple[float, ...] | None:
    """``"0.49,0.48,0.45"`` → ``(0.49, 0.48, 0.45)``; tuples/lists/numbers pass through as floats."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return (float(text),)
    if isinstance(text, tuple | list):
        items = list(text)
    else:
        items = [t for t in str(text).replace(" ", "").split(",") if t != ""]
    try:
        vals = tuple(float(t) for t in items)
    except (TypeError, ValueError):
        raise BadInput(f"{flag} {text!r} is not a comma-separated list of numbers: e.g. {flag} 0.5,0.5,0.5") from None
    if not vals:
        raise BadInput(f"{flag} is empty: give comma-separated numbers, e.g. {flag} 0.5")
    return vals


def data_options(fn: F) -> F:
    """Click decorator adding the shared dataset options (see the module docstring for the kwarg names)."""
    builtins = ", ".join(builtin_names())
    opts = [
        click.option("--data", "data", metavar="SOURCE", default=None,
                     help=f"Images: a file (.npz, .npy, ERAN .csv, MNIST IDX, CIFAR batch) or a built-in "
                          f"({builtins}). Default: none, i.e. random inputs (with a warning)."),
        click.option("--data-format", "data_format", type=click.Choice(DATA_FORMATS.keys()), default=None,
                     help="Format of --data. Default: detected from the file's content and suffix."),
        click.option("--data-labels", "data_labels", metavar="PATH", default=None,
                     help="Labels file (IDX, .npy or text) overriding the source's labels. Default: the "
                          "source's own (for IDX, the *-labels-idx1-ubyte file next to it)."),
        click.option("--layout", type=click.Choice(MODEL_LAYOUTS), default="auto", show_default=True,
                     help="Model input layout; auto: (C,H,W)→nchw, (H,W,C)→nhwc, else flat."),
        click.option("--scale", type=click.Choice(SCALES), default="auto", show_default=True,
                     help="Divide raw values by 255 or 1; auto: 255 if values exceed 1 (16 for digits)."),
        click.option("--mean", metavar="FLOATS", default=None,
                     help="Per-channel mean the model expects outside its graph, comma-separated. Default: none."),
        click.option("--std", metavar="FLOATS", default=None,
                     help="Per-channel std the model expects outside its graph, comma-separated. Default: none."),
        click.option("--n", "n", type=click.IntRange(min=1), default=None, metavar="N",
                     help="Use the first N samples. Default: all (100 for random inputs)."),
        click.option("--input-range", "input_range", type=(float, float), default=(0.0, 1.0), show_default=True,
                     metavar="LO HI", help="Valid raw pixel range (after --scale); ε-balls are clipped to it."),
        click.option("--seed", type=int, default=0, show_default=True, help="Random seed for synthetic inputs."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def spec_from_options(**kwargs: Any) -> DataSpec:
    """The DataSpec for the data options in ``kwargs`` (other keys are ignored)."""
    n = kwargs.get("n")
    lo_hi = kwargs.get("input_range") or (0.0, 1.0)
    if len(tuple(lo_hi)) != 2:
        raise BadInput(f"--input-range needs two numbers LO HI, got {lo_hi!r}")
    return DataSpec(
        format=kwargs.get("data_format"),
        layout=kwargs.get("layout") or "auto",
        scale=str(kwargs.get("scale") or "auto"),
        mean=parse_floats(kwargs.get("mean"), "--mean"),
        std=parse_floats(kwargs.get("std"), "--std"),
        n=None if n is None else int(n),
        input_range=(float(lo_hi[0]), float(lo_hi[1])),
        seed=int(kwargs.get("seed") or 0),
        labels=kwargs.get("data_labels"),
    )


def load_from_options(info: ModelInfo, kwargs: Mapping[str, Any]) -> Dataset:
    """Load ``kwargs["data"]`` for the model described by ``info`` using the other data options."""
    return load_dataset(kwargs.get("data"), info, spec_from_options(**kwargs))

