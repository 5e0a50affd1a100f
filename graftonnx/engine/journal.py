"""The engine's run journal ``out/journal.jsonl``: one fsynced line per finished (or failed) step.

Why a journal instead of checking which files exist: a file can exist from a run with
other settings, or half a model's outputs can exist when the process was killed; a line
is appended only *after* the step's outputs were renamed into place, so "the journal
says done" implies "the outputs are complete".  Lines carry the job's settings
fingerprint, so a changed manifest never silently reuses stale steps.  Several worker
processes (a process pool, Ray tasks on this machine) append to the same file under an
exclusive ``flock``; a torn last line (power loss) is skipped on reading.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput

__all__ = ["StepRecord", "Journal", "DONE", "FAILED"]

DONE = "done"
FAILED = "failed"


@dataclass(frozen=True)
class StepRecord:
    """One finished step of one job (``model``: the job's name): outputs (relative to the out folder), metrics."""

    model: str
    fingerprint: str
    step: str
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(float(self.seconds), 4)
        return d

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StepRecord:
        rec = cls(str(obj["model"]), str(obj["fingerprint"]), str(obj["step"]), str(obj["status"]),
                  dict(obj.get("outputs") or {}), dict(obj.get("metrics") or {}), str(obj.get("error", "")),
                  float(obj.get("seconds", 0.0)))
        if rec.status not in (DONE, FAILED):
            raise ValueError(f"unknown status {rec.status!r}")
        return rec


class Journal:
    """Append-only, fsynced, lock-protected JSONL of :class:`StepRecord` lines."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise BadInput(f"run journal {self.path} is a directory: remove it or choose another output folder")

    def records(self) -> list[StepRecord]:
        """Every complete, valid line in order; torn or foreign lines are skipped, never fatal."""
        if not self.path.exists():
            return []
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise BadInput(f"cannot read run journal {self.path}: {exc.strerror}") from None
        out = []
        for line in text.splitlines():
            try:
                out.append(StepRecord.from_json(json.loads(line)))
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
        return out

    def done(self, model: str, fingerprint: str) -> dict[str, StepRecord]:
        """The finished steps of ``model`` run with settings ``fingerprint`` (latest line per step wins)."""
        out: dict[str, StepRecord] = {}
        for r in self.records():
            if r.model == model and r.fingerprint == fingerprint:
                if r.status == DONE:
                    out[r.step] = r
                else:
                    out.pop(r.step, None)
        return out

    def append(self, record: StepRecord) -> None:
        """Append one line in one write, fsync it, under an exclusive lock (several writers may share the file)."""
        line = (json.dumps(record.to_json(), separators=(",", ":"), sort_keys=True) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise BadInput(f"cannot write run journal {self.path}: {exc.strerror}; check the output folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _torn_tail(fd):
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        except OSError as exc:
            raise BadInput(f"cannot write run journal {self.path}: {exc.strerror}; free space or fix the folder, "
                           "then rerun to resume") from None
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _torn_tail(fd: int) -> bool:
    """True when the file does not end in a newline (an interrupted write): start a fresh line."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
