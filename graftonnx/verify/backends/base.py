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
from typing import Protocol

from ...registry import Registry
from ..result import Result

__all__ = ["BACKENDS", "Backend", "BackendOptions", "ProcOutcome", "run_process", "make_backend", "base_result"]


@dataclass(frozen=True)
class BackendOptions:
    """Every knob a backend may read; each backend ignores what it does not use."""

    method: str = "crown"  # lirpa: ibp | crown | alpha-crown
    device: str = "cpu"  # neuralsat / abcrown: cpu | cuda
    abcrown_path: str | None = None  # folder holding abcrown.py; None → $ABCROWN_PATH
    abcrown_python: str | None = None  # interpreter for abcrown.py; None → $ABCROWN_PY, else this one
    conv_mode: str = "patches"  # abcrown: patches | matrix (matrix per instance where a model needs it)
    branching: str | None = None  # abcrown: kfsb | babsr | fsb; None → α,β-CROWN's default
    sparse_interm: bool = False  # abcrown: off by default (grafted nets have few unstable ReLUs)
    grace_s: float = 30.0  # extra wall time over the verifier's own timeout (start-up, model loading)
    mip: bool = False  # neuralsat: MIP verification/tightening (pip's gurobipy licence caps MIPs at 2000 variables)


class Backend(Protocol):
    """A verifier: ``verify(onnx, vnnlib, timeout, workdir) -> Result``."""

    name: str
    #: True when several instances may run at once in separate worker processes.
    parallel_ok: bool

    def verify(self, onnx_path: Path, vnnlib_path: Path, timeout: float, workdir: Path) -> Result: ...


BACKENDS: Registry[type] = Registry("verifier backend")


def make_backend(name: str, options: BackendOptions) -> Backend:
    """Build backend ``name`` from ``options`` (an unknown name is BadInput)."""
    cls = BACKENDS.get(name)
    return cls.from_options(options)  # type: ignore[no-any-return,attr-defined]


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
