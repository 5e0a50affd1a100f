"""α,β-CROWN (external checkout) driven through its ``abcrown.py`` script.

Why generate the YAML: the settings that matter for grafted nets (sparse intermediate
bounds off, conv mode, device, BaB timeout, where the counterexample goes) must be the
same for every instance and visible in the run folder.  The exit code of ``abcrown.py``
carries no verdict; in single-vnnlib mode the results file holds one word
(sat/unsat/timeout) and, for sat with ``save_adv_example``, the assignment
``((X_0 v) ... (Y_0 v) ...)`` on the following lines.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ...device import DEVICES, device_knob
from ...errors import BadInput
from ...settings import Settings, at_least, knob
from ...verifier_shims import LAUNCHER
from ..result import Counterexample, Result, Verdict, sat_with_counterexample
from .abcrown_config import check_with_checkout, load_base, merge, parse_overrides
from .base import BACKENDS, ProcOutcome, base_result, run_process

__all__ = ["AbcrownBackend", "AbcrownOptions", "AbcrownConfig", "abcrown_root", "abcrown_python", "parse_abcrown",
           "ENV_VAR", "PY_ENV_VAR", "BRANCHING", "GRACE_S"]

ENV_VAR = "ABCROWN_PATH"
PY_ENV_VAR = "ABCROWN_PY"
#: α,β-CROWN's ReLU branching heuristics (bab.branching.method).
BRANCHING = ("kfsb", "babsr", "fsb")
#: Seconds α,β-CROWN may run past the instance timeout before its process group is killed.
#: As for NeuralSAT (see ``neuralsat.GRACE_S``): a late answer is a ``timeout`` anyway, so the
#: grace only lets its own timer (started after its imports and config) report.  Not measured
#: here (α,β-CROWN is not installed in this environment); a little more than NeuralSAT's
#: 10 s because it also parses a YAML config and, on cuda, initialises the device.
GRACE_S = 15.0
#: A "timeout" written before this fraction of the budget is α,β-CROWN's "unknown" (see AbcrownBackend._result).
GAVE_UP = 0.9
#: Run in the chosen interpreter: its torch version and whether clamp's bound gradient is 0 there.
_PROBE = ("import torch; x = torch.tensor([0.0, 1.0], requires_grad=True); torch.clamp(x, 0.0, 1.0).sum().backward(); "
          "print(torch.__version__, bool((x.grad == 0).all()), torch.cuda.is_available())")
_WORDS = {v.value: v for v in Verdict if v is not Verdict.ERROR}


def abcrown_root(path: str | os.PathLike[str] | None) -> Path:
    """The folder holding ``abcrown.py``: ``path`` (``--abcrown``), else ``$ABCROWN_PATH``; BadInput when absent."""
    raw = path if path else os.environ.get(ENV_VAR)
    if not raw:
        raise BadInput(f"no α,β-CROWN checkout given: pass --abcrown PATH or set {ENV_VAR} to the folder "
                       "holding abcrown.py (alpha-beta-CROWN/complete_verifier)")
    root = Path(raw).expanduser()
    if root.is_dir() and not (root / "abcrown.py").is_file() and (root / "complete_verifier" / "abcrown.py").is_file():
        root = root / "complete_verifier"
    if not (root / "abcrown.py").is_file():
        where = "--abcrown" if path else ENV_VAR
        raise BadInput(f"{root} (from {where}) holds no abcrown.py: point it at alpha-beta-CROWN/complete_verifier")
    return root.resolve()


def abcrown_python(path: str | os.PathLike[str] | None) -> str:
    """The interpreter for ``abcrown.py``: ``path`` (``--abcrown-python``), else ``$ABCROWN_PY``, else this one."""
    raw = path if path else os.environ.get(PY_ENV_VAR)
    if not raw:
        return sys.executable
    exe = Path(raw).expanduser()
    if not exe.is_file() or not os.access(exe, os.X_OK):
        where = "--abcrown-python" if path else PY_ENV_VAR
        raise BadInput(f"{exe} (from {where}) is not an executable Python: point it at the α,β-CROWN checkout's "
                       "own interpreter (e.g. its venv/bin/python)")
    return str(exe)


@functools.lru_cache(maxsize=4)
def _torch_of(python: str) -> tuple[str, bool, bool]:
    """(torch version, clamp gradient frozen, CUDA seen) of ``python``; BadInput when it cannot import torch."""
    try:
        out = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=300, check=True)
        version, frozen, cuda = out.stdout.split()[-3:]
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        raise BadInput(f"{python} cannot import torch ({exc}): give α,β-CROWN's own interpreter with "
                       "--abcrown-python or $ABCROWN_PY") from None
    return version, frozen == "True", cuda == "True"


def abcrown_device(python: str, device: str) -> str:
    """``--device`` for the checkout's interpreter: ``auto`` is whatever *its* torch sees (a CPU
    build beside a GPU runs on the CPU); ``cuda`` there without CUDA is one BadInput line."""
    if device not in DEVICES:
        raise BadInput(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    version, _, cuda = _torch_of(python)
    if device == "cuda" and not cuda:
        raise BadInput(f"--device cuda: torch {version} of α,β-CROWN's interpreter {python} sees no CUDA GPU; "
                       "use --device cpu or auto, or a CUDA build of torch in the checkout's venv")
    return "cuda" if device == "cuda" or (device == "auto" and cuda) else "cpu"


def _warn_frozen(python: str) -> None:
    version, frozen, _ = _torch_of(python)
    if frozen:
        warnings.warn(f"{python} runs torch {version}, whose clamp gradient freezes α-CROWN's slopes; graftonnx "
                      "restores it in the α,β-CROWN process (graftonnx/verifier_shims.py), but the checkout's own "
                      "interpreter (--abcrown-python, torch ≤ 2.13) needs no patch", stacklevel=2)


@dataclass(frozen=True)
class AbcrownConfig:
    """The α,β-CROWN settings graftonnx controls; everything else stays at α,β-CROWN's defaults."""

    device: str = "cuda"
    conv_mode: str = "patches"
    sparse_interm: bool = False
    timeout: float = 60.0
    cex_path: str = "cex.txt"
    input_shape: tuple[int, ...] | None = None
    branching: str | None = None  # bab.branching.method (kfsb | babsr | fsb); None: α,β-CROWN's default
    base: dict[str, Any] = field(default_factory=dict)  # --abcrown-config, under graftonnx's keys
    sets: dict[str, Any] = field(default_factory=dict)  # --abcrown-set, over them

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise BadInput(f"α,β-CROWN device {self.device!r} is not cpu or cuda: fix --device")
        if self.conv_mode not in ("patches", "matrix"):
            raise BadInput(f"α,β-CROWN conv mode {self.conv_mode!r} is not patches or matrix: fix --conv-mode")
        if self.branching not in (None, *BRANCHING):
            raise BadInput(f"α,β-CROWN branching {self.branching!r} is not one of {', '.join(BRANCHING)}: "
                           "fix --branching")

    def as_dict(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "general": {"device": self.device, "conv_mode": self.conv_mode, "sparse_interm": self.sparse_interm,
                        "save_adv_example": True, "complete_verifier": "bab"},
            "attack": {"cex_path": self.cex_path},
            "bab": {"timeout": float(self.timeout)},
        }
        if self.branching:
            cfg["bab"]["branching"] = {"method": self.branching}
        if self.input_shape:
            cfg["model"] = {"input_shape": list(self.input_shape)}
        return merge(merge(self.base, cfg), self.sets)

    def yaml(self) -> str:
        return "# written by graftonnx verify --backend abcrown\n" + yaml.safe_dump(self.as_dict(), sort_keys=False)


