"""``graftonnx`` / ``python -m graftonnx``: the command line, interruptible from its first instruction.

Why a separate entry point: importing the command modules pulls in onnx, onnxruntime and
torch (seconds); a Ctrl-C or SIGTERM in that window used to print a Python traceback.
Here both signals mean "stop quietly" from the start, and a KeyboardInterrupt anywhere
before or after the command's own handler ends as one line and exit code 130.  Once the
command has returned (its outputs are complete), both signals are ignored: Python resets its
handlers to the default while it shuts down, and a Ctrl-C landing then used to kill a
finished run silently (exit −2, nothing printed).
"""

from __future__ import annotations

import signal
import sys
from typing import Any

__all__ = ["run"]


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run() -> None:
    """Install the signal handling, import the CLI, run it."""
    signal.signal(signal.SIGTERM, _stop)
    try:
        from .cli import main

        main()
    except KeyboardInterrupt:
        print("graftonnx: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:  # done (or exiting): a late signal must not turn the exit status into a kill
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    run()
