"""Issue 13, classes 1 and 6: timeouts are enforced, journals are repaired on resume, zoo's exit code.

Why these tests: an answer after the timeout must count as a ``timeout`` (VNN-COMP's rule,
which every time figure in docs/ relies on), a hung verifier must be killed near
timeout + grace, a resumed run must leave a journal that jq/pandas can read (one warning per
dropped line), and a zoo run where every model failed must not exit 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result as CliResult

from graftonnx._io import append_line, repair_lines
from graftonnx.cli import main
from graftonnx.engine.journal import Journal as RunJournal
from graftonnx.engine.journal import StepRecord
from graftonnx.report.metrics import build_report, counted_verdict
from graftonnx.verify.journal import Journal
from graftonnx.verify.result import Result, Verdict
from graftonnx.verify.runner import late_as_timeout

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
sys.path.insert(0, str(CORPUS))
from make_corpus import GOOD_VNNLIB  # noqa: E402

KEY = "onnx/tiny_ok.onnx::vnnlib/p.vnnlib"
TIMEOUT, GRACE = 1.0, 3.0


def _invoke(args: list[str]) -> CliResult:
    return CliRunner().invoke(main, args, env={"TQDM_DISABLE": "1"})


def _lines(res: CliResult, kind: str) -> list[str]:
    return [x for x in re.split(r"[\r\n]", res.stderr) if x.startswith(f"graftonnx: {kind}:")]


def _no_traceback(res: CliResult) -> None:
    assert "Traceback" not in res.stderr + res.output, res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    """A one-instance VNN-COMP folder: the corpus's tiny net and its good property, timeout 1 s."""
    root = tmp_path / "bench"
    (root / "onnx").mkdir(parents=True)
    (root / "vnnlib").mkdir()
    shutil.copy(CORPUS / "tiny_ok.onnx", root / "onnx" / "tiny_ok.onnx")
    (root / "vnnlib" / "p.vnnlib").write_text(GOOD_VNNLIB)
    (root / "instances.csv").write_text(f"onnx/tiny_ok.onnx,vnnlib/p.vnnlib,{TIMEOUT:g}\n")
    return root


# --- class 1: timeouts -------------------------------------------------------------------------

@pytest.mark.parametrize("verdict, seconds, want, late", [
    ("unsat", 1.5, "timeout", "unsat"),     # the case the issue saw: a solved answer after the limit
    ("sat", 1.5, "timeout", "sat"),
    ("unknown", 1.5, "timeout", "unknown"),
    ("error", 1.5, "error", None),          # a late crash stays visible as an error
    ("timeout", 9.0, "timeout", None),      # a kill is a timeout, not a late answer
    ("unsat", 0.5, "unsat", None),          # on time: unchanged
])
def test_late_answer_is_timeout_with_late_verdict(verdict: str, seconds: float, want: str, late: str | None,
                                                  tmp_path: Path) -> None:
    r = late_as_timeout(Result("i", "m", "v", "fake", verdict, seconds, message="bounds"), TIMEOUT)
    assert (r.verdict, r.late_verdict) == (want, late)
    assert r.counterexample is None and (late is None or f"answered {late} after {seconds:.1f} s" in r.message)
    j = Journal(tmp_path / "r.jsonl")
    j.append(r)
    line = json.loads(j.path.read_text())
    assert ("late_verdict" in line) == (late is not None)  # None leaves the line as it always was
    assert j.load()[("i", "fake")] == r.replace(seconds=round(seconds, 4))


