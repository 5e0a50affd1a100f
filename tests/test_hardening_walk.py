"""The whole bad-input corpus through *every* command that accepts that kind of file.

Why a walk: ``tests/test_hardening.py`` pins the corpus on ``graft``, ``verify`` and
``zoo``, but each command opens models and data through its own path (``finetune`` and
``evaluate`` load the model themselves, ``export`` takes several, ``report`` re-opens
the benchmark's), and a check that lives in one path only lets the others crash.  Each
case must exit 2 with exactly one ``graftonnx: error:`` line, no traceback, and leave
the output folder as it was.  Commands get valid other arguments, so only the bad file
can be at fault; they must fail before any heavy work (the whole walk takes seconds).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner, Result

from graftonnx.cli import main

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent / "bad_inputs")]
from make_corpus import GOOD_VNNLIB, tiny_model  # noqa: E402
from test_hardening import BENCHES, CORPUS, DATASETS, JOURNAL_LINE, MANIFESTS, MODELS, _check_bad_input, _tree  # noqa: E402

#: Models built here (not in the corpus): dtypes and an opset onnxruntime does not know → their line's needle.
EXTRA_MODELS = {"model_float64.onnx": "dtype float64", "model_int64.onnx": "dtype int64",
                "model_opset99.onnx": "opset 99"}
#: command → its arguments after the model (``{out}`` is the output folder, ``{data}`` the dataset).
MODEL_COMMANDS = {
    "inspect": [],
    "score": ["--data", "{data}", "-o", "{out}/s.json", "--no-progress"],
    "plan": ["--data", "{data}", "-o", "{out}/p.json", "--no-progress"],
    "graft": ["--data", "{data}", "-o", "{out}/g.onnx", "--no-progress"],
    "finetune": ["--data", "{data}", "-o", "{out}/f.onnx", "--eps", "0.02", "--epochs", "1", "--no-progress"],
    "evaluate": ["--data", "{data}", "--eps", "0.02", "-o", "{out}/e.json"],
    "export": ["--data", "{data}", "--eps", "0.02", "-o", "{out}/bench"],
    "simplify": ["-o", "{out}/s.onnx"],
}
DATA_COMMANDS = [c for c in MODEL_COMMANDS if "{data}" in MODEL_COMMANDS[c]]


def _retyped(elem: int) -> onnx.ModelProto:
    """The tiny net with its input (and everything downstream) of another dtype, valid for onnx.checker."""
    from onnx import numpy_helper

    m = tiny_model()
    np_type = onnx.helper.tensor_dtype_to_np_dtype(elem)
    for vi in (*m.graph.input, *m.graph.output):
        vi.type.tensor_type.elem_type = elem
    for t in m.graph.initializer:
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np_type), t.name))
    return m


def extra_model(name: str) -> onnx.ModelProto:
    """The models of :data:`EXTRA_MODELS` (built, not stored: they are one field away from tiny_ok)."""
    if name == "model_opset99.onnx":
        m = tiny_model()
        m.opset_import[0].version = 99
        return m
    return _retyped(onnx.TensorProto.DOUBLE if "float64" in name else onnx.TensorProto.INT64)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for rel in ("tiny_ok.onnx", "data_ok.npz"):
        shutil.copy(CORPUS / rel, tmp_path / rel)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.jsonl").write_text(JOURNAL_LINE)
    return tmp_path


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, env={"TQDM_DISABLE": "1"})


def _walk(work: Path, args: list[str], needle: str) -> None:
    before = _tree(work)
    line = _check_bad_input(_invoke(args), needle)
    assert _tree(work) == before, line  # nothing written anywhere, not only in out/


def _args(cmd: str, model: Path, data: Path, out: Path) -> list[str]:
    return [cmd, str(model), *(a.format(out=out, data=data) for a in MODEL_COMMANDS[cmd])]


@pytest.mark.parametrize("name", sorted(MODELS) + sorted(EXTRA_MODELS))
@pytest.mark.parametrize("cmd", list(MODEL_COMMANDS))
def test_bad_model_every_command(work: Path, cmd: str, name: str) -> None:
    if name in EXTRA_MODELS:
        onnx.save(extra_model(name), str(work / name))
    else:
        shutil.copy(CORPUS / name, work / name)
    needle = {**MODELS, **EXTRA_MODELS}[name]
    _walk(work, _args(cmd, work / name, work / "data_ok.npz", work / "out"), needle)


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("cmd", DATA_COMMANDS)
def test_bad_dataset_every_command(work: Path, cmd: str, name: str) -> None:
    shutil.copy(CORPUS / name, work / name)
    _walk(work, _args(cmd, work / "tiny_ok.onnx", work / name, work / "out"), name)


def _good_bench(work: Path) -> Path:
    root = work / "bench_ok"
    (root / "onnx").mkdir(parents=True)
    (root / "vnnlib").mkdir()
    shutil.copy(CORPUS / "tiny_ok.onnx", root / "onnx" / "tiny_ok.onnx")
    (root / "vnnlib" / "p.vnnlib").write_text(GOOD_VNNLIB)
    (root / "instances.csv").write_text("onnx/tiny_ok.onnx,vnnlib/p.vnnlib,10\n")
    return root


def _matching_journal(work: Path) -> Path:
    """A journal of the instance every corpus bench lists, so ``report`` gets past matching it."""
    journal = work / "out" / "results.jsonl"
    journal.write_text(json.dumps({"instance": "onnx/tiny_ok.onnx::vnnlib/p.vnnlib", "model": "onnx/tiny_ok.onnx",
                                   "vnnlib": "vnnlib/p.vnnlib", "backend": "lirpa", "verdict": "unsat",
                                   "seconds": 1.0}) + "\n")
    return journal


@pytest.mark.parametrize("name", DATASETS)
def test_bad_dataset_report(work: Path, name: str) -> None:
    shutil.copy(CORPUS / name, work / name)
    bench = _good_bench(work)
    journal = _matching_journal(work)
    _walk(work, ["report", str(journal), "--bench", str(bench), "-o", str(work / "rep"),
                 "--data", str(work / name), "--eps", "0.02", "--no-plots"], name)


def _bad_bench(work: Path, name: str) -> Path:
    root = work / name
    shutil.copytree(CORPUS / name, root)
    (root / "onnx").mkdir()
    shutil.copy(CORPUS / "tiny_ok.onnx", root / "onnx" / "tiny_ok.onnx")
    return root


@pytest.mark.parametrize("name", BENCHES)
@pytest.mark.parametrize("cmd", ["verify", "report"])
def test_bad_bench_every_command(work: Path, cmd: str, name: str) -> None:
    root = _bad_bench(work, name)
    journal = str(_matching_journal(work))
    args = {"verify": ["verify", str(root), "--results", journal, "--no-progress"],
            "report": ["report", journal, "--bench", str(root), "-o", str(work / "rep"), "--no-plots"]}[cmd]
    _walk(work, args, "instances.csv" if "vnnlib" not in name else "p.vnnlib")


@pytest.mark.parametrize("name", MANIFESTS)
def test_bad_manifest_zoo(work: Path, name: str) -> None:
    shutil.copy(CORPUS / name, work / name)
    _walk(work, ["zoo", str(work / name), "-o", str(work / "zoo")], name)
