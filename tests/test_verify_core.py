"""Result/journal/runner/cexcheck: resume, bad input, invalid counterexamples, crashing backends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import model_path
from verify_helpers import NET, make_bench, mnist_image

from graftonnx.bench.vnnlib import read_vnnlib
from graftonnx.cli import main
from graftonnx.errors import BadInput
from graftonnx.settings import Settings, knob
from graftonnx.verify import (
    BACKENDS,
    INVALID_CEX,
    Counterexample,
    Journal,
    Result,
    Verdict,
    cex_problem,
    is_solved,
    parse_assignment,
    read_instances,
    verify_benchmark,
)
from graftonnx.verify.cexcheck import onnx_logits


@dataclass(frozen=True)
class FakeOptions(Settings):
    """The fake backend's own knob (backends declare their options)."""

    mode: str = knob("unsat", "What the fake verifier claims.")


@dataclass(frozen=True)
class FakeBackend:
    """Claims whatever ``mode`` says, and counts calls in a file (so resume can be observed)."""

    mode: str = "unsat"
    name: str = "fake"
    parallel_ok: bool = False
    Options: ClassVar[type] = FakeOptions

    @classmethod
    def from_options(cls, opts: FakeOptions) -> FakeBackend:
        return cls(mode=opts.mode)

    def verify(self, onnx_path: Path, vnnlib_path: Path, timeout: float, workdir: Path) -> Result:
        calls = Path(onnx_path).parents[1] / "calls.txt"
        with open(calls, "a") as fh:
            fh.write(f"{Path(vnnlib_path).name}\n")
        prop = read_vnnlib(vnnlib_path)
        if self.mode == "crash":
            raise RuntimeError("verifier exploded")
        if self.mode == "bad-cex":  # the box centre: correctly classified, so not a counterexample
            x = (prop.lower + prop.upper) / 2
            return Result("x", str(onnx_path), str(vnnlib_path), self.name, "sat", 0.1,
                          Counterexample(tuple(x), (0.0,) * 10))
        if self.mode == "outside":
            x = prop.upper + 0.01
            return Result("x", str(onnx_path), str(vnnlib_path), self.name, "sat", 0.1, Counterexample(tuple(x), ()))
        return Result("x", str(onnx_path), str(vnnlib_path), self.name, self.mode, 0.1)


if "fake" not in BACKENDS:
    BACKENDS.register("fake")(FakeBackend)


@pytest.fixture
def bench(tmp_path: Path, mnist_csv: Path) -> Path:
    return make_bench(tmp_path, model_path(NET), mnist_csv, [(0, 0.005), (1, 0.005), (2, 0.005)])


def _opts(mode: str) -> FakeOptions:
    return FakeOptions(mode=mode)


def test_parse_assignment_roundtrip_and_garbage() -> None:
    cex = parse_assignment("((X_0  0.5)\n(X_1 -1e-3)\n (Y_0 2.0)\n(Y_1 3))")
    assert cex == Counterexample((0.5, -0.001), (2.0, 3.0))
    assert parse_assignment("") is None
    with pytest.raises(ValueError):
        parse_assignment("((X_0 0.5)\n(X_2 1.0))")  # gap in indices
    with pytest.raises(ValueError):
        parse_assignment("((X_0 nan))")
    with pytest.raises(ValueError):
        parse_assignment("((Z_0 1.0))")


def test_result_json_roundtrip_and_verdict_check() -> None:
    r = Result("a::b", "a", "b", "lirpa", "sat", 1.23456, Counterexample((1.0,), (2.0, 3.0)), "m", "log")
    assert Result.from_json(json.loads(json.dumps(r.to_json()))) == r.replace(seconds=1.2346)
    with pytest.raises(ValueError):
        Result("a", "a", "b", "lirpa", "verified", 1.0)


#: Two journal lines as written before the Verdict enum existed (graftonnx 0.1.0, commit 66c30cf).
_OLD_JOURNAL = (
    '{"instance":"i1","model":"m.onnx","vnnlib":"p.vnnlib","backend":"lirpa","verdict":"sat","seconds":1.2346,'
    '"counterexample":{"inputs":[0.5,1.0],"outputs":[2.0,-1.0]},"message":"msg","log":"log"}\n'
    '{"instance":"i2","model":"m.onnx","vnnlib":"p.vnnlib","backend":"neuralsat","verdict":"timeout","seconds":30.0,'
    '"counterexample":null,"message":"","log":""}\n')


def test_journal_bytes_unchanged_by_verdict_enum(tmp_path: Path) -> None:
    j = Journal(tmp_path / "r.jsonl")
    j.append(Result("i1", "m.onnx", "p.vnnlib", "lirpa", Verdict.SAT, 1.23456789,
                    Counterexample((0.5, 1.0), (2.0, -1.0)), "msg", "log"))
    j.append(Result("i2", "m.onnx", "p.vnnlib", "neuralsat", "timeout", 30.0))  # a plain string still works
    assert j.path.read_text() == _OLD_JOURNAL
    old = Journal(tmp_path / "old.jsonl")
    old.path.write_text(_OLD_JOURNAL)
    done = old.load()
    assert done[("i1", "lirpa")].verdict is Verdict.SAT and done[("i2", "neuralsat")].verdict is Verdict.TIMEOUT
    assert f"{done[('i1', 'lirpa')].verdict:<8}|" == "sat     |" and is_solved("unsat") and not is_solved("timeout")
    with pytest.raises(ValueError, match="'proved' is not one of sat, unsat, timeout, unknown, error"):
        Result.from_json(json.loads(_OLD_JOURNAL.splitlines()[0].replace('"sat"', '"proved"')))


