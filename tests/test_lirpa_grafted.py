"""Regression: auto_LiRPA CROWN through grafted lines, including a layer whose Relu was removed.

auto_LiRPA 0.6.0 asserted in ``BoundAdd`` backward when a graft constant had a leading
batch axis (1, n) and its Add fed a Gemm; the rewrite now writes per-image shapes.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import graftonnx.api as g
from graftonnx.bounds import eps_box
from graftonnx.bounds.base import BOUND_METHODS
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite.fold import remove_full_relus
from tests.conftest import model_path


def test_crown_margins_through_removed_relu_layer():
    model = g.load(model_path("mnist-net_256x2"))
    info = g.inspect(model)
    first, second = info.relus
    plan = GraftPlan((LayerPlan(first.name, "neuron", (0, 5, 9), (0.5,) * 3, (0.1,) * 3),
                      LayerPlan(second.name, "neuron", tuple(range(second.size)), (0.4,) * second.size,
                                (0.0,) * second.size)))
    simplified, report = remove_full_relus(g.graft(model, plan=plan).model)
    assert report.to_dict()
    x = np.random.default_rng(0).uniform(0, 1, (2, *info.input.sample_shape)).astype(np.float32)
    lo, hi = eps_box(x, 0.01, (0.0, 1.0))
    sites = g.inspect(simplified).relus
    crown = BOUND_METHODS.get("crown")(simplified, lo, hi, sites)
    ibp = BOUND_METHODS.get("ibp")(simplified, lo, hi, sites)
    for s in sites:
        assert np.all(np.isfinite(crown[s.name].lower))
        assert np.all(crown[s.name].lower >= ibp[s.name].lower - 1e-4)


def test_lirpa_backend_margins_on_simplified_graft(tmp_path):
    from graftonnx.bench.spec import Property
    from graftonnx.verify.backends.lirpa import _net, margin_lower_bounds

    model = g.load(model_path("mnist-net_256x2"))
    info = g.inspect(model)
    second = info.relus[1]
    plan = GraftPlan((LayerPlan(second.name, "neuron", tuple(range(second.size)), (0.4,) * second.size,
                                (0.0,) * second.size),))
    simplified, _ = remove_full_relus(g.graft(model, plan=plan).model)
    path = tmp_path / "s.onnx"
    g.save_model(simplified, path)
    x = np.full(784, 0.5, np.float32)
    prop = Property(np.clip(x - 0.01, 0, 1), np.clip(x + 0.01, 0, 1), 3, 10)
    lb = margin_lower_bounds(_net(path), prop, "CROWN")
    assert lb.shape == (9,) and np.all(np.isfinite(lb))


def test_crown_when_the_last_relu_layer_left_is_a_conv_one():
    """auto_LiRPA 0.6.0's compare_with_IBP fails when bounding stops at a feature map: stop at the output then."""
    model = g.load(model_path("resnet_2b"))
    info = g.inspect(model)
    fc = info.relus[-1]
    plan = GraftPlan((LayerPlan(fc.name, "neuron", tuple(range(fc.size)), (0.5,) * fc.size, (0.0,) * fc.size),))
    simplified, report = remove_full_relus(g.graft(model, plan=plan).model)
    assert report.removed == (fc.name,)
    x = np.random.default_rng(0).uniform(-1, 1, (2, *info.input.sample_shape)).astype(np.float32)
    sites = g.inspect(simplified).relus
    crown = BOUND_METHODS.get("crown")(simplified, x - 0.01, x + 0.01, sites)
    ibp = BOUND_METHODS.get("ibp")(simplified, x - 0.01, x + 0.01, sites)
    for s in sites:
        assert np.all(crown[s.name].lower >= ibp[s.name].lower - 1e-4)
        assert np.all(crown[s.name].lower <= crown[s.name].upper + 1e-6)


@pytest.mark.slow
def test_per_neuron_conv_graft_bounds_in_patches_mode_equal_matrix_mode(monkeypatch):
    """graftonnx._lirpa_patches: full-shape Mul/Add constants on feature maps, sound and equal to matrix mode."""
    import graftonnx._lirpa as lirpa
    from graftonnx.model import handle
    from graftonnx.model.runtime import OrtRunner

    model = g.load(model_path("resnet_2b"))
    info = g.inspect(model)
    layers = [LayerPlan(s.name, "neuron", tuple(range(0, s.size, 3)), (0.3,) * len(range(0, s.size, 3)),
                        (0.05,) * len(range(0, s.size, 3))) for s in info.relus[:3]]
    grafted = g.graft(model, plan=GraftPlan(tuple(layers))).model
    x = np.random.default_rng(1).uniform(-1, 1, (1, *info.input.sample_shape)).astype(np.float32)
    lo, hi = x - 0.01, x + 0.01
    assert lirpa.lirpa_model(grafted).module.bound_opts["conv_mode"] == "patches"
    patches = lirpa.lirpa_bounds(grafted, lo, hi, info.relus, "CROWN")
    monkeypatch.setattr(lirpa, "_conv_mode", lambda m, s: "matrix")
    monkeypatch.setattr(handle, "_cache", OrderedDict())  # forget the patches-mode module
    matrix = lirpa.lirpa_bounds(grafted, lo, hi, info.relus, "CROWN")
    pts = lo[None] + (hi - lo)[None] * np.random.default_rng(2).uniform(size=(32, *lo.shape)).astype(np.float32)
    relu_in = {s.name: s.input for s in g.inspect(grafted).relus}  # z·keep + 0 for grafted sites
    pre = OrtRunner(grafted, extra=list(relu_in.values())).run(pts.reshape(-1, *lo.shape[1:]))
    for s in info.relus:
        a, b = patches[s.name], matrix[s.name]
        np.testing.assert_allclose(a.lower, b.lower, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(a.upper, b.upper, atol=1e-5, rtol=1e-5)
        z = pre[relu_in[s.name]].reshape(32, *a.lower.shape)
        assert np.all(z >= a.lower - 1e-5) and np.all(z <= a.upper + 1e-5)
