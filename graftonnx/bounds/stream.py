"""Streaming bounds over many images: ε-boxes, per-batch bounds, unstable-neuron counts.

Why streaming: scoring and UNR statistics need bounds for 1000+ images, but only
per-neuron *counts* survive; the bounds of one batch (for resnet_2b about 50 KB per
image and side) are reduced and dropped before the next batch is computed, so memory
stays flat however many images are scored.  ``x`` may be a memory-mapped array.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import BadInput
from ..model.info import ReluSite
from ..model.ops import SMOOTH_FUNCTIONS
from .base import BOUND_METHODS, SiteBounds

__all__ = ["eps_box", "iter_site_bounds", "unstable_counts", "UnstableCounts", "chord_gap", "smooth_looseness"]


def _outward(exact: np.ndarray, down: bool) -> np.ndarray:
    """float32 rounding of ``exact`` (float64) that never moves inside the box."""
    f = exact.astype(np.float32)
    np.nextafter(f, np.float32(-np.inf if down else np.inf), out=f, where=(f > exact) if down else (f < exact))
    return f


def eps_box(x: np.ndarray, eps: float, input_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The L∞ ball of radius ``eps`` around ``x`` (raw pixel space), clipped to ``input_range``.

    Rounded outwards to float32, so the box always contains the real ε-ball; the clip keeps
    it inside the valid pixel range (as the verifiers do).  For float32 images the radius is
    widened by one float32 ulp of the largest magnitude involved (about 1e-7 on [0, 1]),
    which covers the rounding of ``x ∓ ε`` in float32: one cheap pass per side.
    """
    if not np.isfinite(eps) or eps < 0:
        raise BadInput(f"eps {eps} is not a finite non-negative number: give eps >= 0 on the raw pixel scale")
    a, z = np.float32(input_range[0]), np.float32(input_range[1])
    if not a <= z:
        raise BadInput(f"input range {input_range} is empty: give (low, high) with low <= high")
    if eps == 0:
        point = np.clip(np.asarray(x, dtype=np.float32), a, z)
        return point, point.copy()
    if np.asarray(x).dtype == np.float32:
        x32 = np.asarray(x)
        big = 2.0 * (float(np.abs(x32).max(initial=0.0)) + eps) + 1e-30
        wide = eps + float(np.spacing(np.float32(big)))
        e = np.float32(wide)
        e = e if float(e) >= wide else np.nextafter(e, np.float32(np.inf))
        lo, hi = x32 - e, x32 + e
    else:
        x64 = np.asarray(x, dtype=np.float64)
        lo, hi = _outward(x64 - eps, down=True), _outward(x64 + eps, down=False)
    return np.clip(lo, a, z, out=lo), np.clip(hi, a, z, out=hi)


def iter_site_bounds(method: str, model: onnx.ModelProto, x: np.ndarray, eps: float,
                     input_range: tuple[float, float], sites: Sequence[ReluSite],
                     batch_size: int = 256) -> Iterator[tuple[slice, dict[str, SiteBounds]]]:
    """Yield ``(slice of x, {site.name: SiteBounds})`` batch by batch over the ε-boxes of ``x``.

    ``model`` takes raw pixels (normalisation already folded in); ``method`` is a key of
    :data:`BOUND_METHODS` (``"ibp"``, ``"crown"``...).
    """
    fn = BOUND_METHODS.get(method)
    if batch_size < 1:
        raise BadInput(f"batch size {batch_size} must be at least 1")
    for start in range(0, len(x), batch_size):
        sl = slice(start, min(start + batch_size, len(x)))
        lo, hi = eps_box(x[sl], eps, input_range)
        yield sl, (fn(model, lo, hi, sites) if sites else {})  # no sites (a pure Sigmoid net's UNR): no bounding


