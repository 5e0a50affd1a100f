"""Running a list of jobs into one output folder: check the folder, refuse mixed settings, execute.

Why separate from the step loop: the zoo, the demo and the paper benchmark each make a
list of jobs and read their results back *from the journal* (a resumed run, a run whose
jobs finished in other processes or Ray workers, and an uninterrupted run then give the
same results by construction).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import BadInput
from .core import Job, Outcome, sweep_temporaries
from .executors import ExecutorConfig, make_executor
from .journal import Journal

__all__ = ["check_out_folder", "run_batch", "make_jobs"]


def check_out_folder(out: str | os.PathLike[str]) -> Path:
    """Create ``out`` (its parent must exist) or reuse it to resume; fail early when it cannot hold results."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise BadInput(f"output {p} exists and is not a folder: choose another -o")
    if not p.parent.is_dir():
        raise BadInput(f"output folder's parent {p.parent} does not exist or is not a folder: create it first "
                       "or choose another -o")
    try:
        p.mkdir(exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create output folder {p}: {exc.strerror}; choose a writable -o") from None
    if not os.access(p, os.W_OK):
        raise BadInput(f"output folder {p} is not writable: choose another -o")
    return p


def make_jobs(pipeline: str, configs: Sequence[tuple[str, Any]], out: Path, threads: int = 1) -> list[Job]:
    """One :class:`Job` per ``(name, config)``, all journaling to ``out/journal.jsonl``."""
    root, journal = str(out.resolve()), str((out / "journal.jsonl").resolve())
    return [Job(pipeline, name, cfg, root, journal, threads) for name, cfg in configs]


def _check_journal(jobs: Sequence[Job], journal: Journal) -> None:
    """A journal holding the same job name under other settings would mix results: refuse before any work."""
    fps = {j.name: j.fingerprint for j in jobs}
    for r in journal.records():
        if r.model in fps and r.fingerprint != fps[r.model]:
            raise BadInput(f"{journal.path} holds results for {r.model!r} run with other settings: keep the "
                           "old settings to resume, or choose a new output folder for the changed settings")


def run_batch(jobs: Sequence[Job], out: Path, executor: str = "local", cfg: ExecutorConfig | None = None,
              on_outcome: Callable[[Outcome], None] | None = None) -> tuple[list[Outcome], Journal]:
    """Run (or resume) ``jobs`` through ``executor``; outcomes in job order and the shared journal."""
    ex = make_executor(executor, cfg or ExecutorConfig())
    sweep_temporaries(out)
    journal = Journal(out / "journal.jsonl")
    journal.repair()  # before any worker appends: drop torn/garbled lines, one warning each
    _check_journal(jobs, journal)
    outcomes = []
    for outcome in ex.run([replace(j, executor=executor) for j in jobs]):
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    order = {j.name: i for i, j in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: order[o.model]), journal
