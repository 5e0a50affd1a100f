"""The bad-input corpus (tests/bad_inputs/): every case must give one error line, exit 2, no partial file,
and leave earlier results (journals) intact.

Cases marked xfail are known defects in code outside the zoo; each reason names the
file and function to fix, and ``strict=True`` makes the test flip once it is fixed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from graftonnx.cli import main

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
sys.path.insert(0, str(CORPUS))
from make_corpus import GOOD_VNNLIB, corpus  # noqa: E402

#: Bad model → what its one error line must mention (the file, or the node/input at fault).
MODELS = {"model_truncated.onnx": "model_truncated.onnx", "model_empty.onnx": "model_empty.onnx",
          "model_text.onnx": "model_text.onnx", "model_external_missing.onnx": "model_external_missing.onnx",
          "model_unsupported_op.onnx": "node 'act' uses op sin", "model_if.onnx": "node 'if' is control flow",
          "model_loop.onnx": "node 'loop' is control flow", "model_dynamic_dim.onnx": "dynamic dimensions",
          "model_two_inputs.onnx": "2 inputs", "model_dangling_input.onnx": "model_dangling_input.onnx",
          "model_no_relu.onnx": "no relu"}
DATASETS = ["data_wrong_shape.npz", "data_nan.npz", "data_labels_out_of_range.npz", "data_label_count.npz",
            "data_empty.npz", "data_out_of_range.npz", "data_ragged.csv", "data_text_labels.csv"]
BENCHES = ["bench_header", "bench_missing_file", "bench_columns", "bench_negative_timeout", "bench_empty",
           "bench_vnnlib_parens", "bench_vnnlib_undeclared", "bench_vnnlib_garbage"]
MANIFESTS = ["manifest_yaml_syntax.yaml", "manifest_unknown_key.yaml", "manifest_wrong_type.yaml",
             "manifest_no_path.yaml", "manifest_bad_backend.yaml", "manifest_not_mapping.yaml"]
JOURNAL_LINE = json.dumps({"instance": "old::done", "model": "m", "vnnlib": "v", "backend": "lirpa",
                           "verdict": "unsat", "seconds": 1.0}) + "\n"


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its sha256: the before/after snapshot that proves nothing changed."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _check_bad_input(res: Result, needle: str = "") -> str:
    """Exit 2, exactly one 'graftonnx: error:' line (progress bars aside), no traceback; returns the line."""
    errors = [x for x in re.split(r"[\r\n]", res.stderr) if x.startswith("graftonnx: error:")]
    assert res.exit_code == 2, (res.exit_code, res.stderr[-500:], res.exception)
    assert len(errors) == 1 and "Traceback" not in res.stderr + res.output, res.stderr
    assert needle.lower() in errors[0].lower(), errors[0]
    return errors[0]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A private copy of the corpus (tests never write into the repo) plus a results folder with a journal."""
    for rel in ("tiny_ok.onnx", "data_ok.npz"):
        shutil.copy(CORPUS / rel, tmp_path / rel)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.jsonl").write_text(JOURNAL_LINE)
    return tmp_path


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, env={"TQDM_DISABLE": "1"})


def test_corpus_is_reproducible_and_large_enough(tmp_path: Path) -> None:
    files = corpus()
    assert len(MODELS) + len(DATASETS) + len(BENCHES) + len(MANIFESTS) >= 25
    for rel, data in files.items():
        assert (CORPUS / rel).read_bytes() == data, f"{rel} differs from make_corpus.py: rerun the script"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_model(work: Path, name: str) -> None:
    shutil.copy(CORPUS / name, work / name)
    before = _tree(work / "out")
    res = _invoke(["graft", str(work / name), "--data", str(work / "data_ok.npz"), "-o", str(work / "out" / "g.onnx")])
    line = _check_bad_input(res, MODELS[name])
    assert _tree(work / "out") == before, line


@pytest.mark.parametrize("name", DATASETS)
def test_bad_dataset(work: Path, name: str) -> None:
    shutil.copy(CORPUS / name, work / name)
    before = _tree(work / "out")
    res = _invoke(["graft", str(work / "tiny_ok.onnx"), "--data", str(work / name), "-o", str(work / "out" / "g.onnx")])
    _check_bad_input(res, name)
    assert _tree(work / "out") == before


