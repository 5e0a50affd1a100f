"""The verifier-ready form: exact, patches mode in the embedded auto_LiRPA, same bounds, written by export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import model_path

from graftonnx._lirpa import lirpa_model
from graftonnx.bench.export import NATIVE_RTOL
from graftonnx.bench.spec import Property
from graftonnx.cli import main
from graftonnx.model import LINEAR_PRODUCERS, inspect_model, load_model
from graftonnx.model.graftmeta import NativeSite, read_grafts, read_native
from graftonnx.model.runtime import tensor_shapes
from graftonnx.parity import compare, ort_callable, random_inputs
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan
from graftonnx.rewrite.native import native_form, spatial_mask_ops
from graftonnx.verify.backends.lirpa import _net, margin_lower_bounds

MEAN, STD = "0.4914,0.4822,0.4465", "0.2471,0.2435,0.2616"


def _channel_plan(info, full: int | None = None, neuron_site: int | None = None) -> GraftPlan:
    """Every other channel of every site grafted (site ``full``: all of it; ``neuron_site``: per neuron)."""
    layers = []
    for k, s in enumerate(info.relus):
        gran = "neuron" if k == neuron_site else "channel"
        units = s.size if gran == "neuron" else s.channels
        idx = tuple(range(units)) if k == full else tuple(range(0, units, 2))
        rng = np.random.default_rng(k)
        layers.append(LayerPlan(s.name, gran, idx, tuple(rng.uniform(0.1, 0.9, len(idx))),
                                tuple(rng.uniform(-0.2, 0.2, len(idx)))))
    return GraftPlan(tuple(layers))


@pytest.fixture(scope="module")
def resnet_pair() -> tuple[onnx.ModelProto, onnx.ModelProto, object]:
    m = load_model(model_path("resnet_2b"))
    info = inspect_model(m)
    grafted = apply_plan(m, _channel_plan(info, full=2), info)
    native, rep = native_form(grafted)
    return grafted, native, rep


def _kept_neurons(info, plan: GraftPlan) -> int:
    n = 0
    for s in info.relus:
        lp = plan.layer(s.name)
        n += s.size if lp is None else s.size - lp.count * (s.size // lp.units(s.shape))
    return n


def test_native_resnet_is_exact_and_conv_only(resnet_pair) -> None:
    grafted, native, rep = resnet_pair
    info = inspect_model(load_model(model_path("resnet_2b")))
    x = random_inputs(info.input.sample_shape, 64, -2.0, 2.0)
    ref = ort_callable(grafted)(x)
    diff = compare(lambda _: ref, ort_callable(native), x).max_abs_diff
    assert diff <= 1e-6 * max(1.0, float(np.abs(ref).max())), diff
    assert "Mul" not in {n.op_type for n in native.graph.node} and not spatial_mask_ops(native)
    concats = [n.output[0] for n in native.graph.node if n.op_type == "Concat"]
    assert all(len(s) == 1 for s in tensor_shapes(native, concats).values())  # flat only (patches mode has none)
    producers = {o: n.op_type for n in native.graph.node for o in n.output}
    assert all(producers[n.input[0]] in LINEAR_PRODUCERS for n in native.graph.node if n.op_type == "Relu")
    assert rep.relu_neurons_after == _kept_neurons(info, _channel_plan(info, full=2))
    assert not read_grafts(native) and not rep.skipped  # residual sites too: nothing left in mask form


def test_native_bounds_in_patches_mode_equal_mask_form(resnet_pair, tmp_path: Path, cifar_csv: Path) -> None:
    grafted, native, _ = resnet_pair
    paths = []
    for name, m in (("mask", grafted), ("native", native)):
        p = tmp_path / f"{name}.onnx"
        p.write_bytes(m.SerializeToString())
        paths.append(p)
    modes = [lirpa_model(load_model(p)).module.bound_opts["conv_mode"] for p in paths]
    assert modes == ["matrix", "patches"]
    row = np.loadtxt(cifar_csv, delimiter=",", max_rows=1)
    mean, std = (np.array(v.split(","), np.float32) for v in (MEAN, STD))
    img = (row[1:].reshape(32, 32, 3).transpose(2, 0, 1) / 255.0 - mean[:, None, None]) / std[:, None, None]
    prop = Property(img.ravel() - 0.002 / 0.25, img.ravel() + 0.002 / 0.25, int(row[0]), 10)
    lbs = [margin_lower_bounds(_net(p), prop, "CROWN") for p in paths]
    assert np.allclose(lbs[0], lbs[1], atol=1e-5, rtol=1e-5), np.abs(lbs[0] - lbs[1]).max()
    pts = prop.lower + (prop.upper - prop.lower) * np.random.default_rng(0).uniform(size=(64, prop.n_inputs))
    y = ort_callable(native)(pts.reshape(64, 3, 32, 32).astype(np.float32))
    margins = y[:, [prop.label]] - np.delete(y, prop.label, axis=1)
    assert np.all(margins >= lbs[1][None, :] - 1e-5)


def test_neuron_grafts_on_feature_maps_stay_in_mask_form() -> None:
    m = load_model(model_path("resnet_2b"))
    info = inspect_model(m)
    native, rep = native_form(apply_plan(m, _channel_plan(info, neuron_site=0), info))
    first = info.relus[0].name
    assert [r.site for r in read_grafts(native)] == [first]
    assert any(s.startswith(first) and "per-position slopes" in s for s in rep.skipped)
    assert spatial_mask_ops(native)  # what makes auto_LiRPA fall back to matrix mode there


def test_flat_sites_split_and_relu_holds_kept_units_only() -> None:
    m = load_model(model_path("mnist-net_256x2"))
    info = inspect_model(m)
    plan = GraftPlan(tuple(LayerPlan(s.name, "neuron", tuple(range(k, s.size, 3)), (0.5,) * len(range(k, s.size, 3)),
                                     (0.0,) * len(range(k, s.size, 3))) for k, s in enumerate(info.relus)))
    grafted = apply_plan(m, plan, info)
    native, rep = native_form(grafted)
    assert rep.relu_neurons_after == _kept_neurons(info, plan) and not read_grafts(native)
    table = read_native(native)  # reports measure the form against the original sites
    assert table == tuple(NativeSite(s.name, s.size, plan.layer(s.name).count) for s in info.relus)
    assert read_native(native_form(m)[0]) is None  # an ungrafted net is not marked
    x = random_inputs(info.input.sample_shape, 32)
    ref = ort_callable(grafted)(x)  # lines folded into Gemm weights: float32 rounding, relative to |y|
    assert compare(lambda _: ref, ort_callable(native), x).max_abs_diff <= NATIVE_RTOL * np.abs(ref).max()


@pytest.mark.slow
def test_export_writes_the_verifier_ready_form(resnet_pair, tmp_path: Path, cifar_csv: Path) -> None:
    grafted, _, _ = resnet_pair
    src = tmp_path / "g.onnx"
    src.write_bytes(grafted.SerializeToString())
    args = ["export", str(src), "--data", str(cifar_csv), "--mean", MEAN, "--std", STD, "--eps", "0.002",
            "--instances", "2", "--skip", "none", "--json"]
    res = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    out = load_model(tmp_path / "b" / "onnx" / "g.onnx")
    assert not read_grafts(out) and not spatial_mask_ops(out)
    readme = (tmp_path / "b" / "README.md").read_text()
    assert "verifier-ready form" in readme and "max output difference from the grafted mask form" in readme
    assert "verifier-ready" in json.loads(res.output)["forms"]["onnx/g.onnx"]
    res = CliRunner().invoke(main, [*args, "--no-simplify", "-o", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert read_grafts(load_model(tmp_path / "m" / "onnx" / "g.onnx"))
    assert "verifier-ready" not in (tmp_path / "m" / "README.md").read_text()


def test_per_neuron_graft_with_uniform_line_keeps_its_record() -> None:
    """Found by the fuzz test: a per-neuron graft on a one-channel map whose a and b are 0 everywhere.

    Its a/b constants look per-channel, so the Mul/Add → 1×1 Conv pass used to convert them,
    the a/b initialisers vanished and the graft record was dropped, while the per-position
    keep mask and the 16-neuron Relu stayed: the report then claimed a site it did not convert.
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.6, size=shape).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["t1"], name="conv1", kernel_shape=[1, 1]),
             helper.make_node("Relu", ["t1"], ["t2"], name="relu2"),
             helper.make_node("Flatten", ["t2"], ["t3"], name="flat", axis=1),
             helper.make_node("Gemm", ["t3", "w2", "b2"], ["t4"], name="gemm4", transB=1)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                          [helper.make_tensor_value_info("t4", TensorProto.FLOAT, [1, 2])],
                          [init("w0", 1, 1, 1, 1), init("b0", 1), init("w2", 2, 16), init("b2", 2)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    grafted = apply_plan(m, GraftPlan((LayerPlan("relu2", "neuron", (0,), (0.0,), (0.0,)),)), inspect_model(m))
    out, rep = native_form(grafted)
    assert [r.site for r in read_grafts(out, check=True)] == ["relu2"]  # still in mask form, still recorded
    assert rep.relu_neurons_after == 16 and any(s.startswith("relu2:") for s in rep.skipped)
    x = random_inputs((1, 4, 4), 32, 0.0, 1.0, seed=0)
    assert compare(ort_callable(grafted), ort_callable(out), x).max_abs_diff <= 1e-5
