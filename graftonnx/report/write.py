"""Write a whole report folder at once: tables and plots built in a temp folder, then renamed.

Why a folder rename: the report is several files that must agree with each other; a
crash mid-way (or a plot that fails) must leave either the previous report or nothing,
never a new ``report.md`` beside last week's PNGs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .._io import install_folder
from ..errors import BadInput
from .metrics import Report
from .plots import write_plots
from .tables import write_tables

__all__ = ["check_report_output", "write_report"]


def check_report_output(out: str | os.PathLike[str], force: bool = False) -> Path:
    """Fail early (before any bound or attack runs) when ``out`` cannot become the report folder."""
    p = Path(out)
    if not p.parent.is_dir():
        raise BadInput(f"parent folder {p.parent} of the report does not exist: create it first or choose another -o")
    if p.exists() and not p.is_dir():
        raise BadInput(f"report output {p} exists and is not a folder: choose another -o")
    if p.exists() and not force:
        raise BadInput(f"report folder {p} already exists: pass --force to replace it, or choose another -o")
    return p


def write_report(report: Report, out: str | os.PathLike[str], force: bool = False, plots: bool = True
                 ) -> list[Path]:
    """Write ``report.md``/``.csv``/``.json`` (and the PNGs) as folder ``out``; return the final paths."""
    root = check_report_output(out, force)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        pngs = write_plots(report, tmp) if plots else []
        files = write_tables(report, tmp, [p.name for p in pngs]) + pngs
        os.chmod(tmp, 0o755)
        install_folder(tmp, root, "report folder")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [root / f.name for f in files]