def _bench(work: Path, name: str) -> Path:
    root = work / name
    shutil.copytree(CORPUS / name, root)
    (root / "onnx").mkdir()
    shutil.copy(CORPUS / "tiny_ok.onnx", root / "onnx" / "tiny_ok.onnx")
    return root


@pytest.mark.parametrize("name", BENCHES)
def test_bad_benchmark_keeps_journal(work: Path, name: str) -> None:
    root = _bench(work, name)
    before = _tree(work / "out")
    res = _invoke(["verify", str(root), "--results", str(work / "out" / "results.jsonl"), "--no-progress"])
    _check_bad_input(res, "instances.csv" if "vnnlib" not in name else "p.vnnlib")
    assert _tree(work / "out") == before  # the earlier result is still there, nothing half-written


@pytest.mark.parametrize("name", MANIFESTS)
def test_bad_manifest(work: Path, name: str) -> None:
    shutil.copy(CORPUS / name, work / name)
    res = _invoke(["zoo", str(work / name), "-o", str(work / "zoo")])
    _check_bad_input(res, name)
    assert not (work / "zoo").exists()  # rejected before the output folder is even created


def _good_manifest(work: Path) -> Path:
    p = work / "ok.yaml"
    p.write_text("defaults:\n  export: {instances: 1, skip: none}\n  verify: {timeout: 20}\n"
                 "models:\n  - path: tiny_ok.onnx\n    data: {source: data_ok.npz}\n")
    return p


@pytest.mark.parametrize("cmd", ["graft", "zoo", "export"])
def test_output_under_a_regular_file(work: Path, cmd: str) -> None:
    """Unwritable output that stops root too: a path whose parent is a regular file (chmod does not stop root)."""
    blocker = work / "out" / "results.jsonl"
    target = str(blocker / "sub")
    args = {"graft": ["graft", str(work / "tiny_ok.onnx"), "--data", str(work / "data_ok.npz"), "-o", target],
            "zoo": ["zoo", str(_good_manifest(work)), "-o", target],
            "export": ["export", str(work / "tiny_ok.onnx"), "--data", str(work / "data_ok.npz"), "--eps", "0.1",
                       "-o", target]}[cmd]
    before = _tree(work / "out")
    _check_bad_input(_invoke(args))
    assert _tree(work / "out") == before


