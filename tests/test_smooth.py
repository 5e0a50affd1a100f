"""Sigmoid/Tanh grafting end to end: exact at identity, sound bounds, the torch bridge, scoring and planning.

The nets are small hand-built graphs (flat and convolutional, both activations) with random
weights scaled so pre-activations reach the curved part of the activations, plus a sigmoid
MLP trained on sklearn digits for the command-line run (tests/test_smooth_cli.py).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from graftonnx.bounds.base import BOUND_METHODS
from graftonnx.bounds.stream import chord_gap, eps_box
from graftonnx.errors import BadInput
from graftonnx.model import inspect_model
from graftonnx.model.graftmeta import read_all_grafts, read_grafts, read_smooth
from graftonnx.model.runtime import OrtRunner
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.planning.build import make_plan
from graftonnx.planning.init import fit_smooth_lines
from graftonnx.planning.settings import GraftSettings
from graftonnx.rewrite import apply_plan
from graftonnx.scoring.table import ScoreTable, SiteScore
from graftonnx.torch_bridge import to_torch
from graftonnx.torch_bridge.writeback import write_back

SLACK = 1e-5  # float32 rounding of the sampled forward pass against the bounds


def _gemm(name: str, x: str, w: np.ndarray, b: np.ndarray) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    inits = [numpy_helper.from_array(w.astype(np.float32), f"{name}_w"),
             numpy_helper.from_array(b.astype(np.float32), f"{name}_b")]
    return helper.make_node("Gemm", [x, f"{name}_w", f"{name}_b"], [f"{name}_out"], name=name, transB=1), inits


def flat_net(seed: int = 0) -> onnx.ModelProto:
    """x(6) → Gemm 8 → Sigmoid → Gemm 7 → Tanh → Gemm 3."""
    rng = np.random.default_rng(seed)
    nodes, inits, cur = [], [], "x"
    for i, (n_in, n_out, act) in enumerate(((6, 8, "Sigmoid"), (8, 7, "Tanh"), (7, 3, None))):
        node, ws = _gemm(f"fc{i}", cur, rng.normal(0, 2.0, (n_out, n_in)), rng.normal(0, 0.5, n_out))
        nodes.append(node)
        inits += ws
        cur = node.output[0]
        if act:
            nodes.append(helper.make_node(act, [cur], [f"{act.lower()}{i}_out"], name=f"{act.lower()}{i}"))
            cur = nodes[-1].output[0]
    graph = helper.make_graph(nodes, "smooth", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info(cur, TensorProto.FLOAT, ["N", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model, full_check=True)
    return model


def conv_net(seed: int = 1) -> onnx.ModelProto:
    """x(1, 5, 5) → Conv 3×3 (4 ch) → Tanh → Flatten → Gemm 3."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(0, 1.5, (4, 1, 3, 3)).astype(np.float32), "cw"),
             numpy_helper.from_array(rng.normal(0, 0.3, 4).astype(np.float32), "cb")]
    gemm, ws = _gemm("fc", "flat", rng.normal(0, 1.0, (3, 36)), np.zeros(3))
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["conv"], name="conv", kernel_shape=[3, 3]),
             helper.make_node("Tanh", ["conv"], ["act"], name="tanh"),
             helper.make_node("Flatten", ["act"], ["flat"], name="flatten"), gemm]
    graph = helper.make_graph(nodes, "smoothconv",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 5, 5])],
                              [helper.make_tensor_value_info("fc_out", TensorProto.FLOAT, ["N", 3])], inits + ws)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model, full_check=True)
    return model


def _inputs(model: onnx.ModelProto, n: int, seed: int = 0) -> np.ndarray:
    shape = inspect_model(model).input.sample_shape
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype(np.float32)


def _half_plan(model: onnx.ModelProto, x: np.ndarray, granularity: str = "neuron") -> GraftPlan:
    """Every other unit of every smooth site, as its least-squares line over ``x``."""
    info = inspect_model(model)
    acts = OrtRunner(model, [s.input for s in info.smooth]).run(x)
    layers = []
    for s in info.smooth:
        units = s.channels if granularity == "channel" else s.size
        idx = np.arange(0, units, 2)
        z = acts[s.input].reshape(len(x), units, -1)[:, idx, :]
        a, b = fit_smooth_lines(z, s.op)
        layers.append(LayerPlan(s.name, granularity, tuple(int(i) for i in idx), tuple(map(float, a)),
                                tuple(map(float, b))))
    return GraftPlan(tuple(layers))


