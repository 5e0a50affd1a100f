"""Neuron selection: which units to graft, from instability and significance scores.

The schedule (specs/selection.md): scores are rank-normalised to [0, 1]; units are chosen
in ``stages`` slices; in slice j the not-yet-chosen units with the highest
``λ_j·s_u + (1 − λ_j)·(1 − s_i)`` are taken, with λ_j falling linearly from 1 (first
slice: most unstable) to 0 (last slice: least significant) — the paper's "λ decays from 1
to 0 along with the total number of grafted neurons".  The paper leaves open *which*
total: ``schedule="target"`` (default) splits the K requested picks into the slices, so
every graft ends at λ = 0 and large grafts lean on insignificance (accuracy);
``schedule="total"`` splits *all* units into the slices and stops after K picks, so λ
follows the fraction of the whole network grafted so far, a 50 % graft stays mostly
instability-driven, and a smaller graft is exactly the first part of a larger one (nested
plans).  Which wins depends on the network (specs/selection.md has the measurements).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BadInput
from ..registry import Registry
from ..settings import Settings, at_least, knob, stage

__all__ = ["Selection", "Criterion", "SELECTORS", "SCHEDULES", "rank_normalise", "lambda_schedule", "slice_sizes",
           "select_units", "count_for"]

#: How the λ slices are laid out: over the K requested picks, or over all units (nested plans).
SCHEDULES = ("target", "total")
#: Rank all layers' units together, or graft the same ratio in each layer.
SCOPES = ("global", "per-layer")
DEFAULT_RATIO = 0.5


def _ratio(v: float) -> str | None:
    return None if 0.0 <= v <= 1.0 else "is outside [0, 1]: it is the fraction of neurons to graft"


def _count(v: int) -> str | None:
    return None if v >= 0 else "is negative: give how many units to graft"


def _criteria() -> list[str]:
    return SELECTORS.keys()


def _granularities() -> tuple[str, ...]:
    from .plan import PLAN_GRANULARITIES

    return PLAN_GRANULARITIES


@stage("select")
@dataclass(frozen=True)
class Selection(Settings):
    """Which units to graft and how many: the ``select`` stage's settings."""

    criterion: str = knob("combined", "combined = λ·instability + (1−λ)·insignificance with λ 1→0 (Sigmoid/Tanh "
                                      "units: relaxation looseness for instability); baselines: instability, "
                                      "significance, random (seeded), prune (a = b = 0, fixed).",
                          choices=_criteria)
    ratio: float | None = knob(None, "Fraction of the ReLU *neurons* to graft, in [0, 1], whatever --granularity "
                                     "grafts (a channel counts for all its positions); default 0.5 unless --count "
                                     "is given.", check=_ratio)
    count: int | None = knob(None, "Number of units (neurons, or channels with --granularity channel) to graft "
                                   "instead.", check=_count)
    scope: str = knob("global", "Rank all layers together, or graft the same ratio in each layer.", choices=SCOPES)
    granularity: str = knob("neuron", "Graft single neurons, whole channels of conv layers, or auto: channels on "
                                      "conv feature maps (their graft has a Conv form that α,β-CROWN and auto_LiRPA "
                                      "bound in fast patches mode), neurons on flat layers.", choices=_granularities)
    layers: tuple[str, ...] | None = knob(None, "Comma-separated ReLU site names or indices to restrict to.")
    stages: int = knob(5, "Slices of the λ schedule for --criterion combined.", check=at_least(1))
    seed: int = knob(0, "Random seed (random selection, synthetic inputs, training, export order).")
    schedule: str = knob("target", "λ slices over the K picks (target: every graft ends at λ = 0, keeps accuracy) "
                                   "or over all units (total: λ follows the fraction of the network grafted, plans "
                                   "are nested; verified far more on a hard-to-verify CNN after finetuning).",
                         choices=SCHEDULES)

    def cross_check(self) -> None:
        if self.ratio is not None and self.count is not None:
            raise BadInput("give exactly one of --ratio or --count")
        if self.ratio is None and self.count is None:
            object.__setattr__(self, "ratio", DEFAULT_RATIO)
        super().cross_check()

    @property
    def policy(self) -> Criterion:
        return SELECTORS.get(self.criterion)


