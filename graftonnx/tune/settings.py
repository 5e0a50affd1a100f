"""The ``tune`` stage's settings: which grafts to try, how to judge them, and how long to spend.

Why its own settings class (not a zoo stage: the zoo grafts fixed ratios):
``graftonnx tune`` is the one command that chooses the ratio and the λ
schedule for the user; these knobs say what "best" means (the largest verified accuracy
whose clean accuracy stays within ``max_sa_drop`` of the original network's) and what a
measurement costs (held-out images for SA, ε-ball instances for VA, finetuning epochs).
The graft itself (criterion, granularity, init, ε) is :class:`GraftSettings`, as in ``graft``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Settings, at_least, knob, within

__all__ = ["TuneSettings", "TUNE_METHODS"]

#: lirpa bound methods that judge a candidate (the lirpa backend's names).
TUNE_METHODS = ("ibp", "crown", "alpha-crown")


def _ratios(v: tuple[float, ...]) -> str | None:
    if not all(0 < r < 1 for r in v):
        return "every ratio must be in (0, 1): 0 (the original network) is always a candidate"
    return None if len(set(v)) == len(v) else "has a ratio twice"


def _schedules(v: tuple[str, ...]) -> str | None:
    from ..planning.select import SCHEDULES

    bad = [s for s in v if s not in SCHEDULES]
    if bad:
        return f"{bad[0]!r} is not a schedule: choose from {', '.join(SCHEDULES)}"
    return None if len(set(v)) == len(v) else "has a schedule twice"


@dataclass(frozen=True)
class TuneSettings(Settings):
    """What ``graftonnx tune`` searches and how it judges a candidate."""

    max_sa_drop: float = knob(1.5, "Largest clean-accuracy drop (percentage points, vs the original network on "
                                   "the held-out images) a chosen graft may have.", check=at_least(0))
    ratios: tuple[float, ...] = knob((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                                     "Graft ratios to try, ascending per schedule (nested plans).", check=_ratios,
                                     metavar="R,R,...", flag="--candidate-ratios")
    schedules: tuple[str, ...] = knob(("total", "target"), "λ schedules to try (specs/selection.md).",
                                      check=_schedules, metavar="S,S", flag="--candidate-schedules")
    heldout: float = knob(0.2, "Share of --data held out for SA and the VA sample (the rest scores and "
                               "finetunes).", check=within(0.01, 0.9))
    n_verify: int = knob(30, "Held-out images whose ε-ball is verified per candidate (VA).", check=at_least(1))
    method: str = knob("alpha-crown", "lirpa bound method that verifies the sample.", choices=TUNE_METHODS,
                       flag="--va-method")
    epochs: int = knob(2, "Finetuning epochs of every candidate (0: no finetune).", check=at_least(0),
                       flag="--candidate-epochs")
    lr: float = knob(0.01, "Finetuning learning rate of the weights (grafted a, b: 10×).", check=at_least(0),
                     flag="--candidate-lr")
    patience: int = knob(2, "Consecutive candidates over the SA limit that end a schedule's sweep.",
                         check=at_least(1))
    budget_minutes: float | None = knob(None, "Stop trying new candidates after this many minutes (a rerun "
                                              "with more resumes). Default: no limit.", check=at_least(0),
                                        runtime=True)