def _set_inits(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for t in out.graph.initializer:
        if t.name in values:
            t.CopyFrom(numpy_helper.from_array(values[t.name].astype(np.float32), t.name))
    return out


# ---------------------------------------------------------------- sites and the rewrite
def test_inspect_lists_smooth_sites_with_their_op() -> None:
    info = inspect_model(flat_net())
    assert info.relus == ()
    assert [(s.name, s.op, s.producer, s.shape) for s in info.smooth] == [
        ("sigmoid0", "Sigmoid", "Gemm", (8,)), ("tanh1", "Tanh", "Gemm", (7,))]
    assert info.n_neurons == 15 and info.to_dict()["n_smooth_neurons"] == 15


@pytest.mark.parametrize("make, granularity", [(flat_net, "neuron"), (conv_net, "channel"), (conv_net, "neuron")])
def test_smooth_graft_is_exact_at_identity_parameters(make, granularity) -> None:
    """keep = 1, a = b = 0 gives the original network bit for bit; grafted units compute a·z + b."""
    model = make()
    x = _inputs(model, 64)
    plan = _half_plan(model, x, granularity)
    grafted = apply_plan(model, plan)
    records = read_smooth(grafted, check=True)
    assert [r.site for r in records] == [lp.site for lp in plan.layers] and read_grafts(grafted) == ()
    inits = {t.name: numpy_helper.to_array(t) for t in grafted.graph.initializer}
    identity = {n: np.ones_like(inits[r.keep]) if n == r.keep else np.zeros_like(inits[n])
                for r in records for n in (r.keep, r.a, r.b)}
    ref = OrtRunner(model).logits(x)
    np.testing.assert_array_equal(OrtRunner(_set_inits(grafted, identity)).logits(x), ref)
    # the grafted form itself: kept units exact, grafted ones the line (numpy reference)
    info = inspect_model(model)
    outs = OrtRunner(grafted, [s.input for s in info.smooth] + [s.output for s in info.smooth]).run(x)
    for s, lp in zip(info.smooth, plan.layers, strict=True):
        z = outs[s.input].reshape(len(x), lp.units(s.shape), -1)
        y = outs[s.output].reshape(z.shape)
        act = np.tanh(z) if s.op == "Tanh" else 1 / (1 + np.exp(-z.astype(np.float64)))
        mask = np.zeros(z.shape[1], bool)
        mask[list(lp.indices)] = True
        np.testing.assert_allclose(y[:, ~mask], act[:, ~mask], atol=1e-6)  # kept: the activation of its z
        line = np.asarray(lp.a)[None, :, None] * z[:, mask] + np.asarray(lp.b)[None, :, None]
        np.testing.assert_allclose(y[:, mask], line, atol=1e-6)


def test_smooth_graft_refuses_bad_plans() -> None:
    model = flat_net()
    grafted = apply_plan(model, _half_plan(model, _inputs(model, 16)))
    with pytest.raises(BadInput, match="already grafted"):
        apply_plan(grafted, GraftPlan((LayerPlan("tanh1", "neuron", (1,), (0.5,), (0.0,)),)))
    with pytest.raises(BadInput, match="no Relu node .*Sigmoid/Tanh"):
        apply_plan(model, GraftPlan((LayerPlan("fc0", "neuron", (0,), (1.0,), (0.0,)),)))
    with pytest.raises(BadInput, match="outside"):
        apply_plan(model, GraftPlan((LayerPlan("tanh1", "neuron", (7,), (1.0,), (0.0,)),)))


def test_fit_smooth_lines_is_the_least_squares_line() -> None:
    z = np.random.default_rng(3).normal(0.5, 2.0, (200, 3, 1))
    for op, f in (("Sigmoid", lambda v: 1 / (1 + np.exp(-v))), ("Tanh", np.tanh)):
        a, b = fit_smooth_lines(z, op)
        for u in range(3):
            slope, icept = np.polyfit(z[:, u, 0], f(z[:, u, 0]), 1)
            assert abs(a[u] - slope) < 1e-9 and abs(b[u] - icept) < 1e-9
    a, b = fit_smooth_lines(np.full((5, 1, 1), 2.0), "Tanh")  # never varies: exact constant
    assert a[0] == 0.0 and b[0] == pytest.approx(np.tanh(2.0))
    with pytest.raises(BadInput, match="only Sigmoid and Tanh"):
        fit_smooth_lines(z, "Relu")


# ---------------------------------------------------------------- bounds
def _samples(lo: np.ndarray, hi: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, 1, (k, *lo.shape)).astype(np.float32)
    t[:2] = np.array([0, 1], np.float32).reshape(2, *([1] * lo.ndim))  # both corners
    return (lo + t * (hi - lo)).reshape(-1, *lo.shape[1:])


@pytest.mark.parametrize("method", ["ibp", "crown"])
@pytest.mark.parametrize("make", [flat_net, conv_net])
def test_smooth_bounds_are_sound_under_sampled_points(make, method) -> None:
    """Pre-activation bounds of every site (original and grafted) hold sampled points of each box."""
    rng = np.random.default_rng(7)
    base = make()
    for model in (base, apply_plan(base, _half_plan(base, _inputs(base, 32)))):
        info = inspect_model(model)
        x = _inputs(model, 4, seed=2)
        lo, hi = eps_box(x, 0.1, (0.0, 1.0))
        bounds = BOUND_METHODS.get(method)(model, lo, hi, info.smooth)
        acts = OrtRunner(model, [s.input for s in info.smooth]).run(_samples(lo, hi, 200, rng))
        for s in info.smooth:
            v = acts[s.input].reshape(-1, len(x), *s.shape)
            b = bounds[s.name]
            assert (b.lower - v).max() <= SLACK and (v - b.upper).max() <= SLACK, (method, s.name)
            assert (b.upper - b.lower).max() > 0


def test_crown_is_no_looser_than_ibp_on_smooth_sites() -> None:
    model = flat_net()
    info = inspect_model(model)
    lo, hi = eps_box(_inputs(model, 4), 0.1, (0.0, 1.0))
    ibp, crown = (BOUND_METHODS.get(m)(model, lo, hi, info.smooth) for m in ("ibp", "crown"))
    last = info.smooth[-1].name
    assert (crown[last].lower >= ibp[last].lower - 1e-5).all() and (crown[last].upper <= ibp[last].upper + 1e-5).all()
    assert (crown[last].upper - crown[last].lower).sum() < (ibp[last].upper - ibp[last].lower).sum()


def test_chord_gap_is_zero_on_points_and_grows_with_the_interval() -> None:
    lo = np.zeros(4)
    assert (chord_gap("Sigmoid", lo, lo) == 0).all()
    gaps = chord_gap("Tanh", -np.array([0.1, 0.5, 1.0, 3.0]), np.array([0.1, 0.5, 1.0, 3.0]))
    assert (np.diff(gaps) > 0).all() and gaps[0] < 1e-3
    # sigmoid is concave on [0, 4]: the gap is max σ(z) − chord(z), found on a fine grid
    z = np.linspace(0, 4, 4001)
    chord = 0.5 + z / 4 * (1 / (1 + np.exp(-4)) - 0.5)
    assert chord_gap("Sigmoid", np.zeros(1), np.full(1, 4.0))[0] == pytest.approx((1 / (1 + np.exp(-z)) - chord)
                                                                                  .max(), rel=1e-2)


# ---------------------------------------------------------------- torch bridge
def test_torch_bridge_trains_smooth_lines_and_writes_them_back() -> None:
    model = flat_net()
    x = _inputs(model, 32)
    grafted = apply_plan(model, _half_plan(model, x))
    module = to_torch(grafted).eval()
    with torch.no_grad():
        out = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, OrtRunner(grafted).logits(x), atol=1e-5)
    lines = list(module.graft_parameters())
    assert len(lines) == 4 and all(p.requires_grad for p in lines)
    loss = module(torch.from_numpy(x)).square().sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lines)
    with torch.no_grad():
        for p in lines:
            p.add_(0.05)
    tuned = write_back(grafted, module)
    records = read_all_grafts(tuned, check=True)  # a and b stay zero where keep = 1
    inits = {t.name: numpy_helper.to_array(t) for t in tuned.graph.initializer}
    old = {t.name: numpy_helper.to_array(t) for t in grafted.graph.initializer}
    for r in records:
        np.testing.assert_array_equal(inits[r.keep], old[r.keep])
        grafted_units = inits[r.keep] == 0
        np.testing.assert_allclose(inits[r.a][grafted_units], old[r.a][grafted_units] + 0.05, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), OrtRunner(tuned).logits(x), atol=1e-5)


