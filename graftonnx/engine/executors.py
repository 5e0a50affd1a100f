"""Where per-model work runs: in this process, in a process pool, or as Ray tasks.

Why an executor registry: :func:`graftonnx.engine.run_job` is a pure function of a
picklable job that journals its own steps, so *where* it runs does not change *what* it
computes.  The local executor stays the default (no extra dependency); Ray spreads jobs
over a cluster, or over a local Ray started on demand.
Ray task results are only outcomes: the numbers live in the journal every worker
appends to (the out folder must be on a shared filesystem for a multi-machine cluster).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import BadInput, GraftError
from ..registry import Registry
from .core import Job, Outcome, run_job

__all__ = ["ExecutorConfig", "Executor", "EXECUTORS", "LocalExecutor", "RayExecutor", "make_executor", "ray_map",
           "ray_session"]


@dataclass(frozen=True)
class ExecutorConfig:
    """``workers``: models at once (local); ``ray_address``: an existing cluster, else a local Ray of ``num_cpus``."""

    workers: int = 1
    ray_address: str | None = None
    num_cpus: int = 2


class Executor(Protocol):
    name: str

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]: ...


EXECUTORS: Registry[Callable[[ExecutorConfig], Executor]] = Registry("executor")


def make_executor(name: str, cfg: ExecutorConfig) -> Executor:
    """Build executor ``name`` (an unknown name is BadInput)."""
    if cfg.workers < 1 or cfg.num_cpus < 1:
        raise BadInput(f"--workers {cfg.workers} / --num-cpus {cfg.num_cpus} must be at least 1")
    return EXECUTORS.get(name)(cfg)


def _crashed(job: Job, why: str) -> Outcome:
    return Outcome(job.name, "failed", f"worker died ({why}): rerun to resume from the journal", ())


@EXECUTORS.register("local")
@dataclass(frozen=True)
class LocalExecutor:
    """Sequential in this process (``workers`` 1), else a spawn process pool of ``workers``."""

    cfg: ExecutorConfig
    name: str = "local"

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        if self.cfg.workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                yield run_job(job)
            return
        ctx = multiprocessing.get_context("spawn")  # torch and fork do not mix
        with ProcessPoolExecutor(max_workers=self.cfg.workers, mp_context=ctx) as pool:
            futs = {pool.submit(run_job, job): job for job in jobs}
            for fut in as_completed(futs):
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    yield _crashed(futs[fut], "process pool broken")


@EXECUTORS.register("ray")
@dataclass(frozen=True)
class RayExecutor:
    """One Ray task (1 CPU) per model; a local Ray with ``num_cpus`` is started (and stopped) when no address."""

    cfg: ExecutorConfig
    name: str = "ray"

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        with ray_session(self.cfg) as ray:
            for i, outcome, exc in ray_map(run_job, [(job,) for job in jobs], {"num_cpus": 1}):
                if exc is None:
                    yield outcome
                elif isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, GraftError):
                    raise exc.cause from None  # e.g. disk full: the same error as the local executor
                else:
                    yield _crashed(jobs[i], type(exc).__name__)


@contextlib.contextmanager
def ray_session(cfg: ExecutorConfig) -> Iterator[Any]:
    """The ``ray`` module, connected: joins ``cfg.ray_address`` or starts a local Ray of ``cfg.num_cpus``
    (stopped at the end); inside a Ray task (already connected) it uses that cluster as it is."""
    try:
        import ray
    except ImportError:
        raise BadInput("--executor ray needs Ray: pip install ray, or use --executor local") from None
    started = not ray.is_initialized()
    if started:
        _init(ray, cfg)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def ray_map(fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], resources: dict[str, float]
            ) -> Iterator[tuple[int, Any, BaseException | None]]:
    """``fn(*a)`` for every ``a`` as Ray tasks (``resources`` each, no retries), yielded as they finish:
    ``(index, result, None)``, or ``(index, None, the Ray error)`` for a task that failed or died."""
    import ray

    task = ray.remote(max_retries=0, **resources)(fn)
    pending = {task.remote(*a): i for i, a in enumerate(args)}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready[0])
        try:
            yield i, ray.get(ready[0]), None
        except ray.exceptions.RayError as exc:
            yield i, None, exc


def _init(ray: Any, cfg: ExecutorConfig) -> None:
    kw: dict[str, object] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if cfg.ray_address:
            ray.init(address=cfg.ray_address, **kw)
        else:
            ray.init(num_cpus=cfg.num_cpus, **kw)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = cfg.ray_address or "a local Ray"
        msg = " ".join(str(exc).split())[:200]
        raise BadInput(f"cannot start or reach {where} ({msg}): check --ray-address, or use --executor local") \
            from None
