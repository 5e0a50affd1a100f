"""One small registry kind for everything pluggable.

Bound methods, importance criteria, verifier backends, dataset formats and ONNX→torch
converters are all looked up by a string key.  Registering happens with a decorator
next to the implementation, so adding a new entry touches the file that defines it
(plus, at most, the package ``__init__`` that imports it).  Duplicate keys are an
error: two silently competing implementations are worse than a crash at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import BadInput

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping from string keys to implementations, filled by a decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, *keys: str) -> Callable[[T], T]:
        """Decorator: ``@REG.register("ibp")`` registers the decorated object under each key."""
        if not keys:
            raise TypeError("register() needs at least one key")

        def deco(obj: T) -> T:
            for key in keys:
                if key in self._items:
                    raise ValueError(f"{self.kind} {key!r} is already registered")
                self._items[key] = obj
            return obj

        return deco

    def get(self, key: str) -> T:
        """Look ``key`` up; an unknown key is the user's mistake, so it raises BadInput."""
        try:
            return self._items[key]
        except KeyError:
            choices = ", ".join(sorted(self._items)) or "none registered"
            raise BadInput(f"unknown {self.kind} {key!r}: choose one of {choices}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[str]:
        return sorted(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.keys()})"
