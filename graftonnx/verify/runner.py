"""Run every instance of a VNN-COMP benchmark folder through one backend, resumably.

Why this shape: verification runs are long and verifiers are fragile.  Everything the
user can get wrong (folder, instances.csv, missing files, unreadable properties) is
checked *before* the first instance runs, so a BadInput never costs finished work;
each finished instance is journaled (fsync) the moment it finishes; one instance's
crash, hang or garbage becomes that instance's ``error``/``timeout`` only; and every
``sat`` is re-checked in onnxruntime before it is recorded.
"""

from __future__ import annotations

import csv
import gzip
import multiprocessing
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._io import atomic_write
from .._progress import bar as progress_bar
from ..bench.spec import Property
from ..bench.vnnlib import read_vnnlib
from ..engine.executors import ExecutorConfig, ray_map, ray_session
from ..errors import BadInput, GraftError, GraftFailure
from .backends.base import Backend, make_backend
from .cexcheck import check_result
from .journal import Journal
from .result import VERDICTS, Result, Verdict

__all__ = ["Instance", "RunSummary", "late_as_timeout", "read_instances", "run_instance", "unpacked",
           "verify_benchmark"]


@dataclass(frozen=True)
class Instance:
    """One row of instances.csv, with paths relative to the benchmark folder.

    ``files``: the (model, property) files the verifier runs when they are not the listed
    ones, i.e. gunzipped copies of ``.onnx.gz`` / ``.vnnlib.gz`` (``export --gz-only``).
    """

    key: str
    model: str
    vnnlib: str
    timeout: float
    files: tuple[str, str] | None = None

    def paths(self, root: Path) -> tuple[Path, Path]:
        """The model and property files to run."""
        return (Path(self.files[0]), Path(self.files[1])) if self.files else (root / self.model, root / self.vnnlib)


@dataclass(frozen=True)
class RunSummary:
    """What a run did: every journaled result for its instances, and how many were reused."""

    results: tuple[Result, ...]
    reused: int
    journal: Path

    def counts(self) -> dict[str, int]:
        c = Counter(r.verdict for r in self.results)
        return {v: c.get(v, 0) for v in VERDICTS}


def _row_instance(row: list[str], line: int, where: Path) -> tuple[str, str, float]:
    if len(row) != 3:
        raise BadInput(f"{where} line {line} has {len(row)} columns, not 3 (onnx,vnnlib,timeout without a header): "
                       "fix the row")
    model, vnnlib, raw = (c.strip() for c in row)
    try:
        timeout = float(raw)
    except ValueError:
        raise BadInput(f"{where} line {line}: timeout {raw!r} is not a number (a header row? remove it)") from None
    if not timeout > 0:
        raise BadInput(f"{where} line {line}: timeout {raw} must be positive")
    return model, vnnlib, timeout


def read_instances(bench_dir: str | Path) -> tuple[Instance, ...]:
    """Parse ``bench_dir/instances.csv`` and check that every model and property file exists."""
    root = Path(bench_dir)
    if not root.is_dir():
        raise BadInput(f"benchmark folder {root} not found: give a folder holding instances.csv")
    csv_path = root / "instances.csv"
    if not csv_path.is_file():
        raise BadInput(f"{csv_path} not found: a benchmark folder needs instances.csv (onnx,vnnlib,timeout)")
    out: list[Instance] = []
    seen: Counter[str] = Counter()
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.reader(fh), start=1):
            if not row or not "".join(row).strip():
                continue
            model, vnnlib, timeout = _row_instance(row, line, csv_path)
            for what, rel in (("model", model), ("property", vnnlib)):
                if not (root / rel).is_file():
                    raise BadInput(f"{csv_path} line {line}: {what} file {root / rel} not found: fix the path "
                                   "(relative to the benchmark folder)")
            key = f"{model}::{vnnlib}"
            seen[key] += 1
            out.append(Instance(key if seen[key] == 1 else f"{key}#{seen[key]}", model, vnnlib, timeout))
    if not out:
        raise BadInput(f"{csv_path} lists no instances: add onnx,vnnlib,timeout rows")
    return tuple(out)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:150]


