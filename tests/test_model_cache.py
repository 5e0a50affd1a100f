"""The one model cache (graftonnx.model.handle): shared derived objects, invalidated by a rewritten file, bounded.

Why these tests: interval sessions, auto_LiRPA modules and the verifier's objects used to
live in four caches with four keys, and the lirpa verifier changed the bound options of
the auto_LiRPA module that CROWN scoring also used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graftonnx.bench.spec import Property
from graftonnx.bounds.base import BOUND_METHODS
from graftonnx.bounds.ibp_ort import interval_runner
from graftonnx.errors import BadInput
from graftonnx.model import handle
from graftonnx.model.handle import content_handle, open_model
from graftonnx.model.info import inspect_model
from graftonnx.model.loader import load_model
from graftonnx.verify.cexcheck import onnx_logits
from tests.conftest import model_path


def _mlp(scale: float) -> onnx.ModelProto:
    """A 4 → 3 → Relu → 2 net whose weights are ``scale`` times a fixed matrix."""
    w1 = numpy_helper.from_array((scale * np.arange(12, dtype=np.float32).reshape(4, 3) - 5), "w1")
    w2 = numpy_helper.from_array(np.ones((3, 2), np.float32), "w2")
    nodes = [helper.make_node(op, ins, [out], name=out) for op, ins, out in
             (("MatMul", ["x", "w1"], "h"), ("Relu", ["h"], "r"), ("MatMul", ["r", "w2"], "y"))]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w1, w2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_scoring_and_the_lirpa_verifier_cannot_change_each_others_options(tmp_path: Path) -> None:
    from graftonnx._lirpa import lirpa_model
    from graftonnx.verify.backends.lirpa import _net, margin_lower_bounds

    path = tmp_path / "net.onnx"
    path.write_bytes(model_path("mnist-net_256x2").read_bytes())
    model = load_model(path)
    sites = inspect_model(model).relus
    x = np.random.default_rng(0).uniform(0, 1, (2, *inspect_model(model).input.sample_shape)).astype(np.float32)
    lo, hi = np.clip(x - 0.02, 0, 1), np.clip(x + 0.02, 0, 1)
    scoring = lirpa_model(model)
    lr = scoring.module.bound_opts["optimize_bound_args"]["lr_alpha"]
    before = BOUND_METHODS.get("crown")(model, lo, hi, sites)
    verifier = _net(path)
    prop = Property(lo[0].ravel(), hi[0].ravel(), 0, 10)
    margin_lower_bounds(verifier, prop, "CROWN-Optimized")  # the α-CROWN run that used to retune scoring's module
    assert verifier is _net(path) and lirpa_model(model) is scoring  # shared, built once each
    assert verifier.module is not scoring.module
    assert verifier.module.bound_opts["optimize_bound_args"]["lr_alpha"] == 0.1
    assert scoring.module.bound_opts["optimize_bound_args"]["lr_alpha"] == lr != 0.1
    assert verifier.module.bound_opts["conv_mode"] == scoring.module.bound_opts["conv_mode"]
    assert list(verifier.inputs) == list(scoring.inputs) == [s.name for s in sites]
    after = BOUND_METHODS.get("crown")(model, lo, hi, sites)
    for s in sites:
        np.testing.assert_array_equal(before[s.name].lower, after[s.name].lower)
        np.testing.assert_array_equal(before[s.name].upper, after[s.name].upper)
    opts = {"optimize_bound_args": {"iteration": 3}}
    mine = lirpa_model(model, opts)
    opts["optimize_bound_args"]["iteration"] = 7  # the caller's dict is not the module's
    assert mine.module.bound_opts["optimize_bound_args"]["iteration"] == 3
    assert lirpa_model(model, {"optimize_bound_args": {"iteration": 3}}) is mine


def test_a_rewritten_file_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(_mlp(1.0).SerializeToString())
    first = open_model(path)
    assert open_model(path) is first and open_model(str(path)) is first
    y1 = onnx_logits(path, np.ones(4))
    path.write_bytes(_mlp(2.0).SerializeToString())  # same size: only the mtime tells
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = open_model(path)
    assert second is not first
    y2 = onnx_logits(path, np.ones(4))
    assert not np.allclose(y1, y2)
    np.testing.assert_allclose(y2, second.runner.logits(np.ones((1, 4), np.float32)).ravel())


def test_the_cache_stays_bounded_and_eviction_drops_derived_objects(tmp_path: Path) -> None:
    protos = [_mlp(1.0 + k) for k in range(handle._CACHE_SIZE + 3)]
    runners = [interval_runner(p, ["h"]) for p in protos]
    assert len(handle._cache) <= handle._CACHE_SIZE
    assert interval_runner(protos[-1], ["h"]) is runners[-1]
    assert interval_runner(protos[0], ["h"]) is not runners[0]  # its handle was evicted, and the runner with it
    h = content_handle(protos[-1])
    for k in range(handle._DERIVED_SIZE + 2):
        h.derived(("probe", k), lambda: object())
    assert len(h._derived) <= handle._DERIVED_SIZE
    paths = []
    for k in range(handle._CACHE_SIZE + 1):
        paths.append(tmp_path / f"m{k}.onnx")
        paths[-1].write_bytes(protos[k].SerializeToString())
        open_model(paths[-1])
    assert len(handle._cache) <= handle._CACHE_SIZE


def test_content_handles_copy_the_proto() -> None:
    proto = _mlp(1.0)
    h = content_handle(proto)
    assert h.proto is not proto and content_handle(proto) is h
    proto.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.zeros((4, 3), np.float32), "w1"))
    assert content_handle(proto) is not h  # new content, new handle; the old one keeps the old weights
    assert numpy_helper.to_array(h.proto.graph.initializer[0]).any()
    with pytest.raises(BadInput):
        open_model(Path("/nonexistent/model.onnx"))
