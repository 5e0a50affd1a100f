"""Issue 13, classes 4 and 5: inputs that used to crash, and options that used to be accepted silently.

Why one file: each case is a user's mistake that must come out as one line naming the
field or file at fault (exit 2, no traceback, nothing written), or — where the intent is
clear — as one warning line with the run going on.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner, Result

from graftonnx import api
from graftonnx.cli import main
from graftonnx.errors import BadInput, GraftFailure
from graftonnx.zoo.manifest import _Where, load_manifest

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent / "bad_inputs")]
from make_corpus import tiny_model  # noqa: E402
from test_hardening import CORPUS, _check_bad_input, _tree  # noqa: E402
from test_hardening_walk import extra_model  # noqa: E402


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for rel in ("tiny_ok.onnx", "data_ok.npz"):
        shutil.copy(CORPUS / rel, tmp_path / rel)
    (tmp_path / "out").mkdir()
    return tmp_path


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, env={"TQDM_DISABLE": "1"})


def _fails(work: Path, args: list[str], *needles: str) -> str:
    """Exit 2, one error line holding every needle, no traceback, the work folder unchanged."""
    before = _tree(work)
    line = _check_bad_input(_invoke(args))
    for needle in needles:
        assert needle.lower() in line.lower(), line
    assert _tree(work) == before, line
    return line


def _model(work: Path, name: str) -> str:
    onnx.save(extra_model(name), str(work / name))
    return str(work / name)


def _common(work: Path) -> list[str]:
    return ["--data", str(work / "data_ok.npz"), "--no-progress"]


# --- class 4: tracebacks ------------------------------------------------------------------------------------


def test_float64_input_model_inspect(work: Path) -> None:
    m = _model(work, "model_float64.onnx")
    _fails(work, ["inspect", m], "input 'x'", "dtype float64", "float32")


def test_int64_input_model_score(work: Path) -> None:
    m = _model(work, "model_int64.onnx")
    _fails(work, ["score", m, *_common(work), "-o", str(work / "out" / "s.json")], "input 'x'", "dtype int64")


def test_integer_output_is_refused() -> None:
    from graftonnx.model.info import inspect_model

    m = tiny_model()
    m.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.INT64
    with pytest.raises(BadInput, match="output 'y' has dtype int64"):
        inspect_model(m)


@pytest.mark.parametrize("cmd", ["inspect", "graft"])
def test_opset_99_names_opset_and_onnxruntime_max(work: Path, cmd: str) -> None:
    m = _model(work, "model_opset99.onnx")
    args = [cmd, m] + ([] if cmd == "inspect" else [*_common(work), "-o", str(work / "out" / "g.onnx")])
    line = _fails(work, args, "opset 99", "onnxruntime", "convert")
    assert re.search(r"up to opset \d+", line), line


def test_other_onnxruntime_refusal_is_one_line_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session failure that is not the opset stays one line, as a failure (it may be graftonnx's graph)."""
    import graftonnx.model.runtime as rt

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Type Error\nsecond line")

    monkeypatch.setattr(rt.ort, "InferenceSession", boom)
    with pytest.raises(GraftFailure, match=r"onnxruntime cannot load the model \(opset 13\): .*Type Error$"):
        rt.session(tiny_model())


def test_manifest_top_level_typo(work: Path) -> None:
    man = work / "manifest.yaml"
    man.write_text("models:\n  - path: tiny_ok.onnx\nmodles: []\n")
    _fails(work, ["zoo", str(man), "-o", str(work / "zoo")],
           "manifest.yaml line 3: top-level key 'modles': unknown top-level key: use 'defaults' and 'models'")


WHERE_CASES = [
    ((), "m.yaml: top level: bad"),
    (("modles",), "m.yaml line 3: top-level key 'modles': bad"),
    (("defaults",), "m.yaml line 1: defaults: bad"),
    (("defaults", "eps"), "m.yaml line 2: defaults key 'eps': bad"),
    (("defaults", "data", "mean"), "m.yaml line 4: defaults key 'data.mean': bad"),
    (("models", 1), "m.yaml line 5: models[1]: bad"),
    (("models", 1, "eps"), "m.yaml line 6: models[1] key 'eps': bad"),
    (("models", 1, "data", "std"), "m.yaml line 7: models[1] key 'data.std': bad"),
    (("models", 1, "data", "nope"), "m.yaml line 7: models[1] key 'data.nope': bad"),  # unknown key: parent's line
]


@pytest.mark.parametrize(("path", "expected"), WHERE_CASES)
def test_manifest_error_formatter_every_path_shape(path: tuple[object, ...], expected: str) -> None:
    lines = {("defaults",): 1, ("defaults", "eps"): 2, ("modles",): 3, ("defaults", "data", "mean"): 4,
             ("models", 1): 5, ("models", 1, "eps"): 6, ("models", 1, "data"): 7, ("models", 1, "data", "std"): 7}
    assert _Where("m.yaml", lines).fail(path, "bad").message == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("defaults:\n  epss: 1\nmodels:\n  - path: tiny_ok.onnx\n", "line 2: defaults key 'epss': unknown key"),
    ("defaults:\n  data:\n    mean: abc\nmodels:\n  - path: tiny_ok.onnx\n", "line 3: defaults key 'data.mean'"),
    ("models:\n  - path: tiny_ok.onnx\n  - 7\n", "line 3: models[1]: expected a mapping"),
    ("models:\n  - path: tiny_ok.onnx\n    data:\n      std: abc\n", "line 4: models[0] key 'data.std'"),
])
def test_manifest_path_shapes_end_to_end(work: Path, text: str, expected: str) -> None:
    man = work / "manifest.yaml"
    man.write_text(text)
    with pytest.raises(BadInput, match=re.escape(expected)):
        load_manifest(man)
    _fails(work, ["zoo", str(man), "-o", str(work / "zoo")], expected)


