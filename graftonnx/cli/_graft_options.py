"""Options shared by ``score``, ``plan`` and ``graft``, derived from the stages' settings declarations."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._io import check_output_path
from ..data import SyntheticDataWarning
from ..data.dataset import Dataset
from ..errors import BadInput
from ..model.handle import ModelHandle, open_model
from ..planning.build import check_count
from ..planning.select import Selection
from ..planning.settings import GraftSettings, InitSettings
from ..scoring.settings import ScoreSettings
from ..settings import dest_of, flag_of, from_options, knobs, options
from ._base import progress_option
from ._data_options import load_from_options

__all__ = ["score_options", "select_options", "settings_from", "output_options", "prepare", "check_plan_options"]

F = TypeVar("F", bound=Callable[..., Any])

#: --eps, --bound, --significance, --batch-size
score_options = options(ScoreSettings)
#: --criterion, --ratio/--count, --scope, --granularity, --layers, --stages, --schedule, --init (--seed: data options)
select_options = options(Selection, InitSettings, exclude=("seed",))
#: keyword → flag of the options a reviewed plan fixes (given with --plan they would be ignored)
_PLAN_FIXES = {dest_of(f, k): flag_of(f, k) for cls in (Selection, InitSettings) for f, k in knobs(cls)
               if f.name != "seed"}


def settings_from(kw: dict[str, Any]) -> GraftSettings:
    """GraftSettings from the parsed options (those not given keep their defaults)."""
    return from_options(GraftSettings, kw)


def output_options(fn: F) -> F:
    """--force, --json, --progress/--no-progress (the -o option differs per command)."""
    for opt in reversed([
        click.option("--force", is_flag=True, help="Overwrite existing output files."),
        click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary."),
    ]):
        fn = opt(fn)
    return progress_option(fn)


def prepare(model: str, kw: dict[str, Any], outputs: tuple[str | None, ...] = (), force: bool = False
            ) -> tuple[ModelHandle, Dataset, GraftSettings]:
    """The common start of score/plan/graft: check outputs and settings first (fail fast), then load.

    Returns ``(model handle, dataset, settings)``.
    """
    for out in outputs:
        if out:
            check_output_path(out, force)
    ctx = click.get_current_context(silent=True)
    plan_path = ctx.params.get("plan_path") if ctx is not None else None
    check_plan_options(plan_path, kw)
    s = settings_from(kw)
    h = open_model(model)
    if not plan_path:
        check_count(h.info, s)  # before scoring: the count must fit the chosen layers
    scores = ctx.params.get("scores") if ctx is not None else None
    with warnings.catch_warnings():
        if plan_path or (scores and s.init != "fit"):
            # the plan / score table already carries the choice: random inputs only feed the summary
            warnings.simplefilter("ignore", SyntheticDataWarning)
        return h, load_from_options(h.info, kw), s


def check_plan_options(plan_path: str | None, kw: dict[str, Any]) -> None:
    """Refuse selection options given together with ``--plan``.

    Why: the plan already names every unit and line, so ``--ratio 0.3 --plan p.json``
    silently grafted the plan's units; the user's intent is unclear (which one did they
    mean?), so this is an error, not a warning.  Only options given on the command line
    (or in the environment) count: their defaults are always present in ``kw``.
    """
    if not plan_path:
        return
    ctx = click.get_current_context(silent=True)
    given = [_PLAN_FIXES[d] for d in _PLAN_FIXES if kw.get(d) is not None and ctx is not None
             and ctx.get_parameter_source(d) in (click.core.ParameterSource.COMMANDLINE,
                                                 click.core.ParameterSource.ENVIRONMENT)]
    if ctx is not None and ctx.params.get("scores"):
        given.append("--scores")  # scores only feed the selection the plan replaces
    if given:
        flag = given[0]
        raise BadInput(f"{flag} has no effect with --plan {plan_path} (the plan fixes which units are grafted "
                       f"and their lines): drop {flag}, or drop --plan to choose units now")
