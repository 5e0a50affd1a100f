"""NeuralSAT (complete, CPU) as a subprocess of the installed PyPI ``neuralsat`` package.

Why a subprocess: NeuralSAT's ``main.py`` is a script (its modules import each other as
top-level ``helper``/``verifier`` packages from its own folder), it starts MIP solver
processes, and only a separate process group can be killed reliably at the timeout.
It prints ``<status>,<runtime>`` as its last line and, with ``--result_file`` and
``--export_cex``, writes the same status then the VNN-COMP assignment ``((X_0 v) ...)``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ...device import device_knob, resolve
from ...errors import BadInput
from ...settings import Settings, at_least, knob
from ...verifier_shims import LAUNCHER
from ..result import Result, Verdict, sat_with_counterexample
from .base import BACKENDS, ProcOutcome, base_result, run_process

__all__ = ["GRACE_S", "NeuralsatBackend", "NeuralsatOptions", "neuralsat_dir", "parse_neuralsat"]

_STATUS = {v.value: v for v in Verdict if v is not Verdict.ERROR}

#: Seconds NeuralSAT may run past the instance timeout before its process group is killed.
#: Why so short: an answer after the timeout is a ``timeout`` anyway (the runner keeps it as
#: ``late_verdict``), so the grace only lets NeuralSAT's own timer, which starts after its
#: imports, print its own status, and it bounds what a hung verifier costs.  Measured start-up
#: (wall seconds minus NeuralSAT's own ``Runtime``, trivial 8-input instance, ``graftonnx verify
#: BENCH --backend neuralsat --timeout 20``, CPU): about 5 s on an idle machine (repo notes),
#: 13-27 s on a loaded 2-core one (load average 1.6-3.7); the kill at timeout + 10 s covers the
#: idle case with a 2x margin, and under load the instance is a timeout either way.
GRACE_S = 10.0


def neuralsat_dir() -> Path:
    """The folder holding NeuralSAT's ``main.py`` ($NEURALSAT_PATH, else the installed ``src`` package)."""
    env = os.environ.get("NEURALSAT_PATH")
    if env:
        root = Path(env)
    else:
        spec = importlib.util.find_spec("src")  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise BadInput("NeuralSAT is not installed: pip install neuralsat, or set NEURALSAT_PATH to its folder")
        root = Path(list(spec.submodule_search_locations)[0])
    if not (root / "main.py").is_file() or not (root / "verifier").is_dir():
        raise BadInput(f"{root} is not a NeuralSAT folder (no main.py/verifier): fix NEURALSAT_PATH")
    return root


def parse_neuralsat(result_text: str | None, log_text: str) -> tuple[Verdict, str, object]:
    """(verdict, message, counterexample) from the result file (preferred) or the log's last status line."""
    status, body = "", ""
    if result_text and result_text.strip():
        first, _, body = result_text.strip().partition("\n")
        status = first.split(",")[0].strip()
    else:
        for line in reversed(log_text.strip().splitlines()):
            head = line.strip().split(",")[0]
            if head in _STATUS and "," in line:
                status = head
                break
    if status not in _STATUS:
        return Verdict.ERROR, f"NeuralSAT printed no verdict (got {status or 'nothing'!r})", None
    if status != Verdict.SAT:
        return _STATUS[status], "", None
    return sat_with_counterexample(body, "NeuralSAT")


@dataclass(frozen=True)
class NeuralsatOptions(Settings):
    """The neuralsat backend's knobs."""

    device: str = device_knob(runtime=False)
    mip: bool = knob(False, "neuralsat: MIP verification/tightening (needs a full Gurobi licence beyond 2000 "
                            "variables).")
    grace_s: float = knob(GRACE_S, "Wall seconds after the timeout before the verifier is killed (start-up); an "
                                   "answer after the timeout counts as timeout anyway (so no result depends on it: "
                                   "runtime).", cli=False, runtime=True, check=at_least(0))


