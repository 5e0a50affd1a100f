"""Issue 13, classes 2 and 3: values that do not survive float32, and types coerced silently.

Every bad file is generated into ``tmp_path`` from a good one with a single edit, so each
case proves exactly one check: exit 2, one ``graftonnx: error:`` line naming the field
(or file and line), no traceback and no output left behind.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner, Result
from onnx import numpy_helper
from test_hardening import CORPUS, _check_bad_input, _tree

from graftonnx.bench import parse_vnnlib, parse_vnnlib2, vnnlib2_text
from graftonnx.bench.spec import Property
from graftonnx.cli import main
from graftonnx.errors import BadInput
from graftonnx.model.loader import check_finite_weights, nonfinite_weights
from graftonnx.planning import GraftPlan
from graftonnx.planning.plan import LayerPlan
from graftonnx.rewrite.graft import apply_plan

sys.path.insert(0, str(CORPUS))
from make_corpus import GOOD_VNNLIB, N_HID, N_IN, tiny_model  # noqa: E402

GOOD_LAYER = {"site": "act", "granularity": "neuron", "indices": [1, 3], "a": [0.5, 1], "b": [0.0, -0.25],
              "fixed": False}


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, env={"TQDM_DISABLE": "1"})


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for rel in ("tiny_ok.onnx", "data_ok.npz"):
        shutil.copy(CORPUS / rel, tmp_path / rel)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("an earlier result\n")
    return tmp_path


def _expect_bad(work: Path, args: list[str], needle: str) -> str:
    """Run the CLI; exit 2 with one error line containing ``needle``, and out/ exactly as before."""
    before = _tree(work / "out")
    line = _check_bad_input(_invoke(args), needle)
    assert _tree(work / "out") == before, line
    return line


# --- plans -----------------------------------------------------------------------------
def _plan(layers: list[Any] | None = None, **top: Any) -> dict[str, Any]:
    return {"format": "graftonnx-plan", "version": 1, "provenance": {}, "layers": layers or [dict(GOOD_LAYER)]} | top


def _layer(**edit: Any) -> dict[str, Any]:
    return {**GOOD_LAYER, **edit}


PLANS: dict[str, tuple[str, str]] = {
    # name: (JSON text of the plan, what the one error line must say)
    "a_1e39": (json.dumps(_plan([_layer(a=[1e39, 1.0])])), "layers[0] ('act') a[0] (neuron 1) = 1e+39 overflows"),
    "b_1e400": (json.dumps(_plan([_layer(b=[0.0, 1.0])])).replace("-0.25", "1e400").replace("1.0]", "1e400]"),
                "b[1] (neuron 3) = inf is infinite"),
    "a_nan_literal": (json.dumps(_plan([_layer(a=[0.5, float("nan")])])), "a[1] (neuron 3) = nan is nan"),
    "a_nan_string": (json.dumps(_plan([_layer(a=["NaN", 1.0])])), "a[0] = \"nan\" is not a number"),
    "index_half": (json.dumps(_plan([_layer(indices=[0.5, 3])])), "indices[0] = 0.5 is not an integer"),
    "index_string": (json.dumps(_plan([_layer(indices=["3", 1])])), "indices[0] = \"3\" is not an integer"),
    "index_bool": (json.dumps(_plan([_layer(indices=[1, True])])), "indices[1] = true is not an integer"),
    "index_duplicate": (json.dumps(_plan([_layer(indices=[3, 3])])), "indices[1] = 3 repeats indices[0]"),
    "index_negative": (json.dumps(_plan([_layer(indices=[-1, 3])])), "indices[0] = -1 is negative"),
    "index_out_of_range": (json.dumps(_plan([_layer(indices=[1, N_HID])])), f"index {N_HID} is outside 0..5"),
    "unknown_site": (json.dumps(_plan([_layer(site="Relu_7")])), "layers[0] ('relu_7'): no relu node"),
    "duplicate_site": (json.dumps(_plan([_layer(), _layer(indices=[0], a=[1.0], b=[0.0])])),
                       "layers[1] ('act') repeats the site of layers[0]"),
    "fixed_yes": (json.dumps(_plan([_layer(fixed="yes")])), "fixed = \"yes\" must be true or false"),
    "granularity_typo": (json.dumps(_plan([_layer(granularity="neurons")])), "granularity \"neurons\""),
    "extra_layer_key": (json.dumps(_plan([_layer(slope=[1.0, 1.0])])), "unknown layer key 'slope'"),
    "extra_top_key": (json.dumps(_plan(comment="mine")), "unknown top-level key 'comment'"),
    "a_too_short": (json.dumps(_plan([_layer(a=[0.5])])), "has 1 a values for 2 indices"),
    "layers_not_list": (json.dumps(_plan() | {"layers": {"act": [1]}}), "\"layers\" must be a list"),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_bad_plan(work: Path, name: str) -> None:
    text, needle = PLANS[name]
    plan = work / f"{name}.json"
    plan.write_text(text)
    line = _expect_bad(work, ["graft", str(work / "tiny_ok.onnx"), "--data", str(work / "data_ok.npz"),
                              "--plan", str(plan), "-o", str(work / "out" / "g.onnx")], needle)
    assert f"{name}.json" in line


def test_good_plan_still_grafts(work: Path) -> None:
    """The control: the unedited plan (an integer ``a`` included) is applied."""
    plan = work / "ok.json"
    plan.write_text(json.dumps(_plan()))
    res = _invoke(["graft", str(work / "tiny_ok.onnx"), "--data", str(work / "data_ok.npz"), "--plan", str(plan),
                   "-o", str(work / "out" / "g.onnx")])
    assert res.exit_code == 0, res.stderr
    assert GraftPlan.load(plan).layers[0].a == (0.5, 1.0)


def test_python_plan_with_overflow_is_caught_before_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans built in Python skip from_dict: validate() and, behind it, the rewrite itself refuse 1e39."""
    model = tiny_model()
    plan = GraftPlan((LayerPlan("act", "neuron", (2,), (1e39,), (0.0,)),))
    with pytest.raises(BadInput, match=r"plan layer 'act' a\[0\] \(neuron 2\) = 1e\+39 overflows float32"):
        apply_plan(model, plan)
    monkeypatch.setattr(GraftPlan, "validate", lambda self, info: self)
    with pytest.raises(BadInput, match=r"site 'act' neuron 2: a = 1e\+39 is not a finite float32"):
        apply_plan(model, plan)


