"""The numbers behind the figures, as pure functions: Wilson intervals, McNemar tests, cactus curves, box-or-points.

Why separate from :mod:`.plots`: each is a claim a reader of the paper relies on ("VA
40 % ± what?", "how many solved within 10 s?", "is that box five points or two?"), so each
is tested on hand-made values without drawing anything, and the tables use the same
interval as the bars.  ``mcnemar_exact`` answers the paired question ("does the grafted net
verify more of *the same* instances than its baseline?") that two overlapping intervals
cannot: it looks only at the instances where the two models disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..verify.result import Verdict, is_solved

__all__ = ["Z95", "MIN_BOX_POINTS", "wilson_interval", "mcnemar_exact", "cactus_curve", "use_box"]

#: The standard-normal quantile of a two-sided 95 % interval.
Z95 = 1.959963984540054
#: Fewer results than this are drawn as points: a box of 2–4 values shows quartiles that do not exist.
MIN_BOX_POINTS = 5


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of a proportion of ``k`` successes in ``n`` trials.

    Why Wilson and not ``p ± z·sqrt(p(1-p)/n)``: benchmarks have tens of instances and VA is
    often 0 % or 100 %, where the normal (Wald) interval collapses to a point or leaves
    [0, 1]; Wilson's stays inside [0, 1] and keeps a real width at the ends.
    """
    if n <= 0:
        raise ValueError(f"n = {n}: an interval needs at least one trial")
    if not 0 <= k <= n:
        raise ValueError(f"k = {k} successes is outside [0, n = {n}]")
    z2 = z * z
    center = (k + z2 / 2) / (n + z2)
    half = z * math.sqrt(k * (n - k) / n + z2 / 4) / (n + z2)
    return max(0.0, center - half), min(1.0, center + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value of ``b`` vs ``c`` discordant pairs.

    ``b``: instances only the first model verifies, ``c``: only the second.  Under "no
    difference" each discordant pair falls either way with probability 1/2, so the p-value
    is the two-sided binomial tail ``min(1, 2 · P[X ≤ min(b, c)])`` with X ~ Bin(b + c, 1/2)
    (no discordant pair: p = 1).  Exact, because benchmark counts are small and the
    χ² approximation is poor below ~25 discordant pairs.  Integer arithmetic, no scipy.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts b = {b}, c = {c} must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2 ** n)


def cactus_curve(times: Sequence[float], verdicts: Sequence[str]) -> tuple[list[float], list[int]]:
    """(sorted times of the solved instances, 1..k): "k instances solved within t seconds".

    Solved = sat or unsat (VNN-COMP's count: a counterexample settles the property as much
    as a proof does); ``verdicts`` are the counted ones, so a late answer is already a
    timeout and never appears.
    """
    if len(times) != len(verdicts):
        raise ValueError(f"{len(times)} times for {len(verdicts)} verdicts")
    solved = sorted(float(t) for t, v in zip(times, verdicts, strict=True) if is_solved(Verdict(v)))
    return solved, list(range(1, len(solved) + 1))


def use_box(n_points: int) -> bool:
    """Whether a model's times are drawn as a box (``n_points ≥`` :data:`MIN_BOX_POINTS`) or only as points."""
    return n_points >= MIN_BOX_POINTS
