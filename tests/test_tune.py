"""``graftonnx tune``: the choice rule, determinism for a seed, resume, the budget, and clean refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import model_path

from graftonnx.cli import main
from graftonnx.tune import choose

NET = str(model_path("mnist-net_256x2"))
ARGS = ["--data", "mnist5k", "--n", "400", "--eps", "0.02", "--candidate-ratios", "0.3,0.6,0.9", "--candidate-epochs",
        "1", "--n-verify", "6", "--va-method", "crown", "--no-progress"]


def _tune(out: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["tune", NET, "-o", str(out), *ARGS, *extra], env={"TQDM_DISABLE": "1"})
    return res.exit_code, res.output


def _untimed(summary: dict) -> dict:
    return summary | {"rows": [{k: v for k, v in r.items() if k != "bound_seconds"} for r in summary["rows"]]}


def _row(name: str, sa: float, va: float, ratio: float, schedule: str = "total", status: str = "measured") -> dict:
    return {"name": name, "sa": sa, "va": va, "ratio": ratio, "schedule": schedule, "status": status}


def test_choice_is_the_best_feasible_va_with_deterministic_ties() -> None:
    rows = [_row("original", 99.0, 10.0, 0.0, "-"), _row("total@0.3", 98.0, 40.0, 0.3),
            _row("total@0.6", 95.0, 90.0, 0.6, status="over SA limit"), _row("target@0.3", 98.5, 40.0, 0.3, "target"),
            _row("target@0.5", 98.5, 40.0, 0.5, "target"), _row("total@0.9", 0, 0, 0.9, status="skipped")]
    assert choose(rows, ("total", "target")) == "target@0.3"  # VA tie → higher SA → smaller ratio
    rows[3]["sa"] = rows[4]["sa"] = rows[1]["sa"]
    assert choose(rows, ("total", "target")) == "total@0.3"  # full tie → the schedule listed first
    assert choose(rows, ("target", "total")) == "target@0.3"
    assert choose(rows[:1] + rows[2:3], ("total",)) == "original"  # nothing feasible grafted: the original


@pytest.mark.slow
def test_tune_chooses_within_the_constraint_deterministically_and_resumes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    code, out = _tune(a)
    assert code == 0, out
    summary = json.loads((a / "tune.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    assert len(rows) == 1 + 2 * 3 and summary["untried"] == 0
    chosen = rows[summary["chosen"]]
    assert chosen["sa_drop"] <= 1.5 and chosen["va"] == max(r["va"] for r in rows.values()
                                                            if r["status"] == "measured")
    source = a / chosen["model"] if "model" in chosen else Path(NET)
    assert (a / "chosen.onnx").read_bytes() == source.read_bytes()
    assert (a / "chosen.plan.json").is_file() == ("plan" in chosen)
    for name in ("tune.md", "tune.csv"):
        assert summary["chosen"] in (a / name).read_text()
    assert (a / "tune.png").read_bytes()[:4] == b"\x89PNG"
    journal = (a / "journal.jsonl").read_text()
    assert _tune(a)[0] == 0 and (a / "journal.jsonl").read_text() == journal  # a rerun measures nothing again
    assert _tune(b)[0] == 0  # another folder, the same seed: the same table and choice (times aside)
    assert _untimed(json.loads((b / "tune.json").read_text())) == _untimed(summary)


@pytest.mark.slow
def test_budget_stops_between_candidates_and_a_rerun_continues(tmp_path: Path) -> None:
    out = tmp_path / "t"
    code, text = _tune(out, "--budget-minutes", "0", "--candidate-schedules", "target")
    assert code == 0 and "3 candidate(s) untried" in text, text
    first = json.loads((out / "tune.json").read_text())
    assert first["chosen"] == "original" and first["untried"] == 3  # only the original was measured
    code, text = _tune(out, "--candidate-schedules", "target")  # the budget is a runtime knob: same run
    assert code == 0 and "untried" not in text, text
    assert json.loads((out / "tune.json").read_text())["untried"] == 0


@pytest.mark.slow
def test_candidates_over_the_limit_end_the_sweep(tmp_path: Path) -> None:
    """init const without finetuning wrecks this net's SA: after --patience such candidates, the rest are skipped."""
    out = tmp_path / "t"
    code, text = _tune(out, "--init", "const", "--candidate-epochs", "0", "--patience", "2",
                       "--candidate-schedules", "target", "--max-sa-drop", "0")
    assert code == 0, text
    status = [r["status"] for r in json.loads((out / "tune.json").read_text())["rows"]]
    assert status == ["measured", "over SA limit", "over SA limit", "skipped"]


@pytest.mark.parametrize("extra, needle", [
    (["--candidate-ratios", "0.5,1.5"], "--candidate-ratios"),
    (["--candidate-schedules", "total,often"], "'often' is not a schedule"),
    (["--heldout", "0.95"], "--heldout"),
    (["--va-method", "exact"], "exact"),
])
def test_bad_settings_are_one_line_and_write_nothing(tmp_path: Path, extra: list[str], needle: str) -> None:
    out = tmp_path / "t"
    code, text = _tune(out, *extra)
    assert code == 2 and needle in text and "Traceback" not in text, text
    assert not out.exists()


def test_unlabelled_data_is_refused(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["tune", NET, "-o", str(tmp_path / "t"), "--eps", "0.02"])
    assert res.exit_code == 2 and "pass --data" in res.output
