"""The backend contract, the BACKENDS registry and a hard-timeout subprocess runner.

Why a process group and SIGKILL: external verifiers (NeuralSAT, α,β-CROWN) spawn their
own workers (MIP solvers, torch threads) and can hang in native code; only killing the
whole group that *we* started guarantees a timeout is a timeout, and never touches any
other process on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ...errors import BadInput
from ...registry import Registry
from ...settings import dest_of, flag_of, from_options, knobs
from ..result import Result

__all__ = ["BACKENDS", "Backend", "ProcOutcome", "run_process", "make_backend", "backend_options", "option_classes",
           "base_result"]


class Backend(Protocol):
    """A verifier: ``verify(onnx, vnnlib, timeout, workdir) -> Result``.

    Each backend declares its own knobs as a settings class (``Options``, see
    :mod:`graftonnx.settings`) and builds itself from one with ``from_options``, so the
    CLI and the zoo manifest list exactly a backend's own flags.
    """

    Options: ClassVar[type]
    name: str
    #: True when several instances may run at once in separate worker processes.
    parallel_ok: bool

    def verify(self, onnx_path: Path, vnnlib_path: Path, timeout: float, workdir: Path) -> Result: ...


BACKENDS: Registry[type] = Registry("verifier backend")


def make_backend(name: str, options: Any = None) -> Backend:
    """Build backend ``name`` from its own ``options`` (default: its defaults); an unknown name is BadInput."""
    cls = BACKENDS.get(name)
    opts = cls.Options() if options is None else options  # type: ignore[attr-defined]
    if not isinstance(opts, cls.Options):  # type: ignore[attr-defined]
        raise BadInput(f"backend {name!r} takes {cls.Options.__name__}, not {type(opts).__name__}")  # type: ignore[attr-defined]
    return cls.from_options(opts)  # type: ignore[no-any-return,attr-defined]


def backend_options(name: str, values: Mapping[str, Any], prefix: str = "", given: Sequence[str] = ()) -> Any:
    """Backend ``name``'s options from parsed flags (its own knobs only; None keeps a knob's default).

    ``given`` names the keywords the user set: one that is only another backend's knob is
    BadInput (it would be ignored), e.g. ``--mip`` with ``--backend lirpa``.
    """
    cls = BACKENDS.get(name).Options  # type: ignore[attr-defined]
    mine = {dest_of(f, k, prefix) for f, k in knobs(cls)}
    for other in option_classes():
        for f, k in knobs(other):
            dest = dest_of(f, k, prefix)
            if dest in given and dest not in mine:
                own = ", ".join(sorted(flag_of(g, j, prefix) for g, j in knobs(cls) if j.cli)) or "none"
                raise BadInput(f"{flag_of(f, k, prefix)} is not an option of backend {name!r} (its options: {own})")
    return from_options(cls, {k: v for k, v in values.items() if v is not None}, prefix)


def option_classes() -> list[type]:
    """Every registered backend's options class, in registry order (for CLI flags and manifest keys)."""
    return [BACKENDS.get(n).Options for n in BACKENDS]  # type: ignore[attr-defined]


def base_result(backend: str, onnx_path: Path, vnnlib_path: Path, verdict: str, seconds: float,
                **kw: object) -> Result:
    """A Result whose instance id is ``model::vnnlib`` (the runner rewrites ids to bench-relative paths)."""
    return Result(instance=f"{Path(onnx_path).name}::{Path(vnnlib_path).name}", model=str(onnx_path),
                  vnnlib=str(vnnlib_path), backend=backend, verdict=verdict, seconds=seconds, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ProcOutcome:
    """How a subprocess ended: its exit code (None when we killed it), wall seconds and the log path."""

    returncode: int | None
    seconds: float
    timed_out: bool
    log: Path

    def log_tail(self, n: int = 400) -> str:
        """The last ``n`` characters of the log on one line (for the Result message)."""
        try:
            text = self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""
        return " ".join(text.split())


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group we created for ``proc`` (and only that group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def run_process(cmd: Sequence[str], cwd: Path, log: Path, wall_timeout: float,
                env: Mapping[str, str] | None = None) -> ProcOutcome:
    """Run ``cmd`` in its own session, stdout+stderr to ``log``; kill the group after ``wall_timeout`` s."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    t0 = time.monotonic()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=full_env, start_new_session=True)
        try:
            rc: int | None = proc.wait(timeout=wall_timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, timed_out = None, True
        except BaseException:  # KeyboardInterrupt: never leave the verifier running
            _kill_group(proc)
            raise
        finally:
            # A verifier may leave children behind after its main process exits.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    return ProcOutcome(rc, time.monotonic() - t0, timed_out, log)
