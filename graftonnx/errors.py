"""Errors that the CLI turns into one clear line and an exit code.

Why a small hierarchy: the CLI must never print a traceback for a user's mistake.
Every check on user input raises :class:`BadInput` (exit 2) with a message that says
*what* is wrong, *where* (file, node, flag) and *what to do*.  Internal failures that
are not the user's fault raise :class:`GraftFailure` (exit 1).
"""

from __future__ import annotations

__all__ = ["GraftError", "BadInput", "GraftFailure", "UnsupportedModel"]


class GraftError(Exception):
    """Base class: an error graftonnx reports as one line, with an exit code."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # Keep the message on one line: the CLI prints it verbatim.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self.args[0])


class BadInput(GraftError):
    """The user's input (file, flag, dataset) is wrong; exit code 2."""

    exit_code = 2


class UnsupportedModel(BadInput):
    """The ONNX graph uses something graftonnx cannot analyse or rewrite."""


class GraftFailure(GraftError):
    """Something failed that is not the user's fault; exit code 1."""

    exit_code = 1
