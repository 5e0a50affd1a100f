"""Report figures: Wilson intervals, cactus data, box-or-points, --format/--dpi and the names report.md links.

A hand-made Report (no models, no bounds) keeps these fast; tests/test_report.py covers the
figures of a real benchmark end to end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from graftonnx.cli import main
from graftonnx.report import CSV_COLUMNS, Report, ReportOptions, plot_files, wilson_interval, write_report
from graftonnx.report.metrics import GraftInfo, ModelMetrics
from graftonnx.report.plots import bench_timeout
from graftonnx.report.stats import MIN_BOX_POINTS, cactus_curve, use_box
from graftonnx.report.unr import BoxUnr, LayerUnr
from graftonnx.verify.result import Verdict

V = Verdict


def _row(name: str, results: list[tuple[Verdict, float]], grafted: bool = False) -> ModelMetrics:
    verdicts = tuple(v for v, _ in results)
    times = tuple(t for _, t in results)
    unr = BoxUnr("ibp", 3, (LayerUnr("relu1", 10, 2.0 if not grafted else 0.5),))
    return ModelMetrics(f"onnx/{name}.onnx", name, "net", "fake", len(results),
                        *(verdicts.count(v) for v in (V.SAT, V.UNSAT, V.TIMEOUT, V.UNKNOWN, V.ERROR)), 0,
                        1.0, 1.0, 1.0, 1.0, times, verdicts, unr,
                        GraftInfo(True, 0.5, "instability") if grafted else GraftInfo(False))


@pytest.fixture()
def report(tmp_path: Path) -> Report:
    """A baseline with 6 results (a box) and a grafted net with 3 (points only), on a 30 s / 60 s bench."""
    bench = tmp_path / "bench"
    (bench / "onnx").mkdir(parents=True)
    (bench / "p.vnnlib").write_text("")
    for m in ("net", "net-graft50"):
        (bench / "onnx" / f"{m}.onnx").write_bytes(b"")
    (bench / "instances.csv").write_text("onnx/net.onnx,p.vnnlib,30\nonnx/net-graft50.onnx,p.vnnlib,60\n")
    base = _row("net", [(V.UNSAT, 0.5), (V.SAT, 2.0), (V.TIMEOUT, 30.0), (V.UNSAT, 1.0), (V.UNKNOWN, 3.0),
                        (V.UNSAT, 12.0)])
    graft = _row("net-graft50", [(V.UNSAT, 0.2), (V.UNSAT, 0.4), (V.ERROR, 0.1)], grafted=True)
    return Report(str(bench), ("j.jsonl",), ReportOptions(), None, (base, graft))


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 10, 0.0, 0.27753), (5, 10, 0.23659, 0.76341), (10, 10, 0.72247, 1.0), (1, 8, 0.02241, 0.47088)])
def test_wilson_known_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_formula_and_bad_input() -> None:
    k, n, z = 3, 7, 1.96  # the formula of the brief, spelled out
    c, h = (k + z * z / 2) / (n + z * z), z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    assert wilson_interval(k, n, z) == pytest.approx((c - h, c + h))
    for bad in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


def test_cactus_counts_sat_and_unsat_only() -> None:
    times = [5.0, 0.5, 30.0, 2.0, 0.1, 1.0]
    verdicts = ["unsat", "sat", "timeout", "unsat", "error", "unknown"]
    assert cactus_curve(times, verdicts) == ([0.5, 2.0, 5.0], [1, 2, 3])
    assert cactus_curve([], []) == ([], [])
    with pytest.raises(ValueError):
        cactus_curve([1.0], [])


def test_box_only_from_five_points() -> None:
    assert MIN_BOX_POINTS == 5
    assert [use_box(n) for n in (0, 1, 4, 5, 40)] == [False, False, False, True, True]


def test_bench_timeout_is_the_largest(report: Report, tmp_path: Path) -> None:
    assert bench_timeout(report.bench) == 60.0
    assert bench_timeout(tmp_path / "nowhere") is None


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_vector_formats_and_report_links(report: Report, tmp_path: Path, fmt: str) -> None:
    rep = Report(report.bench, report.journals, ReportOptions(format=fmt), None, report.rows)
    files = write_report(rep, tmp_path / "out")
    names = plot_files(fmt)
    assert names == (f"va.{fmt}", f"times.{fmt}", f"cactus.{fmt}", f"unr_layers.{fmt}")
    assert sorted(f.name for f in files) == sorted(["report.md", "report.csv", "report.json", *names])
    for name in names:
        data = (tmp_path / "out" / name).read_bytes()
        assert data.startswith(b"%PDF") if fmt == "pdf" else b"<svg" in data[:2000]
    md = (tmp_path / "out" / "report.md").read_text()
    for name in names:
        stem = name.split(".")[0]
        assert (f"[{stem}]({name})" in md) and (md.count(f"![{stem}]") == (fmt == "svg"))
    assert json.loads((tmp_path / "out" / "report.json").read_text())["plots"] == list(names)


def test_dpi_sets_png_size_and_ci_in_tables(report: Report, tmp_path: Path) -> None:
    shapes = {}
    for dpi in (60, 120):
        rep = Report(report.bench, report.journals, ReportOptions(dpi=dpi), None, report.rows)
        write_report(rep, tmp_path / f"d{dpi}")
        shapes[dpi] = imread(tmp_path / f"d{dpi}" / "cactus.png").shape
    ratio = shapes[120][1] / shapes[60][1]
    assert 1.8 < ratio < 2.2 and 1.8 < shapes[120][0] / shapes[60][0] < 2.2
    md = (tmp_path / "d60" / "report.md").read_text()
    assert "![cactus](cactus.png)" in md and "VA 95% CI" in md
    lo, hi = wilson_interval(3, 6)
    assert f"{100 * lo:.1f}%–{100 * hi:.1f}%" in md
    doc = json.loads((tmp_path / "d60" / "report.json").read_text())
    assert doc["models"][0]["va_ci"] == pytest.approx([lo, hi])
    head = (tmp_path / "d60" / "report.csv").read_text().splitlines()
    assert head[0].split(",") == list(CSV_COLUMNS) and {"va_ci_low", "va_ci_high"} <= set(CSV_COLUMNS)


def test_format_and_dpi_are_cli_flags() -> None:
    res = CliRunner().invoke(main, ["report", "--help"])
    assert res.exit_code == 0 and "--format [png|pdf|svg]" in res.output and "--dpi" in res.output
    with pytest.raises(Exception, match="dpi"):
        ReportOptions(dpi=10)
    with pytest.raises(Exception, match="format"):
        ReportOptions(format="gif")
