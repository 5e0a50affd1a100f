"""Read verification journals strictly, for reporting.

Why not :meth:`graftonnx.verify.journal.Journal.load`: the runner reads its own journal
leniently (a foreign line must never stop a resumed run), but a report that silently
drops a garbled line would print a wrong VA.  So here every line must be a valid
:class:`Result` for an instance of the given benchmark, or the user hears which file and
line are wrong.  The one exception is a *torn* line (a JSON object cut off mid-write, which
is what an interrupted run leaves, and which a resumed run leaves followed by the redone
line): it is skipped with a warning.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput
from ..verify.result import Result
from ..verify.runner import Instance

__all__ = ["JournalRecord", "read_journal", "read_journals"]


@dataclass(frozen=True)
class JournalRecord:
    """One result with where it came from (file and 1-based line), for messages."""

    result: Result
    path: str
    line: int


def _is_torn(text: str) -> bool:
    """A JSON object cut off before its closing brace (an interrupted ``write``)."""
    s = text.strip()
    return s.startswith("{") and not s.endswith("}")


def _parse_line(text: str, path: Path, line: int) -> Result:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"results journal {path} line {line} is not JSON ({exc.msg}): fix or delete that line") from None
    if not isinstance(obj, dict):
        raise BadInput(f"results journal {path} line {line} is not a JSON object: is this a graftonnx verify "
                       "journal?")
    missing = [k for k in ("instance", "model", "vnnlib", "backend", "verdict", "seconds") if k not in obj]
    if missing:
        raise BadInput(f"results journal {path} line {line} lacks {', '.join(missing)}: is this a graftonnx verify "
                       "journal? fix or delete that line")
    try:
        res = Result.from_json(obj)
        seconds = float(res.seconds)
    except (TypeError, ValueError, KeyError) as exc:
        raise BadInput(f"results journal {path} line {line} is malformed ({type(exc).__name__}: {exc}): "
                       "fix or delete that line") from None
    if not seconds >= 0:
        raise BadInput(f"results journal {path} line {line}: seconds {obj['seconds']!r} is not a time >= 0")
    return res.replace(seconds=seconds)


def read_journal(path: str | os.PathLike[str]) -> list[JournalRecord]:
    """Every result line of one journal, in file order; torn lines are skipped with a warning."""
    p = Path(path)
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "not found"
        raise BadInput(f"results journal {p} {what}: give the .jsonl file `graftonnx verify --results` wrote")
    try:
        lines = p.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read results journal {p} ({type(exc).__name__}): is it a JSONL text file?") from None
    out: list[JournalRecord] = []
    for i, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if _is_torn(text):
            where = "last line" if i == len(lines) else f"line {i}"
            warnings.warn(f"results journal {p} {where} is truncated (an interrupted run); skipped it",
                          stacklevel=2)
            continue
        out.append(JournalRecord(_parse_line(text, p, i), str(p), i))
    if not out:
        raise BadInput(f"results journal {p} holds no results: run `graftonnx verify` first or give another file")
    return out


def read_journals(paths: Sequence[str | os.PathLike[str]], instances: Sequence[Instance],
                  bench: str | os.PathLike[str]) -> dict[tuple[str, str], JournalRecord]:
    """Results keyed by ``(instance key, backend)`` over all journals; later lines and files win.

    Every result must name an instance of ``bench`` with the same model and property,
    otherwise the journal belongs to another benchmark and the report would be wrong.
    """
    if not paths:
        raise BadInput("no results journal given: name at least one .jsonl file from `graftonnx verify`")
    known = {i.key: i for i in instances}
    done: dict[tuple[str, str], JournalRecord] = {}
    for path in paths:
        for rec in read_journal(path):
            r = rec.result
            inst = known.get(r.instance)
            if inst is None or (inst.model, inst.vnnlib) != (r.model, r.vnnlib):
                raise BadInput(f"results journal {rec.path} line {rec.line}: instance {r.instance!r} is not in "
                               f"{Path(bench) / 'instances.csv'}: give the --bench folder this journal was "
                               "verified on")
            done[(r.instance, r.backend)] = rec
    return done
