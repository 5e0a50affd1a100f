"""Bounds stage: sound pre-activation bounds of every ReLU over a batch of input boxes."""

from .base import BOUND_METHODS, BoundMethod, SiteBounds
from .crown import crown  # noqa: F401  (registers "crown")
from .ibp_ort import IntervalModel, IntervalRunner, build_interval_model, ibp, interval_runner
from .ibp_rules import IBP_RULES
from .stream import UnstableCounts, eps_box, iter_site_bounds, unstable_counts

__all__ = [
    "BOUND_METHODS", "BoundMethod", "SiteBounds",
    "IBP_RULES", "IntervalModel", "IntervalRunner", "build_interval_model", "ibp", "interval_runner",
    "UnstableCounts", "eps_box", "iter_site_bounds", "unstable_counts",
]