# --- score tables ----------------------------------------------------------------------
def _scores(edit: Callable[[dict[str, Any]], None] | None = None) -> str:
    d: dict[str, Any] = {"format": "graftonnx-scores", "model": "tiny_ok.onnx", "eps": 0.1, "bound": "ibp",
                         "significance": "grad", "n_images": 6, "dataset": "data_ok.npz",
                         "sites": [{"site": "act", "shape": [N_HID], "unr": 1.5,
                                    "instability": [0.1, 0.9, 0.3, 0.4, 0.0, 1.0],
                                    "significance": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}]}
    if edit:
        edit(d)
    return json.dumps(d)


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return edit


SCORES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "instability_nan": (_set(("sites", 0, "instability", 2), float("nan")),
                        "sites[0] ('act') instability[2] = nan must be a finite number"),
    "significance_string": (_set(("sites", 0, "significance", 0), "1.0"),
                            "sites[0] ('act') significance[0] = '1.0' must be a finite number"),
    "wrong_length": (_set(("sites", 0, "instability"), [0.5] * (N_HID - 1)),
                     "instability has 5 values but the site's shape has 6 neurons"),
    "shape_float": (_set(("sites", 0, "shape"), [6.0]), "shape = [6.0] must be a list of positive integers"),
    "duplicate_site": (lambda d: d["sites"].append(dict(d["sites"][0])), "sites[1] ('act') repeats sites[0]"),
    "n_images_half": (_set(("n_images",), 2.5), "n_images = 2.5 must be a whole number"),
    "eps_inf": (_set(("eps",), float("inf")), "eps = inf must be a finite number"),
}


@pytest.mark.parametrize("name", sorted(SCORES))
def test_bad_scores(work: Path, name: str) -> None:
    edit, needle = SCORES[name]
    scores = work / f"{name}.json"
    scores.write_text(_scores(edit))
    line = _expect_bad(work, ["graft", str(work / "tiny_ok.onnx"), "--data", str(work / "data_ok.npz"),
                              "--scores", str(scores), "-o", str(work / "out" / "g.onnx")], needle)
    assert f"{name}.json" in line


