"""Stability-aware finetuning: differentiable interval bounds (soundness, agreement with onnxruntime IBP),
the RS and IBP terms, and that the RS loss lowers UNR."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import SHARED_NETS, model_path

from graftonnx import api
from graftonnx.bounds import eps_box, ibp
from graftonnx.data import DataSpec, load_dataset
from graftonnx.model import inspect_model, load_model
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan
from graftonnx.torch_bridge import to_torch
from graftonnx.train import TrainConfig
from graftonnx.train.api import finetune
from graftonnx.train.interval import IntervalNet
from graftonnx.train.loop import bound_radius
from graftonnx.train.losses import ibp_loss, rs_loss
from graftonnx.train.nets import PixelModel

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.usefixtures("one_torch_thread")]


def _graft_some(model, seed: int = 0):
    """A random third of every site's units grafted (a = 0.3, b = 0.1): exercises the mask form."""
    rng = np.random.default_rng(seed)
    layers = []
    for s in inspect_model(model).relus:
        idx = tuple(sorted(int(i) for i in rng.choice(s.size, s.size // 3, replace=False)))
        layers.append(LayerPlan(s.name, "neuron", idx, (0.3,) * len(idx), (0.1,) * len(idx)))
    return apply_plan(model, GraftPlan(tuple(layers)))


@pytest.mark.parametrize("name", SHARED_NETS)
def test_interval_bounds_match_onnxruntime_ibp_and_contain_samples(name):
    model = _graft_some(load_model(model_path(name)))
    info = inspect_model(model)
    module = to_torch(model)
    net = IntervalNet(model, module)
    rng = np.random.default_rng(1)
    x = rng.random((3, *info.input.sample_shape), dtype=np.float32)
    lo, hi = eps_box(x, 0.01, (0.0, 1.0))
    with torch.no_grad():
        got = net(torch.from_numpy(lo), torch.from_numpy(hi))
    ref = ibp(model, lo, hi, info.relus)
    for s in info.relus:
        iv = got.relus[s.name]
        scale = 1e-5 * max(1.0, float(np.abs(ref[s.name].upper).max()))
        np.testing.assert_allclose(iv.lo.numpy(), ref[s.name].lower, atol=scale, rtol=0)
        np.testing.assert_allclose(iv.hi.numpy(), ref[s.name].upper, atol=scale, rtol=0)
    # soundness on points of the box: corners (random signs) and uniform samples, every Relu input and the logits
    pts = np.concatenate([np.where(rng.random((8, *lo.shape)) < 0.5, lo, hi),
                          lo + rng.random((8, *lo.shape), dtype=np.float32) * (hi - lo)]).astype(np.float32)
    with torch.no_grad():
        for p in pts:
            vals = module.run(torch.from_numpy(p), [t for _, t in module.relu_nodes])
            for relu, t in module.relu_nodes:
                iv, v = got.relus[relu], vals[t]
                tol = 1e-5 * max(1.0, float(iv.hi.abs().max()))
                assert bool((v >= iv.lo - tol).all() and (v <= iv.hi + tol).all()), (name, relu)
            out = vals[module.output_names[0]]
            tol = 1e-5 * max(1.0, float(got.out.hi.abs().max()))
            assert bool((out >= got.out.lo - tol).all() and (out <= got.out.hi + tol).all())


def test_bounds_through_outside_normalisation_and_grafted_units_are_zero():
    model = _graft_some(load_model(model_path("resnet_2b")))
    mean, std = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)
    px = PixelModel(to_torch(model), (3, 32, 32), mean, std, 0)
    net = IntervalNet(model, px)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        b = net((x - 2 / 255).clamp(0, 1), (x + 2 / 255).clamp(0, 1))
        y = px(x)
    assert bool((y >= b.out.lo - 1e-4).all() and (y <= b.out.hi + 1e-4).all())
    for relu, keep in net.kept().items():  # a grafted unit's Relu is fed exactly zero
        grafted = (keep.expand_as(b.relus[relu].lo) == 0)
        assert grafted.any() and float(b.relus[relu].lo[grafted].abs().max()) == 0.0


@pytest.mark.parametrize("name", ["mnist-net_256x2", "resnet_2b"])
def test_margin_bounds_through_the_last_layer_are_sound_and_tighter(name):
    model = _graft_some(load_model(model_path(name)))
    module = to_torch(model)
    net = IntervalNet(model, module)
    shape = inspect_model(model).input.sample_shape
    x = torch.rand(3, *shape)
    with torch.no_grad():
        b = net((x - 0.01).clamp(0, 1), (x + 0.01).clamp(0, 1))
        y = module(x).argmax(1)
        elided = b.margin_lower(y)
        naive = b.out.lo.gather(1, y[:, None]) - b.out.hi
        assert b.last_map is not None
        assert bool((elided >= naive.scatter(1, y[:, None], 0.0) - 1e-4).all())
        assert float((elided - naive).max()) > 0  # strictly tighter somewhere
        for _ in range(16):
            z = module((x + (torch.rand_like(x) * 2 - 1) * 0.01).clamp(0, 1))
            margin = z.gather(1, y[:, None]) - z
            assert bool((margin >= elided - 1e-4 * max(1.0, float(z.abs().max()))).all())


def test_rs_and_ibp_losses_backpropagate_into_weights_and_lines():
    model = _graft_some(load_model(model_path("mnist-net_256x2")))
    module = to_torch(model)
    net = IntervalNet(model, module)
    x = torch.rand(4, 784, 1)
    b = net((x - 0.02).clamp(0, 1), (x + 0.02).clamp(0, 1))
    loss = rs_loss(b, net.kept()) + ibp_loss(b, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in module.weight_parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in module.graft_parameters())
    assert -1.0 <= float(rs_loss(b, net.kept())) <= 1.0


def test_bound_radius_ramps_linearly_to_eps():
    cfg = TrainConfig(epochs=4, eps=0.1, bound_warmup=2)
    assert bound_radius(cfg, 0, 10) == pytest.approx(0.1 / 20)
    assert bound_radius(cfg, 9, 10) == pytest.approx(0.05)
    assert bound_radius(cfg, 19, 10) == pytest.approx(0.1) and bound_radius(cfg, 35, 10) == pytest.approx(0.1)
    assert bound_radius(dataclasses.replace(cfg, bound_warmup=0), 0, 10) == 0.1


def test_rs_loss_lowers_unr_on_a_small_net():
    base = load_model(model_path("mnist-net_256x2"))
    pool = load_dataset("mnist5k", inspect_model(base), DataSpec())
    train = dataclasses.replace(pool, x=pool.x[:300], y=pool.y[:300])
    held = dataclasses.replace(pool, x=pool.x[4000:4100], y=pool.y[4000:4100])
    grafted = api.graft(base, train, ratio=0.25, eps=0.02).model
    cfg = TrainConfig(epochs=4, batch_size=64, eps=0.02, lr=0.01, val_fraction=0.0, progress=False)
    plain = finetune(grafted, train, cfg)
    stable = finetune(grafted, train, dataclasses.replace(cfg, rs_weight=2.0))
    unr_plain = sum(api.unr(plain.model, held, 0.02).values())
    unr_stable = sum(api.unr(stable.model, held, 0.02).values())
    assert unr_stable < 0.85 * unr_plain, (unr_plain, unr_stable)  # measured 51.1 → 37.9 unstable per image
    assert "rs" in stable.result.history[-1].terms and "rs" not in plain.result.history[-1].terms
    assert api.accuracy(stable.model, held) > 0.8  # stability is not bought with a broken network
