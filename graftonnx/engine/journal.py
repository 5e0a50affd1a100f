"""The engine's run journal ``out/journal.jsonl``: one fsynced line per finished (or failed) step.

Why a journal instead of checking which files exist: a file can exist from a run with
other settings, or half a model's outputs can exist when the process was killed; a line
is appended only *after* the step's outputs were renamed into place, so "the journal
says done" implies "the outputs are complete".  Lines carry the job's settings
fingerprint, so a changed manifest never silently reuses stale steps.  Lines are written
by :func:`graftonnx._io.append_line` (one write, fsync, ``flock``: several workers share the
file); a torn last line (power loss) is skipped on reading, and dropped from the file
(atomic rewrite, one warning per line) when the next run starts.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._io import append_line, read_lines, repair_lines
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
        return read_lines(self.path, StepRecord.from_json, "run journal")

    def repair(self) -> list[StepRecord]:
        """:meth:`records`, and rewrite the file atomically without its unreadable lines (one warning each).

        Only at the start of a run, before any worker appends: see :func:`graftonnx._io.repair_lines`.
        """
        return repair_lines(self.path, StepRecord.from_json, "run journal")

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
        append_line(self.path, json.dumps(record.to_json(), separators=(",", ":"), sort_keys=True) + "\n",
                    "run journal")
