"""How sure each number of docs/results.md is: Wilson cells, difference intervals, McNemar pairs, paper-way times.

Why a module of pure functions over the rows JSON: with 12 instances a "+50 pts" VA gain
and a "met" verdict can be luck, so every VA / SA / RA cell carries its Wilson 95 %
interval, every target verdict says whether its interval decides it, and paired rows
(same instances) get an exact McNemar test.  The statistics themselves live in
:mod:`graftonnx.report.stats` (one of each); this module only applies them to the
benchmark's rows, so the tables, the sweep and the tests (on synthetic rows, no training)
share one arithmetic.

Conventions: accuracies are in % (as in the rows), a count is recovered as
``round(pct · n / 100)`` (exact: the rows store ``100 · k / n``); a difference of two
proportions gets Newcombe's hybrid score interval (Newcombe 1998, *Interval estimation for
the difference between independent proportions*, method 10), built from the two Wilson
intervals.  On paired rows (same images) it is conservative: positive correlation only
narrows the true interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graftonnx.report.stats import mcnemar_exact, wilson_interval

__all__ = ["count", "interval", "cell", "diff_interval", "verdict", "paired", "PaperTime", "paper_time",
           "ratio_interval", "p_text"]


def count(pct: float, n: int) -> int:
    """The success count behind a percentage of ``n``."""
    return int(round(pct * n / 100))


def interval(pct: float | None, n: int | None) -> tuple[float, float] | None:
    """Wilson 95 % interval of ``pct`` % of ``n``, in % (None without a value or an n)."""
    if pct is None or not n:
        return None
    lo, hi = wilson_interval(count(pct, n), n)
    return 100 * lo, 100 * hi


def cell(pct: float | None, n: int | None) -> str:
    """``58.3 [31.9, 80.7]``: the value and its Wilson interval (``–`` without a value)."""
    if pct is None:
        return "–"
    ci = interval(pct, n)
    return f"{pct:.1f}" if ci is None else f"{pct:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]"


def diff_interval(p1: float, n1: int | None, p2: float, n2: int | None) -> tuple[float, float] | None:
    """95 % interval of ``p1 − p2`` (percentage points), Newcombe's hybrid score method; None without n's."""
    a, b = interval(p1, n1), interval(p2, n2)
    if a is None or b is None:
        return None
    d = p1 - p2
    return d - math.hypot(p1 - a[0], b[1] - p2), d + math.hypot(a[1] - p1, p2 - b[0])


def verdict(value: float, ci: tuple[float, float] | None, threshold: float, at_least: bool, miss: str) -> str:
    """``**met**`` / ``**missed** (miss)`` and whether the interval ``ci`` of ``value`` decides it.

    ``at_least``: the target is ``value ≥ threshold`` (else ``value ≤ threshold``).  Decided:
    the whole interval lies on the verdict's side of the threshold.
    """
    met = value >= threshold if at_least else value <= threshold
    head = "**met**" if met else f"**missed** ({miss})"
    if ci is None:
        return f"{head} (no interval: n unknown)"
    lo, hi = ci
    inside_met = (lo >= threshold) if at_least else (hi <= threshold)
    inside_miss = (hi < threshold) if at_least else (lo > threshold)
    if met:
        return head + (", and the interval decides it" if inside_met else
                       ", but the interval does not exclude a miss")
    return head + (", and the interval decides it" if inside_miss else
                   ", but the interval does not exclude meeting it")


def paired(first: Sequence[str], second: Sequence[str]) -> tuple[int, int, float] | None:
    """(b, c, p): instances only ``first`` verifies, only ``second`` verifies, exact McNemar p.

    Both are per-instance verdict lists of the same benchmark (same order); pairs where either
    has no result (``missing``) are left out.  None when there is no pair.
    """
    pairs = [(x, y) for x, y in zip(first, second, strict=False) if "missing" not in (x, y)]
    if not pairs:
        return None
    b = sum(1 for x, y in pairs if x == "unsat" and y != "unsat")
    c = sum(1 for x, y in pairs if x != "unsat" and y == "unsat")
    return b, c, mcnemar_exact(b, c)


def p_text(pair: tuple[int, int, float] | None) -> str:
    """``p = 0.004 (9:0)``: the McNemar p-value and the discordant counts."""
    if pair is None:
        return "–"
    b, c, p = pair
    return f"p = {p:.2g} ({b}:{c})" if p >= 1e-4 else f"p < 1e-4 ({b}:{c})"


@dataclass(frozen=True)
class PaperTime:
    """The paper's time: mean over the instances correctly classified and not attacked that got an answer.

    ``population``: such instances with a result; ``timeouts`` of them ran out of time (a late
    answer already counts as a timeout) and are counted apart, as are ``errors``; ``mean``
    is over the other ``timed`` ones (None when none).
    """

    mean: float | None
    timed: int
    timeouts: int
    errors: int
    population: int
    times: tuple[float, ...] = ()


def paper_time(verdicts: Sequence[str], times: Sequence[float | None], clean: Sequence[bool]) -> PaperTime | None:
    """:class:`PaperTime` of one row's verifier column (``clean``: per image, correct and not attacked)."""
    if not verdicts or not clean:
        return None
    got = [(v, t) for v, t, ok in zip(verdicts, times, clean, strict=False) if ok and v != "missing"]
    timed = tuple(float(t) for v, t in got if v not in ("timeout", "error") and t is not None)
    timeouts = sum(1 for v, _ in got if v == "timeout")
    errors = sum(1 for v, _ in got if v == "error")
    mean = sum(timed) / len(timed) if timed else None
    return PaperTime(mean, len(timed), timeouts, errors, len(got), timed)


def ratio_interval(base: Sequence[float], grafted: Sequence[float], reps: int = 2000,
                   seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap 95 % interval of mean(base) / mean(grafted) (seeded: the page is reproducible).

    Why a bootstrap: a ratio of two means of skewed times has no closed-form interval worth
    trusting at these n; the two samples are resampled independently (their instance sets differ).
    """
    if len(base) < 2 or len(grafted) < 2:
        return None
    rng = np.random.default_rng(seed)
    b, g = np.asarray(base, dtype=float), np.asarray(grafted, dtype=float)
    mb = b[rng.integers(0, len(b), (reps, len(b)))].mean(axis=1)
    mg = g[rng.integers(0, len(g), (reps, len(g)))].mean(axis=1)
    ratios = mb / np.maximum(mg, 1e-12)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)
