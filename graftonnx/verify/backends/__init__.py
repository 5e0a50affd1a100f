"""Verifier backends; importing this package registers lirpa, neuralsat and abcrown in BACKENDS."""

from . import abcrown, lirpa, neuralsat  # noqa: F401  (registration side effect)
from .base import BACKENDS, Backend, backend_options, make_backend, option_classes

__all__ = ["BACKENDS", "Backend", "backend_options", "make_backend", "option_classes"]
