"""Where torch runs: ``--device auto|cpu|cuda``, declared once and resolved once per stage.

Why a context and not a parameter on every function: the device matters to the few places
that create tensors or modules (the training loop, the PGD, the auto_LiRPA adapter, the
significance gradients), not to the stage code between them.  Each stage that has a
``device`` knob (score, train/finetune, evaluate, the lirpa backend) resolves it once and
runs inside :func:`using`; the code below asks :func:`current`.  Outside any stage the
device is the CPU, so library calls behave as before.

Random draws (shuffling, attack starts, FGSM noise) stay on CPU generators and are moved to
the device, so a seed gives the same noise on CPU and CUDA; arithmetic on the GPU still
rounds differently, so results agree to float tolerance, not bit for bit.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import torch

from .errors import BadInput

__all__ = ["DEVICES", "DEVICE_HELP", "device_knob", "resolve", "using", "current", "module_device"]

#: The values of every ``--device`` flag.
DEVICES = ("auto", "cpu", "cuda")
#: One help text for every ``--device`` flag (the one-CLI test compares them).
DEVICE_HELP = "Where torch runs: auto = CUDA when torch sees a GPU, else the CPU; cpu; cuda."

_current: contextvars.ContextVar[torch.device | None] = contextvars.ContextVar("graftonnx_device", default=None)


def device_knob(runtime: bool = True) -> Any:
    """The ``device`` field of a stage's settings.

    A runtime knob where the device changes only float rounding (score, train, evaluate: a
    run may resume elsewhere), checked on construction so ``cuda`` without a GPU fails before
    any work; recorded (``runtime=False``) for verifiers, whose times it sets and whose
    backend checks it against the interpreter that runs them.
    """
    from .settings import knob

    return knob("auto", DEVICE_HELP, choices=DEVICES, runtime=runtime, check=_cuda_seen if runtime else None,
                added=not runtime)


def _cuda_seen(name: str) -> str | None:
    if name == "cuda" and not torch.cuda.is_available():
        return (f"torch {torch.__version__} sees no CUDA GPU on this machine (torch.cuda.is_available() is "
                "False); use cpu or auto")
    return None


def resolve(name: str, flag: str = "--device") -> torch.device:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without one is one BadInput line."""
    if name not in DEVICES:
        raise BadInput(f"{flag} {name!r}: choose one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput(f"{flag} cuda: torch {torch.__version__} sees no CUDA GPU on this machine "
                       f"(torch.cuda.is_available() is False); use {flag} cpu or {flag} auto")
    return torch.device(name)


@contextlib.contextmanager
def using(name: str | torch.device) -> Iterator[torch.device]:
    """Run the block with :func:`current` = the resolved device (restored afterwards)."""
    dev = name if isinstance(name, torch.device) else resolve(name)
    token = _current.set(dev)
    try:
        yield dev
    finally:
        _current.reset(token)


def current() -> torch.device:
    """The device of the stage being run (the CPU outside any stage)."""
    return _current.get() or torch.device("cpu")


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for one with neither)."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")