# ---------------------------------------------------------------- scoring and planning
def _table(model: onnx.ModelProto, loose: dict[str, np.ndarray], sig: dict[str, np.ndarray]) -> ScoreTable:
    info = inspect_model(model)
    return ScoreTable(tuple(SiteScore(s.name, s.shape, loose[s.name], sig[s.name], 0.0) for s in info.smooth),
                      0.1, "ibp", "grad", 8, "test")


def test_plan_on_a_smooth_net_grafts_the_loosest_units_with_least_squares_lines() -> None:
    model = flat_net()
    info = inspect_model(model)
    x = _inputs(model, 50)
    outs = OrtRunner(model, [s.input for s in info.smooth]).run(x)
    acts = {s.name: outs[s.input].reshape(len(x), -1) for s in info.smooth}
    loose = {s.name: np.arange(s.size, dtype=float) for s in info.smooth}
    sig = {s.name: np.ones(s.size) for s in info.smooth}
    settings = GraftSettings(criterion="instability", count=4, init="const", scope="per-layer")
    plan = make_plan(_table(model, loose, sig), info, settings, activations=acts)
    for lp, s in zip(plan.layers, info.smooth, strict=True):
        assert sorted(lp.indices) == list(range(s.size - 4, s.size))  # highest looseness first
        a, b = fit_smooth_lines(acts[s.name].reshape(len(x), -1, 1)[:, list(lp.indices)], s.op)
        np.testing.assert_allclose(lp.a, a)
        np.testing.assert_allclose(lp.b, b)
    with pytest.raises(BadInput, match="needs observed pre-activations"):
        make_plan(_table(model, loose, sig), info, settings)