def _fake_neuralsat(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A NeuralSAT folder whose main.py is ``body``, run directly (no torch-importing launcher: fast)."""
    from graftonnx.verify.backends.neuralsat import NeuralsatBackend

    root = tmp_path / "fake_ns"
    (root / "verifier").mkdir(parents=True)
    (root / "main.py").write_text(textwrap.dedent(body))
    monkeypatch.setenv("NEURALSAT_PATH", str(root))
    monkeypatch.setattr(NeuralsatBackend, "from_options", classmethod(lambda cls, o: cls(o.device, grace_s=GRACE)))
    real = NeuralsatBackend.command
    monkeypatch.setattr(NeuralsatBackend, "command", lambda self, *a: [sys.executable, *real(self, *a)[2:]])


LATE = """
import sys, time
time.sleep(1.6)
out = sys.argv[sys.argv.index('--result_file') + 1]
open(out, 'w').write('{v},1.6\\n')
print('{v},1.6', flush=True)
"""


@pytest.mark.parametrize("body, late", [
    (LATE.format(v="unsat"), "unsat"),        # answers inside the grace, after the timeout
    (LATE.format(v="unknown"), "unknown"),
    ("import time\nprint('started', flush=True)\ntime.sleep(600)\n", None),  # hangs: killed at timeout + grace
], ids=["late-unsat", "late-unknown", "hang"])
def test_late_or_hung_neuralsat(bench: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                late: str | None) -> None:
    _fake_neuralsat(tmp_path, body, monkeypatch)
    journal = tmp_path / "r.jsonl"
    t0 = time.monotonic()
    res = _invoke(["verify", str(bench), "--backend", "neuralsat", "--results", str(journal), "--no-progress"])
    wall = time.monotonic() - t0
    assert res.exit_code == 0 and not _lines(res, "error"), res.stderr
    _no_traceback(res)
    (line,) = [json.loads(x) for x in journal.read_text().splitlines()]
    assert line["verdict"] == "timeout" and line.get("late_verdict") == late, line
    assert line["seconds"] > TIMEOUT and wall < TIMEOUT + GRACE + 10  # killed near the limit, not at 30 s
    if late is None:
        assert "killed after" in line["message"]


def test_lirpa_overrun_is_timeout(bench: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process lirpa cannot be killed: a bound pass that overruns still counts as a timeout."""
    import graftonnx.verify.backends.lirpa as lirpa

    real = lirpa.margin_lower_bounds

    def slow(*a: object) -> object:
        time.sleep(TIMEOUT + 0.2)
        return real(*a) * 0 + 1.0  # "proved", but too late

    monkeypatch.setattr(lirpa, "margin_lower_bounds", slow)
    journal = tmp_path / "r.jsonl"
    res = _invoke(["verify", str(bench), "--backend", "lirpa", "--results", str(journal), "--no-progress"])
    assert res.exit_code == 0, res.stderr
    _no_traceback(res)
    (line,) = [json.loads(x) for x in journal.read_text().splitlines()]
    assert (line["verdict"], line["late_verdict"]) == ("timeout", "unsat") and "over the 1 s timeout" in \
        line["message"]


@pytest.mark.parametrize("verdict, seconds, late, counted", [
    ("unsat", 0.5, None, "unsat"),
    ("unsat", 1.7, None, "timeout"),        # an old journal (before enforcement) or a larger --timeout
    ("sat", 1.7, None, "timeout"),
    ("timeout", 1.7, "unsat", "timeout"),   # what the runner now writes
    ("error", 1.7, None, "error"),
])
def test_report_counts_late_answers_as_timeouts(bench: Path, tmp_path: Path, verdict: str, seconds: float,
                                                late: str | None, counted: str) -> None:
    r = Result(KEY, "onnx/tiny_ok.onnx", "vnnlib/p.vnnlib", "fake", verdict, seconds, late_verdict=late)
    assert counted_verdict(r, TIMEOUT) == counted
    j = Journal(tmp_path / "r.jsonl")
    j.append(r)
    (row,) = build_report([j.path], bench).rows
    assert row.verdicts == (Verdict(counted),) and row.timeouts == (counted == "timeout")
    assert row.va == (1.0 if counted == "unsat" else 0.0) and row.mean_time_solved == (
        seconds if counted == "unsat" else None)


# --- class 6: journals and exit codes -------------------------------------------------------------

GOOD = json.dumps({"instance": KEY, "model": "onnx/tiny_ok.onnx", "vnnlib": "vnnlib/p.vnnlib", "backend": "lirpa",
                   "verdict": "unsat", "seconds": 0.5}, separators=(",", ":"))
BAD_LINES = {
    "torn tail": (GOOD + "\n" + '{"instance": "x", "mod', 2, "truncated"),
    "garbled middle": ('{"instance" nope}\n' + GOOD + "\n", 1, "unreadable"),
    "foreign middle": ('{"step": "inspect"}\n' + GOOD + "\n", 1, "unreadable"),
    "not utf-8": ("\udcff\n" + GOOD + "\n", 1, "unreadable"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_verify_resume_repairs_results_journal(bench: Path, tmp_path: Path, case: str) -> None:
    text, bad_line, why = BAD_LINES[case]
    journal = tmp_path / "out" / "r.jsonl"
    journal.parent.mkdir()
    journal.write_bytes(text.encode("utf-8", "surrogateescape"))
    res = _invoke(["verify", str(bench), "--backend", "lirpa", "--results", str(journal), "--no-progress"])
    assert res.exit_code == 0, res.stderr
    _no_traceback(res)
    (warn,) = _lines(res, "warning")
    assert str(journal) in warn and f"line {bad_line} is {why}" in warn, warn
    assert journal.read_text() == GOOD + "\n"  # the instance was reused, the broken line is gone
    assert sorted(p.name for p in journal.parent.iterdir()) == ["r.jsonl"]  # no temp file left
    again = _invoke(["verify", str(bench), "--backend", "lirpa", "--results", str(journal), "--no-progress"])
    assert again.exit_code == 0 and not _lines(again, "warning"), again.stderr  # warned once, not every run


def _step(model: str = "m", step: str = "inspect") -> str:
    return json.dumps(StepRecord(model, "fp", step, "done").to_json(), separators=(",", ":"), sort_keys=True)


def test_run_journal_repair_and_append_after_replacement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine journal is repaired the same way; a writer that opened the old file appends to the new one."""
    path = tmp_path / "journal.jsonl"
    path.write_text(_step() + "\n" + '{"model": "m", "status": "weird"}\n' + _step(step="score") + "\n{\"mo")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        recs = RunJournal(path).repair()
    assert [r.step for r in recs] == ["inspect", "score"]
    assert [str(w.message).split(" is ")[0] for w in got] == [f"run journal {path} line {i}" for i in (2, 4)]
    assert path.read_text() == _step() + "\n" + _step(step="score") + "\n"
    import graftonnx._io as io_mod

    real_flock, swapped = io_mod.fcntl.flock, []

    def flock_then_swap(fd: int, op: int) -> None:  # another process's repair renames a new file in meanwhile
        if not swapped and op == io_mod.fcntl.LOCK_EX:
            swapped.append(True)
            (tmp_path / "new").write_text(_step(step="new") + "\n")
            os.replace(tmp_path / "new", path)
        real_flock(fd, op)

    monkeypatch.setattr(io_mod.fcntl, "flock", flock_then_swap)
    append_line(path, _step(step="late") + "\n", "run journal")
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == ["new", "late"]
    assert repair_lines(tmp_path / "absent.jsonl", StepRecord.from_json, "run journal") == []


def _boom(ctx: object) -> object:
    raise RuntimeError("inspect exploded")


@pytest.mark.parametrize("failing, code, kind, needle, torn", [
    (("a", "b"), 1, "error", "2 of 2 models failed", False),
    (("a", "b"), 1, "error", "2 of 2 models failed", True),
    (("a",), 0, "warning", "1 of 2 models failed", False),
])
def test_zoo_exit_code_counts_failed_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: tuple[str, ...],
                                            code: int, kind: str, needle: str, torn: bool) -> None:
    import graftonnx.zoo.pipeline as pipeline

    real = pipeline._inspect
    monkeypatch.setattr(pipeline, "_inspect", lambda ctx: _boom(ctx) if ctx.entry.name in failing else real(ctx))
    for rel in ("tiny_ok.onnx", "data_ok.npz"):
        shutil.copy(CORPUS / rel, tmp_path / rel)
    man = tmp_path / "two.yaml"
    man.write_text("defaults:\n  export: {instances: 1, skip: none}\n  data: {source: data_ok.npz}\n"
                   "models:\n  - {name: a, path: tiny_ok.onnx}\n  - {name: b, path: tiny_ok.onnx}\n")
    out = tmp_path / "zoo"
    if torn:
        out.mkdir()
        (out / "journal.jsonl").write_text('{"model": "a", "fingerp')
    res = _invoke(["zoo", str(man), "-o", str(out)])
    assert res.exit_code == code, res.stderr
    _no_traceback(res)
    lines = _lines(res, kind)
    assert len(lines) == 1 + (torn and kind == "warning") and needle in lines[-1] and "summary.md" in lines[-1]
    if torn:
        (warn,) = _lines(res, "warning")
        assert f"run journal {out / 'journal.jsonl'} line 1 is truncated" in warn
    assert (out / "summary.md").is_file() and not list(out.rglob("*.tmp"))
    assert all(json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines())


@pytest.mark.parametrize("late, needle", [
    ('"proved"', "'proved' is not one of sat, unsat"),
    ("7", "7 is not one of sat, unsat"),
])
def test_report_rejects_a_bad_late_verdict(bench: Path, tmp_path: Path, late: str, needle: str) -> None:
    """A hand-edited late_verdict is a bad journal line: exit 2, one line naming file and line, no report folder."""
    journal = tmp_path / "r.jsonl"
    journal.write_text(GOOD[:-1] + f',"late_verdict":{late}}}\n')
    out = tmp_path / "rep"
    res = _invoke(["report", str(journal), "--bench", str(bench), "-o", str(out), "--no-plots"])
    assert res.exit_code == 2, res.stderr
    _no_traceback(res)
    (err,) = _lines(res, "error")
    assert f"{journal} line 1" in err and needle in err, err
    assert not out.exists()
