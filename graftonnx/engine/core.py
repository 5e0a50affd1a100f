"""The one pipeline engine: a job is a named configuration run as named steps, journaled and resumable.

Why one engine: the zoo, ``graftonnx demo`` and the Table-1 benchmark all run "this
configuration through these stages, skip what is done, survive a kill".  A
:class:`Job` names a pipeline (a key of :data:`PIPELINES`) and a frozen configuration;
the pipeline turns the configuration into :class:`Step` s, each with the earlier steps it
reads (``needs``).  :func:`run_job` runs the steps in order: a step writes its outputs
atomically under ``out/<job>/`` and returns ``(outputs, metrics)``; only then is its line
appended to the journal, so a restarted run skips every step the journal lists for the
same settings fingerprint and costs at most the step that was running.  A job is
picklable (names and frozen dataclasses only), so the local, process and Ray executors
(:mod:`graftonnx.engine.executors`) run the same function anywhere.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInput, GraftError
from ..registry import Registry
from .journal import DONE, FAILED, Journal, StepRecord

__all__ = ["Step", "Job", "Ctx", "Outcome", "PIPELINES", "run_job", "fingerprint", "sweep_temporaries",
           "StepFn", "StopJob", "STOPPED"]

StepFn = Callable[["Ctx"], tuple[dict[str, str], dict[str, Any]]]


@dataclass(frozen=True)
class Step:
    """One named step: ``run(ctx)`` returns (outputs relative to the out folder, metrics); ``needs`` it reads."""

    name: str
    run: StepFn
    needs: tuple[str, ...] = ()


#: Outcome status of a job a step stopped (:class:`StopJob`): nothing failed, a rerun continues.
STOPPED = "stopped"


class StopJob(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a step that must not run now (a time budget is spent): the job ends ``stopped``,
    the step is not journaled, and a rerun runs it."""


#: pipeline name → ``steps(config) -> list[Step]``.
PIPELINES: Registry[Callable[[Any], list[Step]]] = Registry("pipeline")


def fingerprint(config: Any) -> str:
    """A short hash of a configuration: the journal's settings key.

    A configuration with its own ``fingerprint()`` method decides what counts (the zoo's
    entries hash their settings, not their file's bytes); any other dataclass or plain
    JSON value is hashed whole.
    """
    if callable(getattr(config, "fingerprint", None)):
        return str(config.fingerprint())
    plain = asdict(config) if is_dataclass(config) else config
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    """Everything a worker needs: picklable, no open handles.  ``name`` is its folder under ``out``."""

    pipeline: str
    name: str
    config: Any
    out: str
    journal: str
    threads: int = 1
    key: str = ""  # settings fingerprint; default: of ``config``
    executor: str = "local"  # where the batch runs: a step may fan its own work out the same way (verify)

    @property
    def fingerprint(self) -> str:
        return self.key or fingerprint(self.config)


@dataclass(frozen=True)
class Outcome:
    """How one job ended; ``ran`` lists the steps executed now (not reused from the journal)."""

    model: str
    status: str
    error: str
    ran: tuple[str, ...]


class Ctx:
    """What a step sees: the job's config, its folder, earlier steps' records and a per-run cache."""

    def __init__(self, job: Job, done: dict[str, StepRecord]) -> None:
        self.job, self.config, self.done = job, job.config, done
        self.root = Path(job.out)
        self.dir = self.root / job.name
        self._cache: dict[str, Any] = {}

    @property
    def entry(self) -> Any:
        return self.config

    def rel(self, p: Path) -> str:
        return str(p.relative_to(self.root))

    def output(self, step: str, key: str) -> Path:
        return self.root / self.done[step].outputs[key]

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def remember(self, key: str, value: Any) -> None:
        self._cache[key] = value


#: Errors of the output folder itself (not of one job): they end the whole batch with a BadInput.
_FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _message(exc: BaseException) -> str:
    """One line: a GraftError's own message, else the type, text and where it was raised (a bug to report)."""
    if isinstance(exc, GraftError):
        return exc.message
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return " ".join(f"{type(exc).__name__}: {exc}{where}".split())[:500]


def sweep_temporaries(folder: Path) -> None:
    """Remove temp files/folders a killed run left (``.name.XXXX.tmp``, ``.bench.old-PID``): never outputs."""
    if not folder.is_dir():
        return
    for p in [*folder.glob(".*.tmp"), *folder.glob(".*.old-*")]:
        with contextlib.suppress(OSError):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def run_job(job: Job) -> Outcome:
    """Run (or resume) every step of ``job``; a failing step is journaled as failed and ends this job only."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, job.threads))  # pinned: the same sums in the same order in every executor
    try:
        return _run_steps(job)
    finally:
        torch.set_num_threads(previous)


def _run_steps(job: Job) -> Outcome:
    journal = Journal(job.journal)
    fp = job.fingerprint
    ctx = Ctx(job, journal.done(job.name, fp))
    sweep_temporaries(ctx.dir)  # one job is never run by two workers at once, so these are stale
    ran: list[str] = []
    for step in PIPELINES.get(job.pipeline)(job.config):
        if step.name in ctx.done:
            continue
        missing = [n for n in step.needs if n not in ctx.done]
        if missing:
            raise GraftError(f"pipeline {job.pipeline!r}: step {step.name!r} needs {missing[0]!r}, which has "
                             "not run: declare the steps in order")
        t0 = time.monotonic()
        try:
            ctx.dir.mkdir(parents=True, exist_ok=True)
            outputs, metrics = step.run(ctx)
        except StopJob as stop:
            return Outcome(job.name, STOPPED, f"{step.name}: {stop}", tuple(ran))
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the batch
            if isinstance(exc, OSError) and exc.errno in _FATAL_ERRNOS:  # the next job would fail alike
                raise BadInput(f"cannot write under {ctx.dir} ({step.name}): {exc.strerror}; free space or fix the "
                               "folder, then rerun the same command to resume") from None
            journal.append(StepRecord(job.name, fp, step.name, FAILED, error=_message(exc),
                                      seconds=time.monotonic() - t0))
            return Outcome(job.name, FAILED, f"{step.name}: {_message(exc)}", tuple(ran))
        rec = StepRecord(job.name, fp, step.name, DONE, outputs, metrics, seconds=time.monotonic() - t0)
        journal.append(rec)
        ctx.done[step.name] = rec
        ran.append(step.name)
    return Outcome(job.name, DONE, "", tuple(ran))