# ---------------------------------------------------------------- verifier-ready form
def test_smooth_native_form_splits_rows_out_of_the_activation_exactly() -> None:
    from graftonnx.rewrite.native import native_form

    model = flat_net()
    x = _inputs(model, 64)
    grafted = apply_plan(model, _half_plan(model, x))
    native, rep = native_form(grafted)
    assert [s.split(":")[0] for s in rep.split] == ["sigmoid0", "tanh1"] and read_smooth(native) == ()
    assert {n.op_type for n in native.graph.node} == {"Gemm", "Sigmoid", "Tanh", "Concat"}
    assert [s.size for s in inspect_model(native).smooth] == [4, 3]  # only the kept units are activated
    probe = np.concatenate([x, _inputs(model, 64, seed=9) * 3 - 1])
    np.testing.assert_allclose(OrtRunner(native).logits(probe), OrtRunner(grafted).logits(probe), atol=1e-5)
    # CROWN on the split form is as tight as on the mask form (same linear rows, same relaxations)
    from graftonnx._lirpa import lirpa_model
    from graftonnx.bench.spec import Property
    from graftonnx.verify.backends.lirpa import margin_lower_bounds

    lo, hi = eps_box(x[:3], 0.05, (0.0, 1.0))
    for i in range(3):
        prop = Property(lo[i].astype(np.float64), hi[i].astype(np.float64), 0, 3)
        masked, split = (margin_lower_bounds(lirpa_model(m), prop, "CROWN") for m in (grafted, native))
        np.testing.assert_allclose(split, masked, atol=1e-4)
    conv = conv_net()
    _, rep = native_form(apply_plan(conv, _half_plan(conv, _inputs(conv, 16), "channel")))
    assert rep.skipped and "not a per-neuron" in rep.skipped[0]  # conv feature maps stay in mask form


def mixed_net(seed: int = 4) -> onnx.ModelProto:
    """x(5) → Gemm 6 → Relu → Gemm 6 → Sigmoid → Gemm 2: both kinds of site in one net."""
    rng = np.random.default_rng(seed)
    g0, w0 = _gemm("fc0", "x", rng.normal(0, 1.5, (6, 5)), rng.normal(0, 0.3, 6))
    g1, w1 = _gemm("fc1", "r0", rng.normal(0, 1.5, (6, 6)), rng.normal(0, 0.3, 6))
    g2, w2 = _gemm("fc2", "s1", rng.normal(0, 1.0, (2, 6)), np.zeros(2))
    nodes = [g0, helper.make_node("Relu", ["fc0_out"], ["r0"], name="relu0"), g1,
             helper.make_node("Sigmoid", ["fc1_out"], ["s1"], name="sigmoid1"), g2]
    graph = helper.make_graph(nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
                              [helper.make_tensor_value_info("fc2_out", TensorProto.FLOAT, ["N", 2])], w0 + w1 + w2)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_relu_and_smooth_grafts_live_together() -> None:
    model = mixed_net()
    info = inspect_model(model)
    assert [s.name for s in info.sites] == ["relu0", "sigmoid1"]
    x = _inputs(model, 32)
    plan = GraftPlan((LayerPlan("relu0", "neuron", (0, 3), (0.4, 0.5), (0.0, 0.1)),) + _half_plan(model, x).layers)
    grafted = apply_plan(model, plan)
    assert [r.site for r in read_grafts(grafted, check=True)] == ["relu0"]
    assert [r.site for r in read_smooth(grafted, check=True)] == ["sigmoid1"]
    module = to_torch(grafted).eval()
    assert len(list(module.graft_parameters())) == 4
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), OrtRunner(grafted).logits(x), atol=1e-5)
    lo, hi = eps_box(x[:3], 0.1, (0.0, 1.0))
    sites = inspect_model(grafted).sites  # the grafted Relu reads its shifted input
    bounds = BOUND_METHODS.get("crown")(grafted, lo, hi, sites)
    acts = OrtRunner(grafted, [s.input for s in sites]).run(_samples(lo, hi, 100, np.random.default_rng(0)))
    for s in sites:
        v = acts[s.input].reshape(-1, 3, *s.shape)
        assert (bounds[s.name].lower - v).max() <= SLACK and (v - bounds[s.name].upper).max() <= SLACK, s.name
