"""Options shared by ``score``, ``plan`` and ``graft``, derived from the stages' settings declarations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._io import check_output_path
from ..data.dataset import Dataset
from ..model.handle import ModelHandle, open_model
from ..planning.select import Selection
from ..planning.settings import GraftSettings, InitSettings
from ..scoring.settings import ScoreSettings
from ..settings import from_options, options
from ._data_options import load_from_options

__all__ = ["score_options", "select_options", "settings_from", "output_options", "prepare"]

F = TypeVar("F", bound=Callable[..., Any])

#: --eps, --bound, --significance, --batch-size
score_options = options(ScoreSettings)
#: --criterion, --ratio/--count, --scope, --granularity, --layers, --stages, --schedule, --init (--seed: data options)
select_options = options(Selection, InitSettings, exclude=("seed",))


def settings_from(kw: dict[str, Any]) -> GraftSettings:
    """GraftSettings from the parsed options (those not given keep their defaults)."""
    return from_options(GraftSettings, kw)


def output_options(fn: F) -> F:
    """--force, --json, --progress/--no-progress (the -o option differs per command)."""
    for opt in reversed([
        click.option("--force", is_flag=True, help="Overwrite existing output files."),
        click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary."),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars."),
    ]):
        fn = opt(fn)
    return fn


def prepare(model: str, kw: dict[str, Any], outputs: tuple[str | None, ...] = (), force: bool = False
            ) -> tuple[ModelHandle, Dataset, GraftSettings]:
    """The common start of score/plan/graft: check outputs and settings first (fail fast), then load.

    Returns ``(model handle, dataset, settings)``.
    """
    for out in outputs:
        if out:
            check_output_path(out, force)
    s = settings_from(kw)
    h = open_model(model)
    return h, load_from_options(h.info, kw), s
