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


def test_demo_is_an_engine_pipeline_and_resumes(tmp_path):
    """The demo's steps are journaled; a second run into the same folder reuses all of them."""
    out = tmp_path / "demo"
    args = ["demo", "-o", str(out), "--epochs", "1", "--no-progress", "--json"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    lines = (out / "journal.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == ["train", "graft", "finetune", "measure"]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and (out / "journal.jsonl").read_text().splitlines() == lines
    assert json.loads(again.output)["rows"] == json.loads(first.output)["rows"]