@BACKENDS.register("neuralsat")
@dataclass(frozen=True)
class NeuralsatBackend:
    """``python verifier_shims.py main.py --net N --spec P --device D --timeout T --result_file R --export_cex``.

    Through :mod:`graftonnx.verifier_shims`: NeuralSAT runs α-CROWN inside, whose slopes freeze on
    the torch that pip installs beside it (≥ 2.14) unless clamp's bound gradient is restored.
    """

    device: str = "cpu"
    grace_s: float = GRACE_S
    mip: bool = False
    name: str = "neuralsat"
    Options: ClassVar[type] = NeuralsatOptions

    @property
    def parallel_ok(self) -> bool:
        return self.device == "cpu"

    @classmethod
    def from_options(cls, opts: NeuralsatOptions) -> NeuralsatBackend:
        neuralsat_dir()  # a missing verifier is the user's to fix: fail before any instance is journaled
        return cls(device=resolve(opts.device).type, grace_s=opts.grace_s, mip=opts.mip)  # NeuralSAT shares our torch

    def command(self, onnx_path: Path, vnnlib_path: Path, timeout: float, result_file: Path) -> list[str]:
        return [sys.executable, str(LAUNCHER), "main.py", "--net", str(Path(onnx_path).resolve()), "--spec",
                str(Path(vnnlib_path).resolve()), "--device", self.device, "--timeout", f"{timeout:g}",
                "--result_file", str(result_file.resolve()), "--export_cex", "--verbosity", "1",
                *self._settings(result_file.parent)]

    def _settings(self, workdir: Path) -> list[str]:
        """``--setting_file`` turning MIP off, unless asked for.

        Why off by default: the gurobipy that pip installs carries a size-limited licence, so
        every MIP over 2000 variables fails and NeuralSAT exits with an error — far more often
        on ungrafted nets (many unstable ReLUs), which would bias a baseline-vs-graft comparison.
        Without MIP NeuralSAT stays complete (branch-and-bound over ReLU splits).
        """
        if self.mip:
            return []
        path = workdir / "neuralsat_settings.json"
        path.write_text(json.dumps({"use_mip_verify": False, "use_mip_tightening": False}) + "\n")
        return ["--setting_file", str(path.resolve())]

    def verify(self, onnx_path: Path, vnnlib_path: Path, timeout: float, workdir: Path) -> Result:
        root = neuralsat_dir()
        workdir.mkdir(parents=True, exist_ok=True)
        result_file, log = workdir / "neuralsat_result.txt", workdir / "neuralsat.log"
        result_file.unlink(missing_ok=True)
        t0 = time.monotonic()
        out = run_process(self.command(onnx_path, vnnlib_path, timeout, result_file), root, log,
                          timeout + self.grace_s)
        return self._result(onnx_path, vnnlib_path, out, result_file, time.monotonic() - t0)

    def _result(self, onnx_path: Path, vnnlib_path: Path, out: ProcOutcome, result_file: Path,
                seconds: float) -> Result:
        def res(verdict: Verdict, message: str = "", cex: object = None) -> Result:
            return base_result(self.name, onnx_path, vnnlib_path, verdict, seconds, message=message,
                               log=str(out.log), counterexample=cex)

        if out.timed_out:
            return res(Verdict.TIMEOUT, f"killed after {out.seconds:.1f} s wall time (hard limit)")
        text = result_file.read_text(errors="replace") if result_file.is_file() else None
        log_text = out.log.read_text(errors="replace") if out.log.is_file() else ""
        verdict, message, cex = parse_neuralsat(text, log_text)
        if out.returncode != 0 and verdict != Verdict.ERROR:
            verdict, message = Verdict.ERROR, f"NeuralSAT exited with code {out.returncode} after printing {verdict}"
        if verdict == Verdict.ERROR:
            message = f"{message}; exit code {out.returncode}; see {out.log}: {out.log_tail(200)}"
        return res(verdict, message, cex)
