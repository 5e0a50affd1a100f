"""Bounds stage: sound pre-activation bounds of every ReLU over a batch of input boxes."""

from .base import BOUND_METHODS, BoundMethod, SiteBounds

__all__ = ["BOUND_METHODS", "BoundMethod", "SiteBounds"]
