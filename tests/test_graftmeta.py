"""Graft metadata: models grafted by graftonnx 0.1.0 (before graftmeta.py) read and write back byte for byte."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graftonnx.errors import BadInput
from graftonnx.model.graftmeta import (
    GRAFTS_KEY,
    NATIVE_KEY,
    GraftRecord,
    NativeSite,
    metadata,
    read_grafts,
    read_native,
    set_metadata,
    write_grafts,
    write_native,
)
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan
from graftonnx.rewrite.native import native_form

# Written by commit 66c30cf (graftonnx 0.1.0) for PLAN on _two_relus(): the stored format to keep.
OLD_GRAFTS = ('[{"site": "relu", "keep": "relu/graft_keep", "a": "relu/graft_a", "b": "relu/graft_b", '
              '"granularity": "neuron", "count": 1, "fixed": false}, {"site": "relu2", "keep": "relu2/graft_keep", '
              '"a": "relu2/graft_a", "b": "relu2/graft_b", "granularity": "channel", "count": 1, "fixed": true}]')
OLD_NATIVE = '[{"site": "relu", "size": 2, "grafted": 1}, {"site": "relu2", "size": 2, "grafted": 1}]'
RECORDS = (GraftRecord("relu", "relu/graft_keep", "relu/graft_a", "relu/graft_b", "neuron", 1, False),
           GraftRecord("relu2", "relu2/graft_keep", "relu2/graft_a", "relu2/graft_b", "channel", 1, True))
PLAN = GraftPlan((LayerPlan("relu", "neuron", (1,), (0.5,), (2.0,)),
                  LayerPlan("relu2", "channel", (0,), (0.0,), (0.0,), fixed=True)))


def _two_relus() -> onnx.ModelProto:
    eye, zero = np.eye(2, dtype=np.float32), np.zeros(2, np.float32)
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "C"], ["z"], name="gemm"),
         helper.make_node("Relu", ["z"], ["h"], name="relu"),
         helper.make_node("Gemm", ["h", "W2", "C"], ["z2"], name="gemm2"),
         helper.make_node("Relu", ["z2"], ["y"], name="relu2")],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(eye, "W"), numpy_helper.from_array(zero, "C"), numpy_helper.from_array(eye, "W2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _with(meta: dict[str, str]) -> onnx.ModelProto:
    return set_metadata(_two_relus(), meta)


def test_old_metadata_reads_and_writes_back_identically() -> None:
    model = _with({GRAFTS_KEY: OLD_GRAFTS, NATIVE_KEY: OLD_NATIVE})
    assert read_grafts(model) == RECORDS
    assert read_native(model) == (NativeSite("relu", 2, 1), NativeSite("relu2", 2, 1))
    meta: dict[str, str] = {}
    write_grafts(meta, read_grafts(model))
    write_native(meta, read_native(model) or ())
    assert meta == {GRAFTS_KEY: OLD_GRAFTS, NATIVE_KEY: OLD_NATIVE}
    assert read_grafts(_two_relus()) == () and read_native(_two_relus()) is None


def test_graft_and_native_form_write_the_old_format() -> None:
    grafted = apply_plan(_two_relus(), PLAN)
    assert metadata(grafted)[GRAFTS_KEY] == OLD_GRAFTS
    assert read_grafts(grafted, check=True) == RECORDS
    native = metadata(native_form(grafted)[0])
    assert native[NATIVE_KEY] == OLD_NATIVE and native[GRAFTS_KEY] == "[]"


def test_older_records_default_their_optional_fields() -> None:
    model = _with({GRAFTS_KEY: '[{"site": "relu", "keep": "k", "a": "a", "b": "b"}]'})
    assert read_grafts(model) == (GraftRecord("relu", "k", "a", "b", "neuron", 0, False),)


@pytest.mark.parametrize("raw, match", [
    ("{oops", "not valid JSON"),
    ('{"site": "relu"}', "JSON list of objects"),
    ('[{"site": "relu", "keep": "k", "b": "b"}]', "entry #0 lacks 'a': each needs site, keep, a, b"),
    ('[{"site": "relu", "keep": "k", "a": "a", "b": "b", "count": "many"}]', "entry #0 is malformed"),
])
def test_malformed_metadata_is_bad_input(raw: str, match: str) -> None:
    with pytest.raises(BadInput, match=match):
        read_grafts(_with({GRAFTS_KEY: raw}))