def parse_abcrown(text: str | None) -> tuple[Verdict, str, Counterexample | None]:
    """(verdict, message, counterexample) from a single-vnnlib results file's text."""
    if text is None:
        return Verdict.ERROR, "α,β-CROWN wrote no results file", None
    word, _, body = text.strip().partition("\n")
    word = word.strip().lower()
    if word not in _WORDS:
        return Verdict.ERROR, f"α,β-CROWN results file starts with {word[:40]!r}, not sat/unsat/timeout", None
    if word != Verdict.SAT:
        return _WORDS[word], "", None
    return sat_with_counterexample(body, "α,β-CROWN", " (save_adv_example off?)")


@dataclass(frozen=True)
class AbcrownOptions(Settings):
    """The abcrown backend's knobs."""

    path: str | None = knob(None, "abcrown: α,β-CROWN folder holding abcrown.py. Default: $ABCROWN_PATH.",
                            flag="--abcrown", metavar="PATH")
    python: str | None = knob(None, "abcrown: interpreter that runs abcrown.py (the checkout's own venv). "
                                    "Default: $ABCROWN_PY, else this one.", flag="--abcrown-python", metavar="PATH")
    device: str = device_knob(runtime=False)
    conv_mode: str = knob("patches", "abcrown: convolution mode; instances whose model has an elementwise "
                                     "non-scalar constant on a feature map (a per-neuron conv graft) run in matrix "
                                     "mode, which is all auto_LiRPA bounds.", choices=("patches", "matrix"))
    branching: str | None = knob(None, "abcrown: ReLU branching heuristic. Default: α,β-CROWN's own (kfsb).",
                                 choices=BRANCHING)
    sparse_interm: bool = knob(False, "abcrown: sparse intermediate bounds (off suits grafted nets).")
    config: str | None = knob(None, "abcrown: base α,β-CROWN config (e.g. a tuned exp_configs/vnncomp25/*.yaml); "
                                    "graftonnx's per-instance keys are merged over it.", flag="--abcrown-config",
                              metavar="YAML")
    set: tuple[str, ...] | None = knob(None, "abcrown: override one α,β-CROWN config key, KEY=VALUE with a dotted "
                                             "key (e.g. bab.branching.method=fsb); repeatable.",
                                       flag="--abcrown-set", metavar="KEY=VALUE", multiple=True)
    grace_s: float = knob(GRACE_S, "Wall seconds after the timeout before the verifier is killed (start-up); an "
                                   "answer after the timeout counts as timeout anyway (so no result depends on it: "
                                   "runtime).", cli=False, runtime=True, check=at_least(0))