def test_journal_skips_torn_line_and_appends_after_it(tmp_path: Path) -> None:
    j = Journal(tmp_path / "r.jsonl")
    j.append(Result("i1", "m", "v", "fake", "unsat", 1.0))
    with open(j.path, "a") as fh:
        fh.write('{"instance": "i2", "mod')  # interrupted write
    j.append(Result("i3", "m", "v", "fake", "timeout", 1.0))
    done = j.load()
    assert set(done) == {("i1", "fake"), ("i3", "fake")}
    assert done[("i3", "fake")].verdict == "timeout"


def test_resume_skips_finished_instances(bench: Path, tmp_path: Path) -> None:
    journal = tmp_path / "res.jsonl"
    first = verify_benchmark(bench, "fake", _opts("unsat"), journal, progress=False)
    assert first.reused == 0 and first.counts()["unsat"] == 3
    calls = (bench / "calls.txt").read_text().split()
    assert len(calls) == 3
    # Simulate an interruption: drop the last journal line, then rerun.
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:2]) + "\n")
    second = verify_benchmark(bench, "fake", _opts("unsat"), journal, progress=False)
    assert second.reused == 2
    assert (bench / "calls.txt").read_text().split() == calls + [calls[2]]
    assert len(journal.read_text().splitlines()) == 3


def test_bad_counterexample_becomes_error(bench: Path, tmp_path: Path) -> None:
    s = verify_benchmark(bench, "fake", _opts("bad-cex"), tmp_path / "r.jsonl", progress=False)
    assert s.counts()["error"] == 3 and s.counts()["sat"] == 0
    assert all(r.message.startswith(INVALID_CEX) and "top score" in r.message for r in s.results)
    s2 = verify_benchmark(bench, "fake", _opts("outside"), tmp_path / "r2.jsonl", progress=False)
    assert all(r.verdict == "error" and "leaves the box" in r.message for r in s2.results)


def test_crashing_backend_is_error_for_that_instance_only(bench: Path, tmp_path: Path) -> None:
    s = verify_benchmark(bench, "fake", _opts("crash"), tmp_path / "r.jsonl", progress=False)
    assert [r.verdict for r in s.results] == ["error"] * 3
    assert "verifier exploded" in s.results[0].message
    assert len(Journal(tmp_path / "r.jsonl").load()) == 3


def test_cex_problem_accepts_a_real_counterexample(mnist_csv: Path) -> None:
    net = model_path(NET)
    from graftonnx.bench.spec import Property

    x, label = mnist_image(mnist_csv, 0)
    prop = Property.linf_ball(x, 0.3, label, 10)
    other = np.clip(x * 0 + 1.0, prop.lower, prop.upper)  # a very different image inside the big box
    y = onnx_logits(net, other)
    ok = cex_problem(net, prop, Counterexample(tuple(other), ()))
    assert (ok is None) == bool(np.argmax(y) != label)


@pytest.mark.parametrize("breakage, needle", [
    ("nodir", "not found"),
    ("nocsv", "instances.csv"),
    ("columns", "columns, not 3"),
    ("header", "not a number"),
    ("missing", "not found"),
])
def test_bad_bench_is_badinput_and_journal_untouched(bench: Path, tmp_path: Path, breakage: str,
                                                     needle: str) -> None:
    journal = tmp_path / "r.jsonl"
    verify_benchmark(bench, "fake", _opts("unsat"), journal, progress=False)
    before = journal.read_bytes()
    target = bench
    csv = bench / "instances.csv"
    if breakage == "nodir":
        target = tmp_path / "nope"
    elif breakage == "nocsv":
        csv.unlink()
    elif breakage == "columns":
        csv.write_text(csv.read_text() + "onnx/x.onnx,vnnlib/y.vnnlib\n")
    elif breakage == "header":
        csv.write_text("onnx,vnnlib,timeout\n" + csv.read_text())
    else:
        (bench / "vnnlib" / "img1_eps0.005.vnnlib").unlink()
    with pytest.raises(BadInput, match=needle):
        verify_benchmark(target, "fake", _opts("unsat"), journal, progress=False)
    res = CliRunner().invoke(main, ["verify", str(target), "--backend", "lirpa", "--results", str(journal),
                                    "--no-progress"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and needle in res.output
    assert journal.read_bytes() == before


def test_read_instances_on_real_vnncomp_layout() -> None:
    root = Path(__file__).resolve().parents[2] / "shared" / "vnncomp-examples" / "mnistfc"
    if not root.is_dir():
        pytest.skip("shared vnncomp examples missing")
    with pytest.raises(BadInput, match="not found"):  # the example folder ships only a few vnnlib files
        read_instances(root)


def test_unknown_backend_is_badinput(bench: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="unknown verifier backend"):
        verify_benchmark(bench, "marabou", None, tmp_path / "r.jsonl", progress=False)