def _workdir(logs: Path, inst: Instance) -> Path:
    return logs / _safe(inst.key)


def _gunzip(src: Path, dst: Path) -> Path:
    """``src`` decompressed to ``dst`` (atomically; reused while newer than ``src``); BadInput when not gzip."""
    if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with gzip.open(src, "rb") as fh, atomic_write(dst, "wb") as out:
            shutil.copyfileobj(fh, out)
    except (OSError, EOFError) as exc:
        raise BadInput(f"cannot decompress {src} ({type(exc).__name__}: {exc}): is it a complete .gz file?") from None
    return dst


def unpacked(root: Path, instances: tuple[Instance, ...], cache: Path) -> tuple[Instance, ...]:
    """The instances, those listing ``.gz`` files set to run gunzipped copies kept under ``cache``.

    Why: VNN-COMP benchmarks may ship only ``.onnx.gz`` and ``.vnnlib.gz`` (the competition
    scripts gunzip them first); verifiers read plain files.  Keys and journaled paths stay
    the listed ones, so a journal means the same whichever form was run.
    """
    out = []
    for inst in instances:
        if not (inst.model.endswith(".gz") or inst.vnnlib.endswith(".gz")):
            out.append(inst)
            continue
        files = tuple(str(_gunzip(root / rel, cache / _safe(rel[:-3])) if rel.endswith(".gz") else root / rel)
                      for rel in (inst.model, inst.vnnlib))
        out.append(replace(inst, files=files))  # type: ignore[arg-type]
    return tuple(out)


def late_as_timeout(res: Result, timeout: float) -> Result:
    """An answer after ``timeout`` seconds is a ``timeout`` (VNN-COMP's rule); its verdict moves to ``late_verdict``.

    Why here and not in each backend: the in-process lirpa backend cannot be interrupted
    mid-bound, and a subprocess verifier may answer inside its kill grace; one rule in the
    runner makes every backend's time figures mean the same.  A late ``error`` stays an error
    (the user must see it); a late solved answer's counterexample is dropped (it was not
    checked and is not a result).
    """
    if res.seconds <= timeout or res.verdict in (Verdict.TIMEOUT, Verdict.ERROR):
        return res
    why = f"answered {res.verdict} after {res.seconds:.1f} s, over the {timeout:g} s timeout"
    return res.replace(verdict=Verdict.TIMEOUT, late_verdict=res.verdict, counterexample=None,
                       message=f"{why}; {res.message}" if res.message else why)


def run_instance(backend: Backend, root: Path, inst: Instance, timeout: float, logs: Path) -> Result:
    """Run one instance; any exception becomes an ``error`` Result for this instance only."""
    t0 = time.monotonic()
    try:
        res = late_as_timeout(backend.verify(*inst.paths(root), timeout, _workdir(logs, inst)), timeout)
    except Exception as exc:  # noqa: BLE001 - isolate the instance; the message keeps the reason
        msg = exc.message if isinstance(exc, GraftError) else f"{type(exc).__name__}: {exc}"
        res = Result(inst.key, inst.model, inst.vnnlib, backend.name, Verdict.ERROR, time.monotonic() - t0,
                     message=" ".join(msg.split())[:500])
    return res.replace(instance=inst.key, model=inst.model, vnnlib=inst.vnnlib, backend=backend.name)


def _pool_run(name: str, options: Any, root: str, inst: Instance, timeout: float, logs: str) -> Result:
    """Worker-process entry point (the backend is rebuilt in the worker: no pickled state)."""
    return run_instance(make_backend(name, options), Path(root), inst, timeout, Path(logs))


def _ray_execute(name: str, backend: Backend, options: Any, root: Path, todo: list[Instance], timeout: float | None,
                 logs: Path, ray_cfg: ExecutorConfig) -> Iterator[tuple[Instance, Result | None]]:
    """One Ray task per instance (1 CPU; a GPU backend also asks for 1 GPU, or runs here when the cluster has none)."""
    with ray_session(ray_cfg) as ray:
        resources: dict[str, float] = {"num_cpus": 1}
        if not backend.parallel_ok:
            if ray.cluster_resources().get("GPU", 0) < 1:
                yield from _execute(name, backend, options, root, todo, timeout, logs, 1)
                return
            resources["num_gpus"] = 1
        args = [(name, options, str(root), inst, timeout or inst.timeout, str(logs)) for inst in todo]
        for i, res, exc in ray_map(_pool_run, args, resources):
            yield todo[i], (None if exc is not None else res)


