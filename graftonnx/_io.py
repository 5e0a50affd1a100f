"""Atomic file output and append-only journals: never leave a half-written file behind.

Everything graftonnx writes goes through :func:`atomic_write`: the data is written to a
temporary file in the destination folder and renamed over the target only once it is
complete, so an interrupted run or a failed check leaves either the old file or nothing.
Journals (the engine's steps, the verifier's instances) are JSON lines instead: each line
is written in one ``write``, fsynced and appended under an exclusive ``flock`` (several
worker processes may share the file), and a torn last line (power loss) is skipped on
reading, so a crash costs at most the one record being written.  A resumed run first
rewrites its journal atomically without such lines (:func:`repair_lines`, one warning per
line), so the file that outlives the run is always clean JSON lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import BadInput, GraftFailure

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "check_output_path", "install_folder",
           "append_line", "read_lines", "repair_lines"]


def check_output_path(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Validate an output path before any work is done (so errors come early)."""
    p = Path(path)
    if not p.parent.exists() and str(p.parent) not in ("", "."):
        raise BadInput(f"output directory {p.parent} does not exist: create it first or choose another -o")
    if p.exists() and not force:
        raise BadInput(f"output {p} already exists: pass --force to overwrite it")
    if p.exists() and p.is_dir():
        raise BadInput(f"output {p} is a directory: give a file path")
    return p


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[Any]:
    """Open a temporary sibling of ``path``; rename it over ``path`` only on success."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise BadInput(f"cannot write {target}: {exc.strerror}; check the folder exists and is writable") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual permissions
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, BadInput):
            # disk full, quota, I/O error: the user's environment, not a bug; nothing was left behind
            reason = exc.strerror or str(exc)
            raise BadInput(f"cannot write {target}: {reason}; free space or choose another output "
                           "(no partial file was left)") from None
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def install_folder(tmp: Path, out: Path, what: str = "folder") -> None:
    """Rename the finished folder ``tmp`` to ``out``, atomically for readers.

    An existing ``out`` (the user passed ``--force``) is moved aside first and removed
    only once the new folder is in place, so a failure leaves the old one intact.
    """
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError as exc:
        if old is not None:
            os.replace(old, out)
        raise BadInput(f"cannot create {what} {out} ({exc.strerror}): check the folder is writable") from None
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def append_line(path: Path, line: str, what: str) -> None:
    """Append ``line`` (one JSON record and its newline) in one write, fsynced, under an exclusive lock."""
    data = line.encode()
    fd = _open_locked(path, what)
    try:
        if _torn_tail(fd):
            data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    except OSError as exc:
        raise BadInput(f"cannot write {what} {path}: {exc.strerror}; free space or fix the folder, then rerun to "
                       "resume") from None
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _open_locked(path: Path, what: str, flags: int = os.O_RDWR | os.O_CREAT | os.O_APPEND) -> int:
    """An fd of ``path`` holding its exclusive ``flock``, reopened while :func:`repair_lines` renamed a new file in.

    Why the inode check: a writer that opened the old file and waited for the lock while
    the journal was rewritten would otherwise append to the replaced (unlinked) file.
    """
    for _ in range(100):
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            verb = "read" if flags == os.O_RDONLY else "write"
            raise BadInput(f"cannot {verb} {what} {path}: {exc.strerror}; check the file and its folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st, now = os.fstat(fd), os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        except OSError as exc:
            os.close(fd)
            raise BadInput(f"cannot lock {what} {path}: {exc.strerror}; check the folder") from None
        if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
            return fd
        os.close(fd)  # closing releases the lock on the replaced file
    raise GraftFailure(f"{what} {path} kept being replaced while opening it: is another run rewriting it?")


def _torn_tail(fd: int) -> bool:
    """True when the file does not end in a newline (an interrupted write): start a fresh line."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def read_lines(path: Path, parse: Callable[[Any], Any], what: str) -> list[Any]:
    """``parse(obj)`` of every complete JSON line in order; torn or foreign lines are skipped, never fatal."""
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise BadInput(f"cannot read {what} {path}: {exc.strerror}") from None
    out = []
    for line in text.splitlines():
        try:
            out.append(parse(json.loads(line)))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return out


def repair_lines(path: Path, parse: Callable[[Any], Any], what: str) -> list[Any]:
    """:func:`read_lines`, and rewrite ``path`` atomically without its unreadable lines, one warning per line dropped.

    Why: a torn tail (an interrupted write) or a garbled middle line would otherwise stay in
    the journal for ever, and pandas or jq readers of the journal fail on it.  Call it once at
    the start of a run, before any worker appends (the rewrite holds the journal's lock, and
    :func:`append_line` reopens a file that was replaced under it).  Blank lines go too.
    """
    if not path.exists():
        return []
    fd = _open_locked(path, what, os.O_RDONLY)
    try:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read {what} {path}: {exc.strerror}") from None
        keep: list[bytes] = []
        out: list[Any] = []
        bad: list[tuple[int, str]] = []
        for i, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                out.append(parse(json.loads(line.decode("utf-8"))))
                keep.append(line)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                torn = line.strip().startswith(b"{") and not line.strip().endswith(b"}")
                bad.append((i, "truncated by an interrupted write" if torn else f"unreadable ({type(exc).__name__})"))
        if bad:
            with atomic_write(path, "wb") as fh:
                fh.write(b"".join(x + b"\n" for x in keep))
    finally:
        os.close(fd)
    for i, why in bad:
        warnings.warn(f"{what} {path} line {i} is {why}: dropped it from the journal (rewritten without it)",
                      stacklevel=3)
    return out
