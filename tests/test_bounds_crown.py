"""CROWN bounds via auto_LiRPA: sound, tighter than IBP, batch-consistent, and IBP agrees with onnxruntime."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT, SHARED_NETS, model_path
from test_torch_bridge import CIFAR_MEAN, CIFAR_STD, graft, real_inputs

from graftonnx.bounds import BOUND_METHODS
from graftonnx.errors import BadInput
from graftonnx.model import OrtRunner, inspect_model, load_model, prepend_normalisation

from graftonnx._lirpa import lirpa_bounds  # isort: skip


def pixels(name: str, n: int) -> np.ndarray:
    """Raw [0, 1] images in the model's layout (resnet_2b: CHW, normalised by the graph)."""
    if name != "resnet_2b":
        return real_inputs(name, n)
    x = real_inputs(name, n) * np.reshape(CIFAR_STD, (1, 3, 1, 1)) + np.reshape(CIFAR_MEAN, (1, 3, 1, 1))
    return np.clip(x, 0, 1).astype(np.float32)


def pixel_model(name: str):
    model = load_model(model_path(name))
    return prepend_normalisation(model, CIFAR_MEAN, CIFAR_STD) if name == "resnet_2b" else model


def boxes(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    return np.clip(x - eps, 0, 1).astype(np.float32), np.clip(x + eps, 0, 1).astype(np.float32)


def sampled_pre_activations(model, lo: np.ndarray, hi: np.ndarray, n: int = 24) -> dict[str, np.ndarray]:
    """Pre-activations (site name → (n, B, *shape)) at corners and random points of the boxes, by onnxruntime."""
    sites = inspect_model(model).relus
    rng = np.random.default_rng(0)
    pts = [lo, hi] + [np.where(rng.random(lo.shape) < 0.5, lo, hi) for _ in range(n // 2)]
    pts += [rng.uniform(lo, hi).astype(np.float32) for _ in range(n - len(pts))]
    x = np.concatenate(pts)
    out = OrtRunner(model, [s.input for s in sites]).run(x)
    return {s.name: out[s.input].reshape(len(pts), len(lo), *s.shape) for s in sites}


def tol(v: np.ndarray) -> np.ndarray:
    return 1e-5 * (1.0 + np.abs(v))


def check_sound_and_tighter(model, lo: np.ndarray, hi: np.ndarray) -> tuple[int, int]:
    sites = inspect_model(model).relus
    crown = BOUND_METHODS.get("crown")(model, lo, hi, sites)
    ibp = lirpa_bounds(model, lo, hi, sites, "IBP")
    samples = sampled_pre_activations(model, lo, hi)
    for s in sites:
        c, i, v = crown[s.name], ibp[s.name], samples[s.name]
        assert c.lower.shape == c.upper.shape == (len(lo), *s.shape)
        assert np.all(v >= c.lower - tol(c.lower)), f"{s.name}: a sample lies below the CROWN lower bound"
        assert np.all(v <= c.upper + tol(c.upper)), f"{s.name}: a sample lies above the CROWN upper bound"
        assert np.all(c.lower >= i.lower - tol(i.lower)), f"{s.name}: CROWN lower bound looser than IBP"
        assert np.all(c.upper <= i.upper + tol(i.upper)), f"{s.name}: CROWN upper bound looser than IBP"
    n_crown = sum(int(crown[s.name].unstable().sum()) for s in sites)
    n_ibp = sum(int(ibp[s.name].unstable().sum()) for s in sites)
    return n_crown, n_ibp


def test_crown_is_registered() -> None:
    assert "crown" in BOUND_METHODS


def test_crown_mnist_sound_and_tighter_than_ibp() -> None:
    model = pixel_model("mnist-net_256x2")
    lo, hi = boxes(pixels("mnist-net_256x2", 8), 0.03)
    n_crown, n_ibp = check_sound_and_tighter(model, lo, hi)
    assert 0 < n_crown < n_ibp


def test_crown_resnet_sound_and_tighter_than_ibp() -> None:
    model = pixel_model("resnet_2b")
    lo, hi = boxes(pixels("resnet_2b", 2), 2 / 255)
    n_crown, n_ibp = check_sound_and_tighter(model, lo, hi)
    assert 0 < n_crown < n_ibp / 2  # on resnet_2b CROWN removes most IBP-unstable ReLUs


def test_crown_grafted_resnet_sound_and_grafted_neurons_stable() -> None:
    model = graft(pixel_model("resnet_2b"))
    lo, hi = boxes(pixels("resnet_2b", 1), 2 / 255)
    check_sound_and_tighter(model, lo, hi)
    first = inspect_model(model).relus[0]
    b = BOUND_METHODS.get("crown")(model, lo, hi, [first])[first.name]
    grafted = b.lower.reshape(len(lo), -1)[:, ::3]
    assert np.all(grafted == 0) and np.all(b.upper.reshape(len(lo), -1)[:, ::3] == 0)


def test_crown_batch_equals_one_by_one() -> None:
    """Boxes bounded together give each box's own bounds (no leakage between boxes or calls)."""
    model = pixel_model("mnist_relu_9_200")
    sites = inspect_model(model).relus
    lo, hi = boxes(pixels("mnist_relu_9_200", 4), 0.01)
    together = lirpa_bounds(model, lo, hi, sites, "CROWN")
    for k in (2, 0):
        alone = lirpa_bounds(model, lo[k:k + 1], hi[k:k + 1], sites, "CROWN")
        for s in sites:
            np.testing.assert_allclose(together[s.name].lower[k:k + 1], alone[s.name].lower, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(together[s.name].upper[k:k + 1], alone[s.name].upper, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", SHARED_NETS)
def test_onnxruntime_ibp_equals_lirpa_ibp(name: str) -> None:
    model = pixel_model(name)
    sites = inspect_model(model).relus
    lo, hi = boxes(pixels(name, 3), 0.01)
    ort = BOUND_METHODS.get("ibp")(model, lo, hi, sites)
    lirpa = lirpa_bounds(model, lo, hi, sites, "IBP")
    for s in sites:
        for side in ("lower", "upper"):
            a, b = getattr(ort[s.name], side), getattr(lirpa[s.name], side)
            assert a.shape == b.shape
            assert np.all(np.abs(a - b) <= tol(b)), f"{name} {s.name} {side}: max diff {np.abs(a - b).max():.3g}"


def test_bad_boxes_are_bad_input() -> None:
    model = pixel_model("mnist-net_256x2")
    sites = inspect_model(model).relus
    lo, hi = boxes(pixels("mnist-net_256x2", 2), 0.01)
    with pytest.raises(BadInput, match="lower bound exceeds"):
        lirpa_bounds(model, hi, lo, sites, "CROWN")
    with pytest.raises(BadInput, match="model takes"):
        lirpa_bounds(model, lo.reshape(2, 28, 28), hi.reshape(2, 28, 28), sites, "CROWN")
    with pytest.raises(BadInput, match="unknown auto_LiRPA method"):
        lirpa_bounds(model, lo, hi, sites, "alpha")


def test_foreign_src_package_is_left_alone(tmp_path) -> None:
    """A project's own top-level ``src`` survives loading neuralsat's auto_LiRPA (its ``src``)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").write_text("MARK = 'foreign'\n")
    code = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(tmp_path)!r})
        import src
        from graftonnx._lirpa import auto_lirpa, lirpa_bounds
        from graftonnx.model import inspect_model, load_model
        lirpa = auto_lirpa()
        assert hasattr(lirpa, "BoundedModule")
        model = load_model({str(model_path("mnist-net_256x2"))!r})
        lo = np.full((2, 784, 1), 0.4, np.float32)
        b = lirpa_bounds(model, lo, lo + 0.05, inspect_model(model).relus, "CROWN")
        assert all(np.all(v.lower <= v.upper) for v in b.values())
        import src as again
        assert again is src and again.MARK == "foreign", again
        import logging
        assert not logging.getLogger().handlers  # auto_LiRPA's logging.basicConfig stayed contained
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]
