"""The ``export`` stage's settings: how many properties, their timeout, which images to skip, and the
VNN-COMP submission knobs (.gz layout, license, the 6-hour check)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadInput
from ..settings import Settings, above, at_least, knob, stage

__all__ = ["ExportSettings", "UNSPECIFIED_LICENSE"]

#: The ``license`` default: nobody has said under which terms the networks may be shared.
UNSPECIFIED_LICENSE = "unspecified"


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
    gz_only: bool = knob(False, "Write only .onnx.gz and .vnnlib.gz files (instances.csv lists them), for "
                                "benchmark repositories with a file size limit.")
    license: str = knob(UNSPECIFIED_LICENSE, "License of the shipped networks and image data, written to LICENSE "
                                             "(e.g. CC-BY-4.0, MIT); the default says it is unspecified: ask the "
                                             "networks' authors before redistributing.", metavar="TEXT")
    allow_over_6h: bool = knob(False, "Allow instances × timeout above VNN-COMP's 6 hours per benchmark (by "
                                      "default such an export is refused).")
    simplify: bool = knob(True, "Write grafted models in their verifier-ready form (grafted units out of the Relus, "
                                "patches mode in α,β-CROWN), checked equal to the mask form; --no-simplify keeps "
                                "the mask form.")

    def cross_check(self) -> None:
        """``--gz`` means "plain files and .gz copies", ``--gz-only`` "no plain files": both at once contradict."""
        if self.gz and self.gz_only:
            raise BadInput("--gz and --gz-only contradict: --gz writes plain files and .gz copies, --gz-only "
                           "only .gz files; pass one")
        if not self.license.strip() or "\n" in self.license:
            raise BadInput(f"--license {self.license!r}: give one line naming the license (e.g. CC-BY-4.0)")
