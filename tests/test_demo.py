"""The README's first command runs the embedded default job; check what it reports."""

from __future__ import annotations

import json

from click.testing import CliRunner

from graftonnx.cli import main


def test_demo_runs_and_grafting_lowers_unr(tmp_path):
    res = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "demo"), "--epochs", "4", "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    base, grafted, tuned = report["rows"]
    assert grafted["unr_ibp"] < base["unr_ibp"] and tuned["unr_ibp"] < base["unr_ibp"]
    assert grafted["unr_crown"] <= grafted["unr_ibp"] + 1e-9  # CROWN is at least as tight as IBP
    for row in report["rows"]:
        assert row["ra"] <= row["sa"]
    assert {p.name for p in (tmp_path / "demo").iterdir()} >= {"base.onnx", "grafted.onnx", "tuned.onnx"}
    assert "baseline" in res.output and "UNR" in res.output
