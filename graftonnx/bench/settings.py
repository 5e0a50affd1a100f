"""The ``export`` stage's settings: how many properties, their timeout and which images to skip."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Settings, above, at_least, knob, stage

__all__ = ["ExportSettings"]


def _skips() -> tuple[str, ...]:
    from .export import SKIP_MODES

    return SKIP_MODES


@stage("export")
@dataclass(frozen=True)
class ExportSettings(Settings):
    """What ``graftonnx export`` writes per model (the radius and the seed are the run's own)."""

    instances: int = knob(100, "How many properties (images) to export at most; --n limits how many images are "
                               "loaded.", check=at_least(1))
    timeout: float = knob(60.0, "Seconds per instance in instances.csv.", check=above(0))
    skip: str = knob("misclassified", "Skip images the first model misclassifies; 'attacked' also those a quick "
                                      "PGD attack breaks.", choices=_skips)
    gz: bool = knob(False, "Also write .gz copies of every .onnx and .vnnlib file.")
    simplify: bool = knob(True, "Write grafted models in their verifier-ready form (grafted units out of the Relus, "
                                "patches mode in α,β-CROWN), checked equal to the mask form; --no-simplify keeps "
                                "the mask form.")
