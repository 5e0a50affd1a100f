"""The ``init`` stage's settings and :class:`GraftSettings`, the union of score, select and init.

Why a union by inheritance: ``graftonnx graft`` and the Python API take one flat object
(``GraftSettings(eps=0.1, ratio=0.3)``), yet every field stays declared once, in its own
stage; the union adds no field of its own.  It is what a plan and a grafted model record
as their provenance.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..scoring.settings import ScoreSettings
from ..settings import Settings, knob, stage
from .select import Selection

__all__ = ["InitSettings", "GraftSettings"]


def _inits() -> list[str]:
    from .init import INITS

    return INITS.keys()


@stage("init")
@dataclass(frozen=True)
class InitSettings(Settings):
    """The grafted lines' starting point (a selection policy such as ``prune`` may impose its own)."""

    init: str = knob("const", "Initial line: const (a = 0.4, b = 0, the paper's), fit (least squares through "
                              "ReLU on the data) or zero (a = b = 0). Sigmoid/Tanh units always start as "
                              "their least-squares line (zero: a = b = 0).", choices=_inits)


@dataclass(frozen=True)
class GraftSettings(Selection, ScoreSettings, InitSettings):
    """Every knob of scoring, selection and initialisation (one object, recorded in provenance)."""

    @property
    def line(self) -> str:
        """The init the grafted units really get (the policy's rule wins: prune → zero)."""
        return self.policy.line or self.init