def test_good_scores_still_load(work: Path) -> None:
    scores = work / "ok.json"
    scores.write_text(_scores())
    res = _invoke(["plan", str(work / "tiny_ok.onnx"), "--data", str(work / "data_ok.npz"), "--scores", str(scores),
                   "-o", str(work / "out" / "p.json")])
    assert res.exit_code == 0, res.stderr


# --- VNN-LIB boxes ---------------------------------------------------------------------
VNNLIBS = {
    "nan": (GOOD_VNNLIB.replace("(assert (<= X_3 0.6))", "(assert (<= X_3 nan))"), "the bound nan of x_3 is nan"),
    "1e400": (GOOD_VNNLIB.replace("(assert (>= X_3 0.4))", "(assert (>= X_3 1e400))"), "1e400 of x_3 is infinite"),
    "1e39": (GOOD_VNNLIB.replace("(assert (<= X_3 0.6))", "(assert (<= X_3 1e39))"), "1e39 of x_3 overflows float32"),
    "neg_inf": (GOOD_VNNLIB.replace("(assert (>= X_3 0.4))", "(assert (>= X_3 (- inf)))"), "of x_3 is infinite"),
    "lo_gt_hi": (GOOD_VNNLIB.replace("(assert (>= X_3 0.4))", "(assert (>= X_3 0.7))"), "box of x_3 is empty"),
}


def _bench(work: Path, text: str) -> Path:
    root = work / "bench"
    (root / "onnx").mkdir(parents=True)
    (root / "vnnlib").mkdir()
    shutil.copy(CORPUS / "tiny_ok.onnx", root / "onnx" / "tiny_ok.onnx")
    (root / "instances.csv").write_text("onnx/tiny_ok.onnx,vnnlib/p.vnnlib,10\n")
    (root / "vnnlib" / "p.vnnlib").write_text(text)
    return root


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("cmd", ["verify", "report"])
@pytest.mark.parametrize("name", sorted(VNNLIBS))
def test_bad_vnnlib_box(work: Path, name: str, cmd: str) -> None:
    text, needle = VNNLIBS[name]
    root = _bench(work, text)
    journal = work / "out" / "results.jsonl"
    journal.write_text("" if cmd == "verify" else json.dumps(
        {"instance": "onnx/tiny_ok.onnx::vnnlib/p.vnnlib", "model": "onnx/tiny_ok.onnx", "vnnlib": "vnnlib/p.vnnlib",
         "backend": "lirpa", "verdict": "unsat", "seconds": 1.0}) + "\n")
    args = {"verify": ["verify", str(root), "--results", str(journal), "--no-progress"],
            "report": ["report", str(journal), "--bench", str(root), "-o", str(work / "out" / "report")]}[cmd]
    line = _expect_bad(work, args, needle)
    edited = next(x for x in text.splitlines() if "X_3 " in x and x not in GOOD_VNNLIB.splitlines())
    n = _line_of(text, edited)  # file and line of the offending bound
    assert f"p.vnnlib:{n}:" in line or (name == "lo_gt_hi" and f"(line {n})" in line), line


def test_good_vnnlib_box_is_read() -> None:
    prop = parse_vnnlib(GOOD_VNNLIB)
    assert prop.n_inputs == N_IN and float(prop.upper[3]) == 0.6


@pytest.mark.parametrize("bound, needle", [
    ("1" + "0" * 400 + ".0", "p2.vnnlib:12: a number is beyond float64"),
    ("1" + "0" * 39 + ".0", "upper bound 1e+39 of input 2 (flat X index) overflows float32"),
    ("-0.5", "0 cases: is some lower bound above its upper bound?"),
])
def test_bad_vnnlib2_box(bound: str, needle: str) -> None:
    """VNN-LIB 2.0: the reference parser crashes (IndexError) on 1e400-sized literals; that is BadInput too."""
    pytest.importorskip("vnnlib")
    text = vnnlib2_text(Property(np.zeros(4, np.float32), np.ones(4, np.float32), 0, 3), [1, 4], [1, 3])
    assert "(assert (<= X[0,2] 1.0))" in text
    with pytest.raises(BadInput, match=re.escape(needle)):
        parse_vnnlib2(text.replace("(assert (<= X[0,2] 1.0))", f"(assert (<= X[0,2] {bound}))"), "p2.vnnlib")