@dataclass(frozen=True, eq=False)
class UnstableCounts:
    """Unstable-ReLU statistics over ``n_images`` ε-boxes.

    ``per_neuron[site]``: int array of the site's shape, how many images leave that neuron
    unstable (l < 0 < u).  ``per_image[site]``: int array (n_images,), unstable neurons of
    that site per image.  ``sizes[site]``: neurons in the site.
    """

    n_images: int
    per_neuron: dict[str, np.ndarray]
    per_image: dict[str, np.ndarray]
    sizes: dict[str, int]

    @property
    def image_totals(self) -> np.ndarray:
        """Unstable neurons per image summed over all sites, shape (n_images,)."""
        return sum((v for v in self.per_image.values()), np.zeros(self.n_images, dtype=np.int64))

    @property
    def unr(self) -> float:
        """Unstable neuron ratio: mean over images of unstable / all ReLU neurons."""
        total = sum(self.sizes.values())
        return float(self.image_totals.mean() / total) if self.n_images and total else 0.0


def unstable_counts(method: str, model: onnx.ModelProto, x: np.ndarray, eps: float,
                    input_range: tuple[float, float], sites: Sequence[ReluSite],
                    batch_size: int = 256, on_batch: Callable[[int], object] | None = None) -> UnstableCounts:
    """Count unstable neurons per neuron and per image, streaming the bounds batch by batch.

    ``on_batch(n)`` is called after each batch of ``n`` images (e.g. a progress bar's update).
    """
    n = len(x)
    per_neuron = {s.name: np.zeros(s.shape, dtype=np.int64) for s in sites}
    per_image = {s.name: np.zeros(n, dtype=np.int64) for s in sites}
    for sl, bounds in iter_site_bounds(method, model, x, eps, input_range, sites, batch_size):
        for s in sites:
            u = bounds[s.name].unstable()
            per_neuron[s.name] += u.sum(axis=0)
            per_image[s.name][sl] = u.reshape(len(u), -1).sum(axis=1)
        if on_batch is not None:
            on_batch(sl.stop - sl.start)
    return UnstableCounts(n, per_neuron, per_image, {s.name: s.size for s in sites})


def chord_gap(op: str, lower: np.ndarray, upper: np.ndarray, points: int = 17) -> np.ndarray:
    """How loose a linear relaxation of ``op`` (Sigmoid/Tanh) over ``[lower, upper]`` must be, elementwise.

    The largest vertical distance between the activation and its chord through the ends,
    taken over ``points`` evenly spaced points: on a convex or concave stretch it is exactly
    the gap between the best upper and lower lines (chord and parallel tangent), 0 where the
    interval is a point or the activation is linear over it.  A score, not a bound.
    """
    f = SMOOTH_FUNCTIONS[op]
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    fl, fh = f(lo), f(hi)
    gap = np.zeros(lo.shape)
    for t in np.linspace(0.0, 1.0, points)[1:-1]:
        gap = np.maximum(gap, np.abs(f(lo + t * (hi - lo)) - (fl + t * (fh - fl))))
    return gap


def smooth_looseness(method: str, model: onnx.ModelProto, x: np.ndarray, eps: float,
                     input_range: tuple[float, float], sites: Sequence[ReluSite], batch_size: int = 256,
                     on_batch: Callable[[int], object] | None = None) -> dict[str, np.ndarray]:
    """Per Sigmoid/Tanh site, per neuron (flat): the :func:`chord_gap` of its pre-activation bounds, summed
    over the ε-boxes of ``x`` (divide by ``len(x)`` for the mean); streamed like :func:`unstable_counts`."""
    total = {s.name: np.zeros(s.size) for s in sites}
    if not sites:
        return total
    for sl, bounds in iter_site_bounds(method, model, x, eps, input_range, sites, batch_size):
        for s in sites:
            b = bounds[s.name]
            total[s.name] += chord_gap(s.op, b.lower, b.upper).reshape(len(b.lower), -1).sum(axis=0)
        if on_batch is not None:
            on_batch(sl.stop - sl.start)
    return total