@BACKENDS.register("abcrown")
@dataclass(frozen=True)
class AbcrownBackend:
    """``python verifier_shims.py abcrown.py --config C --onnx_path N --vnnlib_path P --results_file R --timeout T``.

    ``python`` is the checkout's interpreter; :mod:`graftonnx.verifier_shims` (standalone, torch
    only) keeps α-CROWN's slopes trainable when that interpreter's torch froze them.
    """

    root: Path
    python: str = sys.executable
    device: str = "cuda"
    conv_mode: str = "patches"
    sparse_interm: bool = False
    grace_s: float = GRACE_S
    branching: str | None = None
    base: dict[str, Any] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)
    name: str = "abcrown"
    Options: ClassVar[type] = AbcrownOptions

    @property
    def parallel_ok(self) -> bool:
        return self.device == "cpu"

    @classmethod
    def from_options(cls, opts: AbcrownOptions) -> AbcrownBackend:
        python = abcrown_python(opts.python)
        base, sets = load_base(opts.config), parse_overrides(opts.set or ())
        root = abcrown_root(opts.path)
        _warn_frozen(python)
        backend = cls(root, python, abcrown_device(python, opts.device), opts.conv_mode, opts.sparse_interm,
                      opts.grace_s, opts.branching, base, sets)
        if base or sets:  # a misspelled key: one error now, not a crash per instance
            check_with_checkout(python, root, backend.config(60.0, root).as_dict())
        return backend

    def config(self, timeout: float, workdir: Path, conv_mode: str | None = None) -> AbcrownConfig:
        return AbcrownConfig(self.device, conv_mode or self.conv_mode, self.sparse_interm, timeout,
                             str((workdir / "abcrown_cex.txt").resolve()), branching=self.branching,
                             base=self.base, sets=self.sets)

    def conv_mode_for(self, onnx_path: Path) -> str:
        """``matrix`` for a model whose feature maps meet an elementwise non-scalar constant, else the setting.

        Why: α,β-CROWN's auto_LiRPA asserts on such a Mul in patches mode; graftonnx's own
        per-neuron conv grafts are the case (``graftonnx simplify`` converts every other form).
        """
        from ...model.handle import open_model
        from ...rewrite.native import spatial_mask_ops

        if self.conv_mode == "matrix":
            return "matrix"
        h = open_model(onnx_path)
        return "matrix" if h.derived(("spatial_masks",), lambda: bool(spatial_mask_ops(h.proto))) else self.conv_mode

    def command(self, config: Path, onnx_path: Path, vnnlib_path: Path, results: Path, timeout: float) -> list[str]:
        return [self.python, str(LAUNCHER), "abcrown.py", "--config", str(config.resolve()), "--onnx_path",
                str(Path(onnx_path).resolve()), "--vnnlib_path", str(Path(vnnlib_path).resolve()),
                "--results_file", str(results.resolve()), "--timeout", f"{timeout:g}"]

    def verify(self, onnx_path: Path, vnnlib_path: Path, timeout: float, workdir: Path) -> Result:
        workdir.mkdir(parents=True, exist_ok=True)
        cfg_path, results, log = workdir / "abcrown.yaml", workdir / "abcrown_results.txt", workdir / "abcrown.log"
        mode = self.conv_mode_for(onnx_path)
        cfg_path.write_text(self.config(timeout, workdir, mode).yaml())
        results.unlink(missing_ok=True)
        t0 = time.monotonic()
        out = run_process(self.command(cfg_path, onnx_path, vnnlib_path, results, timeout), self.root, log,
                          timeout + self.grace_s)
        return self._result(onnx_path, vnnlib_path, out, results, time.monotonic() - t0, timeout)

    def _result(self, onnx_path: Path, vnnlib_path: Path, out: ProcOutcome, results: Path, seconds: float,
                timeout: float = float("inf")) -> Result:
        def res(verdict: Verdict, message: str = "", cex: Counterexample | None = None) -> Result:
            return base_result(self.name, onnx_path, vnnlib_path, verdict, seconds, message=message,
                               log=str(out.log), counterexample=cex)

        if out.timed_out:
            return res(Verdict.TIMEOUT, f"killed after {out.seconds:.1f} s wall time (hard limit)")
        verdict, message, cex = parse_abcrown(results.read_text(errors="replace") if results.is_file() else None)
        if verdict == Verdict.TIMEOUT and seconds < GAVE_UP * timeout:
            # α,β-CROWN's results file maps "unknown" (it gave up: BaB exhausted, incomplete only) to "timeout";
            # an answer well inside the budget can only be that.
            verdict, message = Verdict.UNKNOWN, (f"α,β-CROWN gave up after {seconds:.1f} s of a {timeout:g} s budget "
                                                 "(its results file says timeout for unknown)")
        if verdict == Verdict.ERROR:
            message = f"{message}; exit code {out.returncode}; see {out.log}: {out.log_tail(200)}"
        return res(verdict, message, cex)
