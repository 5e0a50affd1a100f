"""The ``verify`` stage's settings: which backend, the per-instance budget and how many workers."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Settings, above, at_least, knob, stage

__all__ = ["VerifySettings"]


def _backends() -> list[str]:
    from . import BACKENDS

    return BACKENDS.keys()


@stage("verify")
@dataclass(frozen=True)
class VerifySettings(Settings):
    """A verifier run over a benchmark folder (each backend declares its own knobs: ``Backend.Options``)."""

    backend: str = knob("lirpa", "lirpa: auto_LiRPA bounds + attack (incomplete, CPU); neuralsat: complete, CPU; "
                                 "abcrown: α,β-CROWN checkout (complete, GPU).", choices=_backends)
    timeout: float | None = knob(None, "Seconds per instance, overriding instances.csv's third column. Default: "
                                       "the csv's.", check=above(0))
    workers: int = knob(1, "Instances run at once in worker processes (CPU backends only; GPU runs stay "
                           "sequential).", check=at_least(1))
