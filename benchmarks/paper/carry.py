"""Carry a long benchmark run across sittings: ``out/`` is scratch, the next sitting's machine is fresh.

Why: ``--table1`` needs about a day of 2 cores; a sitting lasts a few hours and its work
folder is lost with its machine.  So what cannot be rebuilt cheaply is committed under
``benchmarks/results/paper-<mode>/``:

- ``<job>.rows.json`` — a finished job's ``rows.json`` (every instance's verdict and time)
  with the job's identity: later sittings render it and never rerun the job;
- ``<job>.progress.json.gz`` — an unfinished job's verifier journals, each with the sha256
  of every model and property file its lines were verified on.

Models are cheap to rebuild (fixed seeds, one thread), verdicts are not.  The next sitting
rebuilds the models, and :func:`drop_stale` keeps exactly the journal lines whose files
still hash the same, so a rebuild that came out different (another CPU, another torch)
costs time, never a wrong verdict.  A stored file made with other settings (identity:
the job's fingerprint, its row set and the complete verifier) is ignored, with one line.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from graftonnx._io import atomic_write, atomic_write_text
from graftonnx.verify.runner import read_instances

from .config import Mode, NetJob, complete_backend

__all__ = ["identity", "drop_stale", "save", "restore", "stored_rows", "finished", "progress", "progress_text",
           "sitting_record", "SIDECAR"]

#: beside a journal ``J.jsonl``: ``J.files.json``, the hash of every file its lines were verified on
SIDECAR = ".files.json"


def identity(job: NetJob, mode: Mode) -> dict[str, object]:
    """What a stored result must match to be used: the job's settings fingerprint, its rows, the verifier."""
    from .pipeline import PaperJob

    return {"fingerprint": PaperJob(job, mode).fingerprint(), "job": json.loads(json.dumps(asdict(job))),
            "complete": complete_backend(mode.budget)}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hashes(bench: Path) -> dict[str, str]:
    files = {p for i in read_instances(bench) for p in (i.model, i.vnnlib)}
    return {f: _sha(bench / f) for f in sorted(files)}


def drop_stale(bench: Path, journal: Path) -> int:
    """Keep the journal lines of instances ``bench`` lists whose files hash as when verified; return drops.

    Then record the files' current hashes beside the journal, for the lines this run adds.
    A journal without that record (a local run from before it existed) is trusted as is.
    """
    keys = {i.key for i in read_instances(bench)}
    now, side = _hashes(bench), journal.with_name(journal.stem + SIDECAR)
    dropped = 0
    if journal.is_file():
        then = json.loads(side.read_text()) if side.is_file() else None
        lines = [ln for ln in journal.read_text().splitlines(keepends=True) if ln.strip()]

        def fresh(rec: dict[str, Any]) -> bool:
            files = (rec.get("model"), rec.get("vnnlib"))
            return then is None or all(f in then and then[f] == now.get(f) for f in files)

        keep = [ln for ln in lines if (rec := json.loads(ln)).get("instance") in keys and fresh(rec)]
        dropped = len(lines) - len(keep)
        if dropped:
            atomic_write_text(journal, "".join(keep))
    atomic_write_text(side, json.dumps(now, indent=0) + "\n")
    return dropped


def _journals(folder: Path) -> dict[str, dict[str, object]]:
    """Every verifier journal of a job folder with its hash record (journals without one are not carried)."""
    out: dict[str, dict[str, object]] = {}
    for side in sorted(folder.glob(f"*{SIDECAR}")):
        journal = side.with_name(side.name[: -len(SIDECAR)] + ".jsonl")
        if journal.is_file():
            out[journal.name] = {"lines": journal.read_text(), "files": json.loads(side.read_text())}
    return out


def finished(folder: Path, ident: dict[str, object]) -> dict[str, Any] | None:
    """The job folder's ``rows.json`` when it was made for exactly this job and verifier, else None."""
    path = folder / "rows.json"
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())
    backends = {r.get("complete_backend") for r in rows["rows"] if r.get("n_nsat")} - {None}
    return rows if rows["job"] == ident["job"] and backends <= {ident["complete"]} else None