def _execute(name: str, backend: Backend, options: Any, root: Path, todo: list[Instance],
             timeout: float | None, logs: Path, workers: int) -> Iterator[tuple[Instance, Result | None]]:
    """Yield (instance, result) as they finish; None when a worker process died under it."""
    if workers <= 1 or not backend.parallel_ok or len(todo) <= 1:
        for inst in todo:
            yield inst, run_instance(backend, root, inst, timeout or inst.timeout, logs)
        return
    ctx = multiprocessing.get_context("spawn")  # torch and fork do not mix
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        futs: dict[Future[Result], Instance] = {
            pool.submit(_pool_run, name, options, str(root), inst, timeout or inst.timeout, str(logs)): inst
            for inst in todo}
        for fut in as_completed(futs):
            try:
                yield futs[fut], fut.result()
            except BrokenProcessPool:
                yield futs[fut], None
    finally:
        # interrupted (Ctrl-C, SIGTERM, the consumer stopped): the queued instances must not run on unjournaled;
        # a plain `with` would wait for every one of them
        pool.shutdown(wait=True, cancel_futures=True)


def verify_benchmark(bench_dir: str | Path, backend: str, options: Any = None,
                     results: str | Path = "results.jsonl", timeout: float | None = None, workers: int = 1,
                     progress: bool = True, ray: ExecutorConfig | None = None) -> RunSummary:
    """Verify every instance of ``bench_dir`` not yet in the ``results`` journal; return all their results.

    ``options`` are the backend's own (``BACKENDS.get(backend).Options``; None: its defaults).
    ``timeout`` overrides instances.csv's per-instance timeouts.  Backend, folder, journal
    and every instance's files are validated before anything runs.  With ``ray`` the
    instances run as Ray tasks (its cluster, or the one this process is a task of) instead
    of ``workers`` local processes; results are journaled here, in this process, as they come.
    """
    if timeout is not None and not timeout > 0:
        raise BadInput(f"--timeout {timeout} must be positive")
    if workers < 1:
        raise BadInput(f"--workers {workers} must be at least 1")
    root = Path(bench_dir)
    instances = read_instances(root)
    props = _read_properties(root, instances)
    be = make_backend(backend, options)
    options = options if options is not None else be.Options()  # type: ignore[attr-defined]
    journal = Journal(results)
    done = journal.load(repair=True)  # nothing runs yet: drop torn/garbled lines, one warning each
    todo = [i for i in instances if (i.key, be.name) not in done]
    logs = journal.path.with_suffix(".logs")
    todo = list(unpacked(root, tuple(todo), logs / "unpacked"))
    crashed = 0
    with progress_bar(total=len(instances), initial=len(instances) - len(todo), progress=progress, unit="inst",
              desc=f"verify ({be.name})") as bar:
        runs = (_execute(backend, be, options, root, todo, timeout, logs, workers) if ray is None else
                _ray_execute(backend, be, options, root, todo, timeout, logs, ray))
        for inst, res in runs:
            if res is None:
                crashed += 1
                continue
            res = check_result(res, inst.paths(root)[0], props[inst.vnnlib])
            journal.append(res)
            done[(inst.key, be.name)] = res
            bar.set_postfix_str(f"{inst.key}: {res.verdict}")
            bar.update()
    if crashed:
        raise GraftFailure(f"a {be.name} worker process died; {crashed} instance(s) were not recorded: "
                           f"rerun the same command to resume from {journal.path}")
    return RunSummary(tuple(done[(i.key, be.name)] for i in instances), len(instances) - len(todo), journal.path)


def _read_properties(root: Path, instances: tuple[Instance, ...]) -> dict[str, Property]:
    """Every distinct property, parsed up front so a malformed file is BadInput before any work."""
    return {v: read_vnnlib(root / v) for v in dict.fromkeys(i.vnnlib for i in instances)}