def rank_normalise(scores: np.ndarray) -> np.ndarray:
    """Average ranks scaled to [0, 1] (ties share a rank; a constant vector maps to 0.5)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    n = s.size
    if n == 0:
        return s
    order = np.argsort(s, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    sorted_s = s[order]
    # average rank over runs of equal values
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], n]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b - 1) / 2.0
    return ranks / (n - 1) if n > 1 else np.full(1, 0.5)


def lambda_schedule(stages: int) -> np.ndarray:
    """λ per slice, linearly from 1 to 0 (a single slice uses λ = 0.5)."""
    return np.linspace(1.0, 0.0, stages) if stages > 1 else np.array([0.5])


def count_for(units: int, sel: Selection) -> int:
    """How many of ``units`` the selection grafts (ratio rounded to nearest, count capped).

    The cap is a backstop for direct callers: :func:`graftonnx.planning.build.check_count`
    refuses a ``--count`` above the units before any plan is made, so a plan's provenance
    never records a count it did not graft.
    """
    if sel.count is not None:
        return min(sel.count, units)
    return int(round(float(sel.ratio) * units))


Selector = Callable[[np.ndarray, np.ndarray, int, Selection], np.ndarray]


@dataclass(frozen=True)
class Criterion:
    """A selection policy: how units are picked, and the line rule it imposes on them.

    ``pick(s_u, s_i, k, sel)`` returns chosen unit indices (s_u, s_i rank-normalised);
    ``line`` names the init every pick gets whatever ``--init`` says (``zero`` for the
    pruning baseline), and ``fixed`` lines are never trained.
    """

    pick: Selector
    line: str | None = None
    fixed: bool = False


#: criterion name → :class:`Criterion`.
SELECTORS: Registry[Criterion] = Registry("criterion")


def slice_sizes(k: int, units: int, stages: int, schedule: str = "target") -> list[int]:
    """How many picks each λ slice makes: ``k`` split evenly (target), or ``units`` split evenly and cut at ``k``."""
    total = k if schedule == "target" else units
    sizes, left = [], k
    for part in np.array_split(np.arange(total), stages):
        sizes.append(min(part.size, left))
        left -= sizes[-1]
    return sizes


def _staged(s_u: np.ndarray, s_i: np.ndarray, sizes: Sequence[int], lambdas: Sequence[float]) -> np.ndarray:
    chosen = np.zeros(s_u.size, dtype=bool)
    for lam, size in zip(lambdas, sizes, strict=True):
        if not size:
            continue
        score = lam * s_u + (1.0 - lam) * (1.0 - s_i)
        score = np.where(chosen, -np.inf, score)
        # stable order: ties broken by unit index, so plans are reproducible
        take = np.argsort(-score, kind="stable")[:size]
        chosen[take] = True
    return np.flatnonzero(chosen)


def _combined(s_u: np.ndarray, s_i: np.ndarray, k: int, sel: Selection) -> np.ndarray:
    return _staged(s_u, s_i, slice_sizes(k, s_u.size, sel.stages, sel.schedule), lambda_schedule(sel.stages))


def _instability(s_u: np.ndarray, s_i: np.ndarray, k: int, sel: Selection) -> np.ndarray:
    return _staged(s_u, s_i, [k], [1.0])


def _significance(s_u: np.ndarray, s_i: np.ndarray, k: int, sel: Selection) -> np.ndarray:
    return _staged(s_u, s_i, [k], [0.0])


def _random(s_u: np.ndarray, s_i: np.ndarray, k: int, sel: Selection) -> np.ndarray:
    rng = np.random.default_rng(sel.seed)
    return np.sort(rng.choice(s_u.size, size=k, replace=False))


SELECTORS.register("combined")(Criterion(_combined))
SELECTORS.register("instability")(Criterion(_instability))
SELECTORS.register("significance")(Criterion(_significance))
SELECTORS.register("random")(Criterion(_random))
#: the pruning baseline (paper Table 5): the combined picks, lines a = b = 0, never trained
SELECTORS.register("prune")(Criterion(_combined, line="zero", fixed=True))


def _weighted_count(fn: Selector, s_u: np.ndarray, s_i: np.ndarray, w: np.ndarray, sel: Selection) -> int:
    """How many units to pick so that the picked *weight* (neurons) is closest to ``ratio`` of all of it.

    Why: a channel of an early conv layer holds many more neurons than one of a later layer,
    so 50 % of all channels grafted 82 % of a CIFAR ResNet's neurons.  Binary search on the
    pick count (the picked weight grows with it; exactly so for nested plans).
    """
    target = float(sel.ratio) * float(w.sum())
    lo, hi = 0, s_u.size
    while lo < hi:
        mid = (lo + hi) // 2
        if w[fn(s_u, s_i, mid, sel)].sum() >= target:
            hi = mid
        else:
            lo = mid + 1
    if lo > 0 and abs(w[fn(s_u, s_i, lo - 1, sel)].sum() - target) <= abs(w[fn(s_u, s_i, lo, sel)].sum() - target):
        return lo - 1
    return lo


def select_units(instability: Sequence[np.ndarray], significance: Sequence[np.ndarray],
                 sel: Selection, weights: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
    """Chosen unit indices per site, given raw per-unit scores per site.

    ``global`` ranks all sites' units together and picks K of them in total; ``per-layer``
    ranks and picks within each site separately.  ``weights`` (neurons per unit, per site)
    make a ``ratio`` count neurons rather than units when units differ in size (channels of
    different layers, or channels beside neurons); ``count`` always counts units.
    """
    fn = SELECTORS.get(sel.criterion).pick
    if sel.scope == "per-layer":  # within one site every unit weighs the same
        return [np.sort(fn(rank_normalise(u), rank_normalise(i), count_for(u.size, sel), sel))
                for u, i in zip(instability, significance, strict=True)]
    sizes = [u.size for u in instability]
    all_u = rank_normalise(np.concatenate([np.ravel(u) for u in instability]))
    all_i = rank_normalise(np.concatenate([np.ravel(i) for i in significance]))
    k = count_for(all_u.size, sel)
    if weights is not None and sel.ratio is not None:
        w = np.concatenate([np.ravel(x) for x in weights]).astype(np.float64)
        if w.size and np.any(w != w[0]):
            k = _weighted_count(fn, all_u, all_i, w, sel)
    picked = np.sort(fn(all_u, all_i, k, sel))
    bounds = np.cumsum([0, *sizes])
    return [picked[(picked >= lo) & (picked < hi)] - lo for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
