"""Progress bars: live on a terminal, one final line in a log.

Why: a tqdm bar redraws itself with ``\\r`` many times a second; in a CI log or a batch
system's output file every redraw is kept, and a zoo run swamped the log.  :func:`bar` is
the one place bars are made: on a terminal it is a tqdm bar; when stderr is not a
terminal it stays silent and prints one line (``desc: n/total unit in t s``) when it
closes, even with an explicit ``--progress`` (the flag says "tell me how it went", the
terminal decides how).  ``--no-progress`` prints nothing.  :func:`set_enabled` turns bars
off for this process and its children (the ``zoo`` command's workers).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

__all__ = ["bar", "set_enabled", "enabled", "QuietBar", "ENV"]

#: "0" turns every bar off (inherited by worker processes).
ENV = "GRAFTONNX_PROGRESS"


def set_enabled(on: bool) -> None:
    """Bars on or off for this process and the processes it starts."""
    os.environ[ENV] = "1" if on else "0"


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


class QuietBar:
    """The tqdm calls graftonnx uses, counted silently; one summary line on stderr at close."""

    def __init__(self, iterable: Iterable[Any] | None = None, total: float | None = None, desc: str = "",
                 unit: str = "it", initial: float = 0) -> None:
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)  # type: ignore[arg-type]
        self.desc, self.unit, self.n = desc, unit, initial
        self.postfix = ""
        self._start = time.perf_counter()
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.n += 1
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kw: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}), **kw}.items())

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        of = f"/{self.total:g}" if self.total is not None else ""
        head = f"{self.desc}: " if self.desc else ""
        tail = f" ({self.postfix})" if self.postfix else ""
        sys.stderr.write(f"{head}{self.n:g}{of} {self.unit} in {time.perf_counter() - self._start:.1f} s{tail}\n")
        sys.stderr.flush()

    def __enter__(self) -> QuietBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(iterable: Iterable[Any] | None = None, *, progress: bool = True, total: float | None = None,
        desc: str = "", unit: str = "it", initial: float = 0, **kw: Any) -> Any:
    """A progress bar over ``iterable`` (or a manual one with ``total``): tqdm, a :class:`QuietBar`, or silent."""
    on = progress and enabled()
    if on and not _is_tty(sys.stderr):
        return QuietBar(iterable, total, desc, unit, initial)
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=not on, **kw)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
