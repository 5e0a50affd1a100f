"""The JSONL results journal: one line per finished instance, appended and fsynced.

Why append-only instead of atomic rewrite: a verification run can take hours, and each
finished instance must survive a crash or Ctrl-C the moment it finishes.  A line is
written in one ``write`` and fsynced; a torn last line (power loss mid-write) is skipped
on reading, so the worst case is redoing the one instance that was being recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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

    def load(self) -> dict[tuple[str, str], Result]:
        """Every complete, valid line; torn or foreign lines are skipped, never fatal."""
        done: dict[tuple[str, str], Result] = {}
        if not self.path.exists():
            return done
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise BadInput(f"cannot read results journal {self.path}: {exc.strerror}") from None
        for line in lines:
            try:
                r = Result.from_json(json.loads(line))
            except (ValueError, TypeError, KeyError):
                continue
            done[(r.instance, r.backend)] = r
        return done

    def append(self, result: Result) -> None:
        """Append one line and fsync it before returning (a finished instance is never lost)."""
        line = json.dumps(result.to_json(), separators=(",", ":")) + "\n"
        needs_newline = self._torn_tail()
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(("\n" if needs_newline else "") + line)
            fh.flush()
            os.fsync(fh.fileno())

    def _torn_tail(self) -> bool:
        """True when the file ends without a newline (an interrupted write): start a fresh line."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() == 0:
                    return False
                fh.seek(-1, os.SEEK_END)
                return fh.read(1) != b"\n"
        except FileNotFoundError:
            return False
