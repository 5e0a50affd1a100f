"""Carrying a benchmark run across sittings (benchmarks/paper/carry.py).

What must hold: a verdict is reused only while the model and property files it was
verified on hash the same (a rebuilt model that came out different is verified again);
an unfinished job's journals round-trip through the committed store into a fresh work
folder; a finished job is stored as rows and replaces its progress file; anything stored
under other settings is ignored.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.paper import carry  # noqa: E402
from benchmarks.paper.config import MODES  # noqa: E402

__all__: list[str] = []


def _bench(root: Path, models: tuple[str, ...] = ("a", "b")) -> Path:
    bench = root / "bench"
    (bench / "onnx").mkdir(parents=True)
    (bench / "vnnlib").mkdir()
    (bench / "vnnlib" / "p.vnnlib").write_text("(declare-const X_0 Real)\n")
    rows = []
    for m in models:
        (bench / "onnx" / f"{m}.onnx").write_bytes(f"model {m}".encode())
        rows.append(f"onnx/{m}.onnx,vnnlib/p.vnnlib,10")
    (bench / "instances.csv").write_text("\n".join(rows) + "\n")
    return bench


def _line(model: str) -> str:
    return json.dumps({"instance": f"onnx/{model}.onnx::vnnlib/p.vnnlib", "model": f"onnx/{model}.onnx",
                       "vnnlib": "vnnlib/p.vnnlib", "backend": "lirpa", "verdict": "unsat", "seconds": 0.1}) + "\n"


def test_drop_stale_keeps_only_lines_whose_files_hash_the_same(tmp_path: Path) -> None:
    bench, journal = _bench(tmp_path), tmp_path / "lirpa.jsonl"
    journal.write_text(_line("a") + _line("b") + _line("gone"))
    assert carry.drop_stale(bench, journal) == 1  # no hash record yet: trusted, but only listed instances stay
    assert journal.read_text() == _line("a") + _line("b")
    side = json.loads((tmp_path / f"lirpa{carry.SIDECAR}").read_text())
    assert set(side) == {"onnx/a.onnx", "onnx/b.onnx", "vnnlib/p.vnnlib"}
    assert carry.drop_stale(bench, journal) == 0  # nothing changed: nothing dropped
    (bench / "onnx" / "a.onnx").write_bytes(b"rebuilt, different")
    assert carry.drop_stale(bench, journal) == 1
    assert journal.read_text() == _line("b")
    (bench / "vnnlib" / "p.vnnlib").write_text("(declare-const X_0 Real)\n; changed\n")
    assert carry.drop_stale(bench, journal) == 1 and journal.read_text() == ""


def _job_folder(out: Path, key: str) -> Path:
    folder = out / key
    bench = _bench(folder)
    (folder / "lirpa.jsonl").write_text(_line("a"))
    carry.drop_stale(bench, folder / "lirpa.jsonl")
    (folder / "lirpa.jsonl").write_text(_line("a") + _line("b"))  # verified after the record was written
    return folder


def test_progress_round_trips_into_a_fresh_work_folder(tmp_path: Path) -> None:
    mode = MODES["quick"]
    job = mode.jobs[0]
    _job_folder(tmp_path / "out", job.key)
    store = tmp_path / "store"
    said = carry.save(tmp_path / "out", store, [job], mode, {"date": "d", "seconds": 5.0, "jobs": [job.key]})
    assert said and "lirpa.jsonl 2 results" in said[0]
    assert (store / f"{job.key}.progress.json.gz").is_file()
    fresh = tmp_path / "fresh"
    assert carry.restore(fresh, store, [job], mode) == {}  # nothing finished
    assert (fresh / job.key / "lirpa.jsonl").read_text() == _line("a") + _line("b")
    assert (fresh / job.key / f"lirpa{carry.SIDECAR}").is_file()
    assert carry.progress(tmp_path / "nowhere", store, [job]) == {job.key: "lirpa.jsonl 2 results"}
    # the next sitting rebuilt model a differently: its verdict goes, b's stays
    bench = _bench(fresh / "rebuilt")
    (bench / "onnx" / "a.onnx").write_bytes(b"another build")
    assert carry.drop_stale(bench, fresh / job.key / "lirpa.jsonl") == 1
    # a second save appends its sitting
    carry.save(tmp_path / "out", store, [job], mode, {"date": "e", "seconds": 1.0, "jobs": [job.key]})
    data = carry._stored(store / f"{job.key}.progress.json.gz")
    assert [s["date"] for s in data["carry"]["sittings"]] == ["d", "e"]


def test_finished_rows_replace_progress_and_other_settings_are_ignored(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    mode = MODES["quick"]
    job = mode.jobs[0]
    folder, store = _job_folder(tmp_path / "out", job.key), tmp_path / "store"
    carry.save(tmp_path / "out", store, [job], mode, {"date": "d", "seconds": 5.0, "jobs": [job.key]})
    ident = carry.identity(job, mode)
    rows = {"job": ident["job"], "rows": [{"variant": "baseline", "n_nsat": 2, "complete_backend": ident["complete"]}]}
    (folder / "rows.json").write_text(json.dumps(rows))
    carry.save(tmp_path / "out", store, [job], mode, {"date": "e", "seconds": 9.0, "jobs": [job.key]})
    assert not (store / f"{job.key}.progress.json.gz").exists()
    done = carry.restore(tmp_path / "fresh", store, [job], mode)
    assert done[job.key]["rows"] == rows["rows"] and [s["date"] for s in done[job.key]["sittings"]] == ["d", "e"]
    # another row set, or another budget: the stored rows are not this job's
    other_job = replace(job, ratios=(0.25,))
    assert carry.restore(tmp_path / "fresh2", store, [other_job], mode) == {}
    other_mode = replace(mode, budget=replace(mode.budget, n_lirpa=13))
    assert carry.restore(tmp_path / "fresh3", store, [job], other_mode) == {}
    assert "made with other settings: ignored" in capsys.readouterr().err
    # a rows.json of another row set in the work folder is not "finished" either
    assert carry.finished(folder, carry.identity(other_job, mode)) is None


def _paper(tmp_path: Path, *args: str) -> dict:
    import subprocess

    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paper" / "run.py"), "--table1", *args,
                           "--store", str(tmp_path / "store"), "--out", str(tmp_path / "out"), "--docs",
                           str(tmp_path / "docs")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["paper-table1.json", "results-table1.md"]
    return json.loads((tmp_path / "docs" / "paper-table1.json").read_text())


def test_render_only_lists_every_job_and_never_touches_the_repo(tmp_path: Path) -> None:
    data = _paper(tmp_path, "--render-only")
    assert data["jobs"] == [] and set(data["pending"]) == {j.key for j in MODES["table1"].jobs}
    assert "cnn-eps0.1 (nothing verified yet)" in (tmp_path / "docs" / "results-table1.md").read_text()
    assert not (tmp_path / "store").exists()  # rendering saves nothing


def test_save_only_saves_a_killed_runs_verdicts(tmp_path: Path) -> None:
    _job_folder(tmp_path / "out", "mlp-eps0.1")
    data = _paper(tmp_path, "--save-only")
    assert data["pending"]["mlp-eps0.1"] == "lirpa.jsonl 2 results"
    stored = carry._stored(tmp_path / "store" / "mlp-eps0.1.progress.json.gz")
    assert stored is not None and stored["carry"]["sittings"][0]["seconds"] is None
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["mlp-eps0.1.progress.json.gz"]


def test_committed_carry_files_match_the_current_configuration() -> None:
    """Hours of committed verdicts must not be silently orphaned by a config edit: change both together."""
    mode = MODES["table1"]
    store = ROOT / "benchmarks" / "results" / "paper-table1"
    jobs = {j.key: j for j in mode.jobs}
    for path in sorted(store.glob("*.json*")) if store.is_dir() else []:
        key = path.name.split(".rows.json")[0].split(".progress.json.gz")[0]
        assert key in jobs, f"{path.name}: no such table1 job"
        ident = carry._stored(path)["carry"]["identity"]  # type: ignore[index]
        want = carry.identity(jobs[key], mode)
        assert ident["fingerprint"] == want["fingerprint"] and ident["job"] == want["job"], path.name


def test_a_job_of_several_sittings_says_so() -> None:
    from benchmarks.paper.tables import _sittings

    assert _sittings({"sittings": [{"seconds": 5}]}) == ""
    text = _sittings({"sittings": [{"seconds": 5, "machine": "A, 2 cores"}, {"seconds": 7, "machine": "B, 2 cores"}]})
    assert "of 2 sittings (12 s of wall time in all" in text and "on A, 2 cores / B, 2 cores)" in text


def test_an_interrupted_sitting_saves_and_renders_before_it_stops(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.paper import run as paper_run

    def cut_short(jobs: list, mode: object, out: Path) -> list:
        _job_folder(out, jobs[0].key)  # some verdicts journaled, then SIGTERM (run.py turns it into this)
        raise KeyboardInterrupt

    monkeypatch.setattr(paper_run, "run_jobs", cut_short)
    with pytest.raises(KeyboardInterrupt):
        paper_run.run("table1", tmp_path / "out", tmp_path / "docs", only=("mlp-eps0.1",), store=tmp_path / "store")
    assert (tmp_path / "store" / "mlp-eps0.1.progress.json.gz").is_file()
    assert "mlp-eps0.1 (lirpa.jsonl 2 results)" in (tmp_path / "docs" / "results-table1.md").read_text()
