"""The ``score`` stage's settings: the ε-ball, the bound method and the significance measure."""

from __future__ import annotations

from dataclasses import dataclass

from ..device import device_knob
from ..settings import Settings, at_least, knob, stage

__all__ = ["ScoreSettings", "DEFAULT_EPS"]

DEFAULT_EPS = 0.02


def _bounds() -> list[str]:
    from ..bounds import BOUND_METHODS

    return BOUND_METHODS.keys()


def _significance() -> list[str]:
    from .significance import SIGNIFICANCE

    return SIGNIFICANCE.keys()


def _eps(v: float) -> str | None:
    return None if v > 0 else "must be > 0 on the raw pixel scale (e.g. 0.02)"


@stage("score")
@dataclass(frozen=True)
class ScoreSettings(Settings):
    """How neurons are scored: instability under the ε-ball (``bound``) and ``significance``."""

    eps: float = knob(DEFAULT_EPS, "L∞ radius of the input ball, in raw pixel units (before any normalisation).",
                      check=_eps)
    bound: str = knob("ibp", "Bound method for instability: ibp (onnxruntime, fast) or crown (auto_LiRPA, tighter).",
                      choices=_bounds)
    significance: str = knob("grad", "Significance: grad = mean |dL/dz| (paper), act = mean |z|, taylor = "
                                     "mean |z·dL/dz|.", choices=_significance)
    batch_size: int = knob(256, "Images bounded at once (memory stays flat for any --n).", check=at_least(1))
    device: str = device_knob()
