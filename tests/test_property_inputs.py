"""Property tests: random malformed plans and manifests give exit 2 (one line) or exactly what they say.

Why hypothesis: a hand-written corpus covers the mistakes we thought of; random structure
(wrong types, NaN, 1e39, 0.5 indices, unknown keys and sites, duplicates) finds the ones we
did not.  The oracle for an accepted plan is the artifact itself: the grafted model's
keep / a / b initialisers must hold exactly the plan's units and float32 values.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from graftonnx.cli import main
from graftonnx.errors import BadInput
from graftonnx.model.graftmeta import read_grafts
from graftonnx.zoo import load_manifest

TINY = Path(__file__).resolve().parent / "bad_inputs" / "tiny_ok.onnx"  # one Relu site 'act' of 6 neurons
_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.just(1e39), st.just(0.5),
                    st.integers(-3, 8))
_JUNK = st.one_of(st.none(), st.booleans(), st.text(max_size=3), _NUMBER)
_INDEX = st.one_of(st.integers(-2, 8), st.just(0.5), st.just("3"), st.booleans())


def _layer() -> st.SearchStrategy[dict]:
    n = st.integers(0, 4)
    return n.flatmap(lambda k: st.fixed_dictionaries(
        {"site": st.sampled_from(["act", "act", "nope", 3]), "granularity": st.sampled_from(["neuron", "neuron", "x"]),
         "indices": st.lists(_INDEX, min_size=k, max_size=k), "a": st.lists(_NUMBER, min_size=k, max_size=k + 1),
         "b": st.lists(_NUMBER, min_size=k, max_size=k)},
        optional={"fixed": _JUNK, "colour": _JUNK}))


_PLAN = st.fixed_dictionaries({"format": st.sampled_from(["graftonnx-plan"] * 4 + ["plan"]),
                               "version": st.sampled_from([1, 1, 1, 2]),
                               "layers": st.lists(_layer(), max_size=2)},
                              optional={"provenance": st.one_of(st.just({}), st.dictionaries(
                                  st.sampled_from(["eps", "ratio", "criterion", "colour"]), _JUNK, max_size=2))})


def _grafted(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t).ravel() for t in model.graph.initializer}
    return {r.site: (inits[r.keep], inits[r.a], inits[r.b]) for r in read_grafts(model)}


def _matches(plan: dict, out: Path) -> None:
    """An accepted plan was exactly valid (no coercion) and the artifact agrees with it unit by unit, in float32."""
    for lp in plan["layers"]:
        assert set(lp) <= {"site", "granularity", "indices", "a", "b", "fixed"}, lp  # unknown keys refused
        assert all(type(i) is int for i in lp["indices"]), lp  # 0.5, "3", True are not indices
        assert all(type(v) in (int, float) and np.isfinite(np.float32(v)) for v in lp["a"] + lp["b"]), lp
        assert type(lp.get("fixed", False)) is bool, lp
    got = _grafted(out)
    layers = [lp for lp in plan["layers"] if lp["indices"]]
    assert set(got) == {lp["site"] for lp in layers}
    for lp in layers:
        keep, a, b = got[lp["site"]]
        idx = np.array(lp["indices"], dtype=np.int64)
        assert np.all(keep[idx] == 0) and np.sum(keep == 0) == len(idx)
        assert np.array_equal(a[idx], np.float32(lp["a"])) and np.array_equal(b[idx], np.float32(lp["b"]))


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(plan=_PLAN)
def test_random_plans_fail_cleanly_or_graft_exactly_what_they_say(plan: dict, tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    p, out = folder / "p.json", folder / "g.onnx"
    p.write_text(json.dumps(plan))  # NaN/inf become the JSON extensions NaN/Infinity: a user can write them
    res = CliRunner().invoke(main, ["graft", str(TINY), "--plan", str(p), "--n", "8", "-o", str(out),
                                    "--no-progress"])
    assert "Traceback" not in res.output and not isinstance(res.exception, (AssertionError, TypeError, KeyError,
                                                                             IndexError, ValueError))
    if res.exit_code == 0:
        _matches(plan, out)
    else:
        errors = [x for x in res.output.splitlines() if x.startswith("graftonnx: error:")]
        assert res.exit_code == 2 and len(errors) == 1, res.output
        assert not out.exists() and not list(folder.glob(".*.tmp"))


_VALUE = st.one_of(_JUNK, st.lists(_NUMBER, max_size=3), st.dictionaries(st.sampled_from(["n", "epochs", "x"]),
                                                                        _JUNK, max_size=2))
_KEYS = ["eps", "ratios", "criterion", "init", "seed", "data", "finetune", "export", "verify", "modles", "layers"]
_MANIFEST = st.fixed_dictionaries(
    {"models": st.lists(st.fixed_dictionaries({"path": st.sampled_from(["a.onnx", "b.onnx"])},
                                              optional={k: _VALUE for k in _KEYS[:6]}), max_size=2)},
    optional={"defaults": st.dictionaries(st.sampled_from(_KEYS), _VALUE, max_size=3), "extra": _JUNK})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_MANIFEST)
@example(raw={"models": [{"path": "a.onnx"}], "defaults": {"finetune": 1e39}})  # found by this test: a TypeError
def test_random_manifests_parse_or_fail_with_one_line(raw: dict, tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True))
    try:
        man = load_manifest(p)
    except BadInput as exc:
        assert "\n" not in exc.message and str(p) in exc.message
        return
    for raw_entry, entry in zip(raw["models"], man.entries, strict=True):  # accepted: it says what was written
        eps = raw_entry.get("eps", (raw.get("defaults") or {}).get("eps"))
        if eps is not None:
            assert math.isclose(entry.graft.eps, eps)
        seed = raw_entry.get("seed", (raw.get("defaults") or {}).get("seed"))
        if seed is not None:
            assert entry.graft.seed == seed and isinstance(seed, int) and not isinstance(seed, bool)