@pytest.mark.parametrize("lower, upper, needle", [
    ([0.0, np.inf], [1.0, np.inf], "lower bound of X_1 = inf is infinite"),
    ([0.0, 0.0], [np.nan, 1.0], "upper bound of X_0 = nan is NaN"),
    ([0.0, 0.0], [1.0, 1e39], "X_1 = 1e+39 overflows float32"),
    ([0.0, 0.5], [1.0, 0.25], "box of X_1 is empty"),
])
def test_property_never_holds_a_bad_box(lower: list[float], upper: list[float], needle: str) -> None:
    """The writers (export) only see Property objects, so Property itself refuses what no file may hold."""
    with pytest.raises(BadInput, match=needle.replace("(", r"\(").replace("+", r"\+")):
        Property(np.array(lower), np.array(upper), 0, 3)


# --- weights ---------------------------------------------------------------------------
def _nan_model(work: Path) -> Path:
    m = tiny_model()
    w = numpy_helper.to_array(m.graph.initializer[0]).copy()
    w[2, 5] = np.nan
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "W1"))
    path = work / "nan_weights.onnx"
    onnx.save(m, str(path))
    return path


def test_nan_weights_scan() -> None:
    m = tiny_model()
    assert nonfinite_weights(m) == []
    w = numpy_helper.to_array(m.graph.initializer[2]).copy()
    w[0, :2] = [np.inf, -np.inf]
    m.graph.initializer[2].CopyFrom(numpy_helper.from_array(w, "W2"))
    assert nonfinite_weights(m) == [("initializer 'W2'", 2)]
    m.graph.node.append(onnx.helper.make_node("Constant", [], ["c"], name="k", value=numpy_helper.from_array(
        np.array([1.0, 1e300]), "kv")))  # a double beyond float32 is Inf once the model runs in float32
    assert nonfinite_weights(m) == [("initializer 'W2'", 2), ("Constant node 'k'", 1)]
    with pytest.raises(BadInput, match="initializer 'W2' has 2 NaN/Inf"):
        check_finite_weights(m, "m.onnx")


@pytest.mark.parametrize("cmd", ["graft", "export"])
def test_nan_weights_are_an_error_for_graft_and_export(work: Path, cmd: str) -> None:
    model = _nan_model(work)
    args = {"graft": ["graft", str(model), "--data", str(work / "data_ok.npz"), "-o", str(work / "out" / "g.onnx")],
            "export": ["export", str(model), "--data", str(work / "data_ok.npz"), "--eps", "0.1",
                       "-o", str(work / "out" / "bench")]}[cmd]
    _expect_bad(work, args, "nan_weights.onnx: initializer 'W1' has 1 NaN/Inf value(s)")


def test_nan_weights_are_a_warning_for_inspect(work: Path) -> None:
    res = _invoke(["inspect", str(_nan_model(work))])
    assert res.exit_code == 0, res.stderr
    warns = [x for x in res.stderr.splitlines() if x.startswith("graftonnx: warning:")]
    assert len(warns) == 1 and "initializer 'W1'" in warns[0] and "Traceback" not in res.stderr, res.stderr


# --- manifests (strict already, via graftonnx/settings.py) ------------------------------
MANIFESTS = {
    "ratios_mixed": ("ratios: [0.5, x]", "ratios"),
    "epochs_half": ("finetune: {epochs: 1.5}", "epochs"),
    "instances_bool": ("export: {instances: true, skip: none}", "instances"),
    "timeout_string": ("verify: {timeout: \"20\"}", "timeout"),
}


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_bad_manifest_values(work: Path, name: str) -> None:
    line, needle = MANIFESTS[name]
    man = work / f"{name}.yaml"
    man.write_text(f"models:\n  - path: tiny_ok.onnx\n    data: {{source: data_ok.npz}}\n    {line}\n")
    _check_bad_input(_invoke(["zoo", str(man), "-o", str(work / "zoo")]), needle)
    assert not (work / "zoo").exists()


def test_scores_of_another_model_are_refused() -> None:
    """A score table listing a site this model lacks was computed for another model: one clear error."""
    from dataclasses import replace

    from conftest import model_path

    import graftonnx as g
    from graftonnx.errors import BadInput

    net = str(model_path("mnist-net_256x2"))
    table = g.score(net, None, eps=0.02)
    alien = replace(table, sites=(*table.sites, replace(table.sites[0], site="Relu_elsewhere")))
    with pytest.raises(BadInput, match="site 'Relu_elsewhere', which this model does not have"):
        g.plan(net, None, scores=alien)
