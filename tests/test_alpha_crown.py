"""α-CROWN optimises in every path graftonnx drives (torch ≥ 2.14 froze its slopes: graftonnx.verifier_shims)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import model_path
from onnx import numpy_helper
from verify_helpers import NET, mnist_image

from graftonnx.bench.spec import Property
from graftonnx.verifier_shims import LAUNCHER, clamp_gradient_frozen, inclusive_clamp
from graftonnx.verify.backends.lirpa import _net, margin_lower_bounds
from graftonnx.verify.backends.neuralsat import NeuralsatBackend, neuralsat_dir

EPS = 0.03  # mnist-net_256x2, image 0: CROWN's bound is negative, α-CROWN's is tighter


def test_inclusive_clamp_values_and_gradient() -> None:
    x = torch.tensor([-0.5, 0.0, 0.3, 1.0, 1.5, float("nan")], requires_grad=True)
    y = inclusive_clamp(x, 0.0, 1.0)
    assert torch.equal(torch.nan_to_num(y.detach(), 7.0), torch.nan_to_num(torch.clamp(x.detach(), 0.0, 1.0), 7.0))
    y[:5].sum().backward()
    assert x.grad[:5].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # torch 2.13's rule: the bounds are inside
    lo = torch.zeros(3)
    z = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    inclusive_clamp(z, min=lo).sum().backward()
    assert z.grad.tolist() == [0.0, 1.0, 1.0]
    assert torch.equal(inclusive_clamp(torch.tensor([2.0]), max=1.0), torch.tensor([1.0]))  # no autograd: plain


def test_embedded_alpha_crown_is_tighter_than_crown(mnist_csv: Path) -> None:
    p = model_path(NET)
    x, label = mnist_image(mnist_csv, 0)
    prop = Property.linf_ball(x, EPS, label, 10)
    net = _net(p)
    crown = margin_lower_bounds(net, prop, "CROWN")
    alpha = margin_lower_bounds(net, prop, "CROWN-Optimized")
    assert crown.min() < 0
    assert np.all(alpha >= crown - 1e-5) and alpha.min() > crown.min() + 0.1, (crown.min(), alpha.min())
    # graftonnx's own torch keeps its semantics: only auto_LiRPA's modules see the fix
    assert torch.clamp is not inclusive_clamp


# Runs inside NeuralSAT's folder, as NeuralSAT's main.py would, importing its auto_LiRPA.
_SUBPROCESS = """
import os, sys, numpy as np, torch
sys.path.insert(0, os.getcwd())  # main.py sits in that folder, this probe does not
from abstractor.auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm
d = np.load(sys.argv[1])
layers = [torch.nn.Flatten()]
for i in range(3):
    lin = torch.nn.Linear(*d[f"w{i}"].shape[::-1])
    lin.weight.data, lin.bias.data = torch.from_numpy(d[f"w{i}"]), torch.from_numpy(d[f"b{i}"])
    layers += [lin, torch.nn.ReLU()]
net = torch.nn.Sequential(*layers[:-1])
lo, hi, c = (torch.from_numpy(d[k]) for k in ("lo", "hi", "c"))
bm = BoundedModule(net, (lo,), bound_opts={"optimize_bound_args": {"iteration": 20, "lr_alpha": 0.1}})
x = BoundedTensor((lo + hi) / 2, PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi))
with torch.no_grad():
    crown = bm.compute_bounds(x=(x,), C=c, method="CROWN", bound_upper=False)[0].min().item()
alpha = bm.compute_bounds(x=(x,), C=c, method="CROWN-Optimized", bound_upper=False)[0].min().item()
print("BOUNDS", crown, alpha)
"""


def _mlp_npz(tmp_path: Path, mnist_csv: Path) -> Path:
    m = onnx.load(str(model_path(NET)))
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    gemms = [n for n in m.graph.node if n.op_type == "Gemm"]
    arrays = {}
    for i, g in enumerate(gemms):
        w = init[g.input[1]]
        arrays[f"w{i}"] = np.ascontiguousarray(w if g.attribute and any(
            a.name == "transB" and a.i for a in g.attribute) else w.T, np.float32)
        arrays[f"b{i}"] = init[g.input[2]].astype(np.float32)
    x, label = mnist_image(mnist_csv, 0)
    prop = Property.linf_ball(x, EPS, label, 10)
    c = np.zeros((1, 9, 10), np.float32)
    for row, j in enumerate(j for j in range(10) if j != label):
        c[0, row, label], c[0, row, j] = 1.0, -1.0
    path = tmp_path / "mlp.npz"
    np.savez(path, lo=prop.lower.reshape(1, 784).astype(np.float32), hi=prop.upper.reshape(1, 784).astype(np.float32),
             c=c, **arrays)
    return path


def _bounds(cmd: list[str], cwd: Path) -> tuple[float, float]:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    crown, alpha = next(line for line in out.stdout.splitlines() if line.startswith("BOUNDS")).split()[1:]
    return float(crown), float(alpha)


@pytest.mark.slow
def test_neuralsat_process_runs_live_alpha_crown(tmp_path: Path, mnist_csv: Path) -> None:
    """The NeuralSAT backend's launcher (the command it really runs) makes α-CROWN optimise there too."""
    root = neuralsat_dir()
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(_SUBPROCESS))
    npz = _mlp_npz(tmp_path, mnist_csv)
    cmd = NeuralsatBackend().command(Path("n.onnx"), Path("p.vnnlib"), 1, tmp_path / "r.txt")
    assert cmd[:3] == [sys.executable, str(LAUNCHER), "main.py"]
    crown, alpha = _bounds([sys.executable, str(LAUNCHER), str(script), str(npz)], root)
    assert crown < 0 and alpha > crown + 0.1, (crown, alpha)
    if clamp_gradient_frozen():  # without the launcher this torch returns CROWN's bound: the fix is what helps
        plain = _bounds([sys.executable, str(script), str(npz)], root)
        assert plain[1] == pytest.approx(plain[0], abs=1e-6)