# --- class 5: options accepted silently ---------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["graft", "plan"])
def test_count_above_units(work: Path, cmd: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "score", lambda *a, **k: pytest.fail("scored before refusing --count"))
    out = str(work / "out" / ("g.onnx" if cmd == "graft" else "p.json"))
    _fails(work, [cmd, str(work / "tiny_ok.onnx"), *_common(work), "-o", out, "--count", "5000"],
           "--count 5000 is more than the 6 units of the chosen layers: use at most 6")


def test_count_above_units_per_layer_names_the_layer(work: Path) -> None:
    _fails(work, ["plan", str(work / "tiny_ok.onnx"), *_common(work), "-o", str(work / "out" / "p.json"),
                  "--count", "7", "--scope", "per-layer"], "--count 7", "6 units of layer 'act'")


def test_count_equal_to_units_still_grafts_all(work: Path) -> None:
    res = _invoke(["plan", str(work / "tiny_ok.onnx"), *_common(work), "-o", str(work / "out" / "p.json"),
                   "--count", "6"])
    assert res.exit_code == 0, res.stderr


def test_count_above_units_api(work: Path) -> None:
    with pytest.raises(BadInput, match="--count 50 is more than the 6 units"):
        api.plan(str(work / "tiny_ok.onnx"), str(work / "data_ok.npz"), count=50)


@pytest.mark.parametrize("flag", [["--ratio", "0.3"], ["--count", "2"], ["--criterion", "random"],
                                  ["--scores", "{work}/s.json"]])
def test_selection_option_with_plan(work: Path, flag: list[str]) -> None:
    plan = work / "out" / "p.json"
    (work / "s.json").write_text("{}")
    assert _invoke(["plan", str(work / "tiny_ok.onnx"), *_common(work), "-o", str(plan)]).exit_code == 0
    flag = [f.format(work=work) for f in flag]
    _fails(work, ["graft", str(work / "tiny_ok.onnx"), *_common(work), "-o", str(work / "out" / "g.onnx"),
                  "--plan", str(plan), *flag], f"{flag[0]} has no effect with --plan", f"drop {flag[0]}")


@pytest.mark.parametrize(("given", "missing", "default"), [("--mean", "std", "1"), ("--std", "mean", "0")])
def test_mean_without_std_warns_once(work: Path, given: str, missing: str, default: str) -> None:
    out = work / "out" / "s.json"
    res = _invoke(["score", str(work / "tiny_ok.onnx"), *_common(work), "-o", str(out), given, "0.5"])
    assert res.exit_code == 0, res.stderr
    warns = [x for x in res.stderr.splitlines() if x.startswith("graftonnx: warning:")]
    assert warns == [f"graftonnx: warning: {given} given without --{missing}: {missing} defaults to {default}; "
                     f"pass --{missing} too if the model expects another value"], res.stderr
    assert "Traceback" not in res.stderr and out.is_file()


def test_mean_without_std_is_recorded(work: Path) -> None:
    from graftonnx.data import DataSpec, load_dataset
    from graftonnx.model import inspect_model, load_model

    info = inspect_model(load_model(work / "tiny_ok.onnx"))
    with pytest.warns(UserWarning, match="std defaults to 1"):
        ds = load_dataset(str(work / "data_ok.npz"), info, DataSpec(mean=(0.5,)))
    assert (ds.mean, ds.std) == ((0.5,), (1.0,))


def test_another_backends_flag_with_lirpa(work: Path) -> None:
    bench = work / "bench"
    shutil.copytree(CORPUS / "bench_header", bench)
    _fails(work, ["verify", str(bench), "--mip", "--results", str(work / "out" / "r.jsonl")],
           "--mip is not an option of backend 'lirpa'")


def test_another_backends_flag_with_lirpa_in_zoo_folder_mode(work: Path) -> None:
    folder = work / "models"
    folder.mkdir()
    shutil.copy(work / "tiny_ok.onnx", folder / "tiny_ok.onnx")
    _fails(work, ["zoo", str(folder), "-o", str(work / "zoo"), "--data", str(work / "data_ok.npz"),
                  "--verify-mip"], "--verify-mip is not an option of backend 'lirpa'")


EPS_NAN = {"score": ["-o", "{out}/s.json"], "plan": ["-o", "{out}/p.json"], "graft": ["-o", "{out}/g.onnx"],
           "export": ["-o", "{out}/bench"], "evaluate": ["-o", "{out}/e.json"],
           "finetune": ["-o", "{out}/f.onnx", "--epochs", "1"]}


@pytest.mark.parametrize("cmd", list(EPS_NAN))
def test_eps_nan_is_not_called_negative(work: Path, cmd: str) -> None:
    args = [a.format(out=work / "out") for a in EPS_NAN[cmd]]
    common = ["--data", str(work / "data_ok.npz")]
    line = _fails(work, [cmd, str(work / "tiny_ok.onnx"), *common, "--eps", "nan", *args], "--eps nan", "finite")
    assert "negative" not in line
