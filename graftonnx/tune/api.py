"""The entry point of ``graftonnx tune``: run (or resume) the journaled search, then summarise it."""

from __future__ import annotations

import os
from pathlib import Path

from .._progress import bar
from ..engine import DONE, STOPPED, Journal, check_out_folder, make_jobs, run_batch
from ..errors import GraftFailure
from .pipeline import ON_CANDIDATE, TuneConfig
from .report import TuneSummary, summarise

__all__ = ["tune", "TUNE_FILES"]

#: What a tuning run writes at the top of its folder (``force`` removes these and the candidates).
TUNE_FILES = ("journal.jsonl", "scores.json", "chosen.onnx", "chosen.plan.json", "tune.json", "tune.md", "tune.csv",
              "tune.png")


def _clear(out: Path) -> None:
    for name in TUNE_FILES:
        (out / name).unlink(missing_ok=True)
    for p in (out / "candidates").glob("*") if (out / "candidates").is_dir() else ():
        p.unlink()


def tune(config: TuneConfig, out: str | os.PathLike[str], force: bool = False, threads: int | None = None,
         dpi: int = 150) -> tuple[TuneSummary, str]:
    """Search ``config``'s candidates into ``out`` (resuming its journal unless ``force``); (summary, status).

    The status is ``done``, or ``stopped`` when the budget ran out (the summary then covers
    the candidates measured so far; a rerun continues).
    """
    from ..threads import current_threads

    folder = check_out_folder(out)
    if force:
        _clear(folder)
    n = len(config.tune.schedules) * len(config.tune.ratios)
    fp = config.fingerprint()
    seen = sum("@" in step for step in Journal(folder / "journal.jsonl").done("", fp))
    with bar(total=n, initial=seen, desc="tune", unit="cand", progress=config.progress) as b:
        token = ON_CANDIDATE.set(lambda name: (b.set_postfix_str(name), b.update()))
        try:
            (outcome,), _ = run_batch(make_jobs("tune", [("", config)], folder, threads or current_threads()), folder)
        finally:
            ON_CANDIDATE.reset(token)
    if outcome.status not in (DONE, STOPPED):
        raise GraftFailure(f"tune failed in step {outcome.error}")
    return summarise(folder, config, dpi), outcome.status
