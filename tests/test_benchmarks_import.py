"""Every benchmark script imports: a renamed helper must not leave a committed script that cannot start.

Why a test: the scripts run for minutes to hours outside CI, so a broken import used to be found
only by the next person running one (bench_speed.py imported a helper that had moved).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_imports(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    module = importlib.import_module(f"benchmarks.{path.stem}")
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
    sys.modules.pop(f"benchmarks.{path.stem}", None)
