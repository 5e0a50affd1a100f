"""The click group, shared options and the error-to-exit-code bridge."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import click

from .._version import __version__
from ..errors import GraftError

__all__ = ["given_on_command_line", "main", "run_api", "echo_json", "GraftGroup", "progress_option", "PROGRESS_HELP",
           "THREADS_HELP"]

F = TypeVar("F", bound=Callable[..., Any])


class GraftGroup(click.Group):
    """A click group that turns GraftError into one line + exit code, and click usage errors into exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _terminate_as_interrupt():
                return super().invoke(ctx)
        except GraftError as exc:
            click.echo(f"graftonnx: error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("graftonnx: interrupted", err=True)
            sys.exit(130)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so atomic writes remove their temp files and journals stay whole.

    Why: a killed batch system job or ``timeout`` sends SIGTERM, whose default action stops
    the process at once and would leave ``.name.XXXX.tmp`` files beside the outputs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


#: One help text for every command's --progress/--no-progress (the flag means the same everywhere).
PROGRESS_HELP = ("Show progress bars (on a terminal; when stderr is not a terminal each bar prints one final "
                 "line instead).")
THREADS_HELP = ("Threads for torch and onnxruntime in this process and its workers. 0 = auto: the cores this "
                "process may use (CPU affinity and cgroup quota), at most OMP_NUM_THREADS when that is set.")


def given_on_command_line(names: Iterable[str]) -> list[str]:
    """The keyword names among ``names`` the user typed on this command line (not defaults)."""
    ctx = click.get_current_context()
    return [n for n in names if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]


def progress_option(fn: F) -> F:
    """``--progress/--no-progress`` with the shared default and help."""
    return click.option("--progress/--no-progress", default=True, show_default=True, help=PROGRESS_HELP)(fn)


@click.group(cls=GraftGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="graftonnx")
@click.option("--threads", type=click.IntRange(0), default=0, show_default=True, help=THREADS_HELP)
def main(threads: int) -> None:
    """graftonnx: graft linearity into ONNX classifiers so verifiers certify them faster.

    Typical flow: inspect → score → graft (or plan, then graft --plan) → finetune → export → verify → report.
    """
    from ..threads import pick_threads, set_threads

    warnings.showwarning = _one_line_warning
    set_threads(pick_threads(threads or None))  # before torch/onnxruntime size their pools from all cores


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """Warnings are for users here: one line, no source location."""
    click.echo(f"graftonnx: warning: {message}", err=True)


def run_api(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an API function; GraftErrors propagate to the group, which prints them."""
    return fn(*args, **kwargs)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))
