"""The JSONL results journal: one line per finished instance, appended and fsynced.

Why append-only instead of atomic rewrite: a verification run can take hours, and each
finished instance must survive a crash or Ctrl-C the moment it finishes.  A line is
written in one ``write`` and fsynced; a torn last line (power loss mid-write) is skipped
on reading, so the worst case is redoing the one instance that was being recorded; the
next run drops it from the file (atomic rewrite, one warning per dropped line).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._io import append_line, read_lines, repair_lines
from ..errors import BadInput
from .result import Result

__all__ = ["Journal"]


class Journal:
    """Results of one run, keyed by ``(instance, backend)``; later lines win."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise BadInput(f"results journal {self.path} is a directory: give a .jsonl file path")
        if not self.path.parent.is_dir():
            raise BadInput(f"folder {self.path.parent} for the results journal does not exist: create it first")

    def load(self, repair: bool = False) -> dict[tuple[str, str], Result]:
        """Every complete, valid line; torn or foreign lines are skipped, never fatal.

        ``repair``: also rewrite the file atomically without those lines, warning once per
        line (the runner does this when it resumes, before anything is appended).
        """
        read = repair_lines if repair else read_lines
        return {(r.instance, r.backend): r for r in read(self.path, Result.from_json, "results journal")}

    def append(self, result: Result) -> None:
        """Append one line and fsync it before returning (a finished instance is never lost)."""
        append_line(self.path, json.dumps(result.to_json(), separators=(",", ":")) + "\n", "results journal")