def _enospc(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_zoo_disk_full_keeps_journal(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full after some steps: exit 2 with one line, earlier journal lines intact, a rerun resumes."""
    import graftonnx.zoo.pipeline as pipeline

    man, out = _good_manifest(work), work / "zoo"
    real = pipeline._export
    monkeypatch.setattr(pipeline, "_export", lambda ctx: _enospc())
    _check_bad_input(_invoke(["zoo", str(man), "-o", str(out)]), "no space left on device")
    journal = (out / "journal.jsonl").read_text()
    assert [json.loads(x)["step"] for x in journal.splitlines()] == ["inspect", "score", "graft:0.5"]
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(pipeline, "_export", real)
    assert _invoke(["zoo", str(man), "-o", str(out)]).exit_code == 0
    lines = (out / "journal.jsonl").read_text()
    assert lines.startswith(journal)
    assert [json.loads(x)["step"] for x in lines[len(journal):].splitlines()] == ["export", "verify"]


@pytest.mark.parametrize("what", ["journal", "every fsync"])
def test_zoo_cannot_write(work: Path, monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    """The journal (or every write: manifest.json, summary) fails with ENOSPC: one line, exit 2, no temp files."""
    import graftonnx._io as journal_mod

    if what == "journal":
        monkeypatch.setattr(journal_mod, "_torn_tail", _enospc)
    else:
        monkeypatch.setattr(os, "fsync", _enospc)
    line = _check_bad_input(_invoke(["zoo", str(_good_manifest(work)), "-o", str(work / "zoo")]), "no space left")
    assert ("run journal" in line) == (what == "journal")
    assert not list((work / "zoo").rglob("*.tmp"))


@pytest.mark.parametrize("cmd", ["graft", "score"])
def test_disk_full_on_single_output(work: Path, monkeypatch: pytest.MonkeyPatch, cmd: str) -> None:
    import graftonnx._io as io_mod

    monkeypatch.setattr(io_mod.os, "fsync", _enospc)
    out = work / "out" / ("g.onnx" if cmd == "graft" else "s.json")
    before = _tree(work / "out")
    res = _invoke([cmd, str(work / "tiny_ok.onnx"), "--data", str(work / "data_ok.npz"), "-o", str(out)])
    assert _tree(work / "out") == before
    _check_bad_input(res, "no space")


def _fake_verifier(work: Path, body: str | None, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = work / "fake_ns"
    (root / "verifier").mkdir(parents=True)
    if body is not None:
        (root / "main.py").write_text(textwrap.dedent(body))
    monkeypatch.setenv("NEURALSAT_PATH", str(root))
    bench = _bench(work, "bench_header")
    (bench / "instances.csv").write_text("onnx/tiny_ok.onnx,vnnlib/p.vnnlib,1\n")
    (bench / "vnnlib" / "p.vnnlib").write_text(GOOD_VNNLIB)
    return bench


@pytest.mark.parametrize("kind, body, verdict", [
    ("hang", "import time\nprint('started', flush=True)\ntime.sleep(600)\n", "timeout"),
    ("crash", "raise SystemExit('fatal: CUDA exploded')\n", "error"),
])
def test_verifier_hang_or_crash_is_that_instance_only(work: Path, monkeypatch: pytest.MonkeyPatch, kind: str,
                                                      body: str, verdict: str) -> None:
    """Not the user's input: the instance gets its verdict, the run exits 0, earlier journal lines stay."""
    bench = _fake_verifier(work, body, monkeypatch)
    journal = work / "out" / "results.jsonl"
    from graftonnx.verify.backends.neuralsat import NeuralsatBackend

    monkeypatch.setattr(NeuralsatBackend, "from_options", classmethod(lambda cls, o: cls(o.device, grace_s=1.0)))
    res = _invoke(["verify", str(bench), "--backend", "neuralsat", "--results", str(journal), "--no-progress"])
    assert res.exit_code == 0 and "Traceback" not in res.stderr, res.stderr
    lines = journal.read_text().splitlines()
    assert lines[0] == JOURNAL_LINE.strip() and json.loads(lines[-1])["verdict"] == verdict


def test_verifier_missing_is_bad_input(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _fake_verifier(work, None, monkeypatch)
    before = _tree(work / "out")
    res = _invoke(["verify", str(bench), "--backend", "neuralsat", "--results", str(work / "out" / "results.jsonl"),
                   "--no-progress"])
    assert _tree(work / "out") == before
    _check_bad_input(res, "neuralsat")


def test_zoo_records_a_verifier_crash_and_goes_on(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a batch, a model whose step raises is 'failed' with one line; the other model still finishes."""
    import graftonnx.zoo.pipeline as pipeline

    real: Callable = pipeline._verify

    def flaky(ctx: object) -> object:
        if ctx.entry.name == "first":  # type: ignore[attr-defined]
            raise RuntimeError("verifier segfaulted\nwith a two-line message")
        return real(ctx)

    monkeypatch.setattr(pipeline, "_verify", flaky)
    man = work / "two.yaml"
    man.write_text("defaults:\n  export: {instances: 1, skip: none}\n  data: {source: data_ok.npz}\n"
                   "models:\n  - {name: first, path: tiny_ok.onnx}\n  - {name: second, path: tiny_ok.onnx}\n")
    res = _invoke(["zoo", str(man), "-o", str(work / "zoo"), "--json"])
    assert res.exit_code == 0, res.stderr
    rows = json.loads((work / "zoo" / "summary.json").read_text())["rows"]
    status = {r["model"]: (r["status"], r["error"]) for r in rows}
    assert status["second"] == ("done", "")
    assert status["first"][0] == "failed" and "verify: RuntimeError: verifier segfaulted with a two-line" in \
        status["first"][1] and "\n" not in status["first"][1]