def _stored(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def save(out: Path, store: Path, jobs: list[NetJob], mode: Mode, sitting: dict[str, object]) -> list[str]:
    """Commit-ready copies of every job's finished rows or verifier progress; returns what was saved."""
    store.mkdir(parents=True, exist_ok=True)
    said = []
    for job in jobs:
        ident, folder = identity(job, mode), out / job.key
        done_path, prog_path = store / f"{job.key}.rows.json", store / f"{job.key}.progress.json.gz"
        old = _stored(done_path) or _stored(prog_path) or {}
        sittings = old.get("carry", {}).get("sittings", []) if old.get("carry", {}).get("identity") == ident else []
        rows, journals = finished(folder, ident), _journals(folder) if folder.is_dir() else {}
        if rows is None and not journals:
            continue
        carry = {"identity": ident, "sittings": [*sittings, sitting]}
        if rows is not None:
            atomic_write_text(done_path, json.dumps(rows | {"carry": carry}, indent=1, default=str) + "\n")
            prog_path.unlink(missing_ok=True)
            said.append(f"{job.key}: finished rows → {done_path}")
        else:
            blob = json.dumps({"carry": carry, "journals": journals}, sort_keys=True).encode()
            with atomic_write(prog_path, "wb") as fh:
                fh.write(gzip.compress(blob, mtime=0))
            said.append(f"{job.key}: {progress_text(journals)} → {prog_path}")
    return said


def _usable(path: Path, ident: dict[str, object], warn: bool) -> dict[str, Any] | None:
    """The stored file at ``path`` when it was made for ``ident``; else None (one line when ``warn``)."""
    data = _stored(path)
    if data is not None and data["carry"]["identity"] != ident:
        if warn:
            print(f"[paper] {path.name} was made with other settings: ignored", file=sys.stderr)
        return None
    return data


def stored_rows(store: Path, jobs: list[NetJob], mode: Mode, warn: bool = False) -> dict[str, dict[str, Any]]:
    """The stored finished jobs made with these settings (key → rows, with their sittings)."""
    done = {}
    for job in jobs:
        data = _usable(store / f"{job.key}.rows.json", identity(job, mode), warn)
        if data is not None:
            done[job.key] = {k: v for k, v in data.items() if k != "carry"} | {"sittings": data["carry"]["sittings"]}
    return done


def restore(out: Path, store: Path, jobs: list[NetJob], mode: Mode, unpack: bool = True) -> dict[str, dict[str, Any]]:
    """Put stored journals into fresh job folders (``unpack``); return the stored finished jobs (key → rows)."""
    done = stored_rows(store, jobs, mode, warn=True)
    for job in jobs:
        data = None if job.key in done else _usable(store / f"{job.key}.progress.json.gz", identity(job, mode), True)
        if data is not None and unpack:
            _unpack(out / job.key, data["journals"])
    return done


def _unpack(folder: Path, journals: dict[str, dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, j in journals.items():
        path = folder / name
        if path.exists():  # this machine's own work folder is newer than the stored copy
            continue
        atomic_write_text(path, j["lines"])
        atomic_write_text(path.with_name(path.stem + SIDECAR), json.dumps(j["files"], indent=0) + "\n")


def progress_text(journals: dict[str, dict[str, Any]]) -> str:
    """``lirpa.jsonl 1600 results, nsat.jsonl 32 results``: how far an unfinished job got."""
    return ", ".join(f"{n} {str(j['lines']).count(chr(10))} results" for n, j in sorted(journals.items())) \
        or "nothing verified yet"


def progress(out: Path, store: Path, jobs: list[NetJob]) -> dict[str, str]:
    """How far each unfinished job got (this machine's work folder, else the stored copy)."""
    said = {}
    for job in jobs:
        journals = _journals(out / job.key) if (out / job.key).is_dir() else {}
        if not journals and (data := _stored(store / f"{job.key}.progress.json.gz")) is not None:
            journals = data["journals"]
        said[job.key] = progress_text(journals)
    return said


def sitting_record(started: float | None, jobs: list[NetJob]) -> dict[str, object]:
    """One sitting: when, how long (wall seconds of the whole run call; None: not known), which jobs it ran."""
    from .rows import machine

    m, now = machine(), time.time()
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started or now)),
            "seconds": None if started is None else round(now - started, 1), "jobs": [j.key for j in jobs],
            "machine": f"{m['cpu']}, {m['cores']} cores"}
