"""graftonnx.train: attacks, the FAT+GradAlign loop, finetune write-back, train/evaluate CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from conftest import DATASETS, model_path
from onnx import numpy_helper

from graftonnx.cli import main
from graftonnx.data import DataSpec, load_dataset
from graftonnx.data.dataset import Dataset
from graftonnx.errors import BadInput
from graftonnx.model import inspect_model, load_model
from graftonnx.model.graftmeta import read_grafts
from graftonnx.parity import assert_parity, ort_callable
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan
from graftonnx.train import (
    EvalConfig,
    PgdConfig,
    TrainConfig,
    build_arch,
    evaluate,
    export_onnx,
    fgsm_rs,
    fit,
    pgd,
    torch_accuracy,
)
from graftonnx.train.api import finetune, stub_info, train_from_scratch

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def digits() -> tuple[Dataset, Dataset]:
    d = load_dataset("digits", stub_info((1, 8, 8)), DataSpec(layout="nchw"))
    return Dataset(d.x[:1400], d.y[:1400], "digits[:1400]"), Dataset(d.x[1400:], d.y[1400:], "digits[1400:]")


@pytest.fixture(scope="module")
def base(digits):
    """A small MLP trained cleanly on sklearn digits and exported to ONNX (about a second)."""
    cfg = TrainConfig(epochs=10, eps=0.0, lr=0.1, batch_size=32, val_fraction=0.1, progress=False)
    return train_from_scratch("mlp:32,32", digits[0], cfg)


def _acc(model: onnx.ModelProto, data: Dataset) -> float:
    return float((ort_callable(model)(data.x).argmax(1) == data.y).mean())


def _graft_half(model: onnx.ModelProto) -> onnx.ModelProto:
    """Graft a random 50 % of every site's neurons with a = b = 0 (pruning-like start, a big accuracy drop)."""
    rng = np.random.default_rng(0)
    layers = []
    for s in inspect_model(model).relus:
        idx = tuple(sorted(int(i) for i in rng.choice(s.size, s.size // 2, replace=False)))
        layers.append(LayerPlan(s.name, "neuron", idx, (0.0,) * len(idx), (0.0,) * len(idx)))
    return apply_plan(model, GraftPlan(tuple(layers)))


def _inits(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


# ----------------------------------------------------------------------------- attacks
def test_attacks_stay_in_ball_and_range_and_are_seeded(base, digits):
    x, y = torch.from_numpy(digits[1].x[:64]), torch.from_numpy(digits[1].y[:64])
    eps = 0.1
    adv, fooled = pgd(base.module, x, y, PgdConfig(eps, steps=10, restarts=2, seed=3), 0.0, 1.0)
    adv2, fooled2 = pgd(base.module, x, y, PgdConfig(eps, steps=10, restarts=2, seed=3), 0.0, 1.0)
    assert torch.equal(adv, adv2) and torch.equal(fooled, fooled2)
    assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        wrong = base.module(adv).argmax(1) != y
    assert fooled.any() and bool(wrong[fooled].all()) and not wrong[~fooled].any()
    fg = fgsm_rs(base.module, x, y, eps, 0.0, 1.0, generator=torch.Generator().manual_seed(0))
    assert (fg - x).abs().max() <= eps + 1e-6 and fg.min() >= 0 and fg.max() <= 1


def test_pgd_finds_attacks_where_fgsm_does(base, digits):
    x, y = torch.from_numpy(digits[1].x[:200]), torch.from_numpy(digits[1].y[:200])
    eps = 0.08
    with torch.no_grad():
        ok = base.module(x).argmax(1) == y
    x, y = x[ok], y[ok]
    fgsm_fooled = torch.zeros(len(x), dtype=torch.bool)
    for seed in range(3):
        adv = fgsm_rs(base.module, x, y, eps, 0.0, 1.0, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            fgsm_fooled |= base.module(adv).argmax(1) != y
    _, pgd_fooled = pgd(base.module, x, y, PgdConfig(eps, steps=50, restarts=3), 0.0, 1.0)
    assert fgsm_fooled.sum() >= 5  # the check below is not vacuous
    assert bool(pgd_fooled[fgsm_fooled].all())
    assert pgd_fooled.sum() > fgsm_fooled.sum()


@pytest.mark.parametrize("seed", range(4))
def test_pgd_ra_never_exceeds_sa(seed, digits):
    torch.manual_seed(seed)
    net = build_arch("mlp:16", (1, 8, 8), 10)  # random, untrained
    x, y = torch.from_numpy(digits[1].x[:100]), torch.from_numpy(digits[1].y[:100])
    for eps in (0.0, 0.01, 0.1):
        sa, ra = torch_accuracy(net, x, y, eps, (0.0, 1.0), steps=5, restarts=1)
        assert 0.0 <= ra <= sa <= 1.0


def test_evaluate_on_shared_net_confirms_every_attack_in_onnxruntime(mnist_csv):
    m = load_model(model_path("mnist-net_256x2"))
    data = load_dataset(str(mnist_csv), inspect_model(m), DataSpec(n=30))
    clean = evaluate(m, data, EvalConfig(0.0))
    assert clean.sa == 1.0 and clean.ra == clean.sa  # SOURCES.md: 100 % on these images
    r = evaluate(m, data, EvalConfig(0.03, steps=20, restarts=2))
    assert r.robust <= r.correct == 30
    assert r.attacked > 0 and r.confirmed == r.attacked and r.unconfirmed == 0
    assert r.robust == r.correct - r.confirmed
    assert len(r.robust_mask) == 30 and sum(r.robust_mask) == r.robust  # per image, for paired times
    assert "robust_mask" not in r.to_dict() and all(clean.robust_mask)


# ----------------------------------------------------------------------------- finetune
@pytest.fixture(scope="module")
def tuned(base, digits):
    grafted = _graft_half(base.model)
    cfg = TrainConfig(epochs=3, eps=0.05, lr=0.02, batch_size=32, progress=False)
    return grafted, finetune(grafted, digits[0], cfg)


def test_finetune_writes_back_exactly_the_trained_module(tuned, digits):
    grafted, out = tuned
    m = out.model

    def torch_fn(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return out.module(torch.from_numpy(x)).numpy()

    assert_parity(torch_fn, ort_callable(m), digits[1].x, atol=1e-5)
    onnx.checker.check_model(m, full_check=True)
    assert [(n.op_type, list(n.input), list(n.output)) for n in m.graph.node] == \
        [(n.op_type, list(n.input), list(n.output)) for n in grafted.graph.node]
    before, after = _inits(grafted), _inits(m)
    assert before.keys() == after.keys()
    recs = read_grafts(m)
    lines = {n for r in recs for n in (r.a, r.b)}
    assert all(not np.array_equal(before[n], after[n]) for n in lines)
    weights = [n for n in before if n not in lines and not n.endswith(("graft_keep", "graft_zero"))]
    assert weights and all(not np.array_equal(before[n], after[n]) for n in weights)
    for r in recs:  # masks untouched, a and b still zero off the grafted neurons, slopes in [0, 1]
        keep = after[r.keep]
        assert np.array_equal(keep, before[r.keep])
        assert not after[r.a][keep == 1].any() and not after[r.b][keep == 1].any()
        assert after[r.a].min() >= 0.0 and after[r.a].max() <= 1.0
    assert json.loads(next(p.value for p in m.metadata_props if p.key == "graftonnx.training"))["kind"] == "finetune"


def test_finetune_recovers_accuracy_lost_by_grafting(base, tuned, digits):
    grafted, out = tuned
    acc_base, acc_graft, acc_tuned = _acc(base.model, digits[1]), _acc(grafted, digits[1]), _acc(out.model, digits[1])
    assert acc_base > 0.85
    assert acc_graft < acc_base - 0.1  # grafting 50 % with a = b = 0 hurts ...
    assert acc_tuned > acc_graft + 0.15  # ... and finetuning wins most of it back
    assert acc_tuned > acc_base - 0.08


def test_freeze_weights_trains_only_the_lines(base, digits):
    grafted = _graft_half(base.model)
    out = finetune(grafted, digits[0].take(300), TrainConfig(epochs=1, eps=0.05, batch_size=64, freeze_weights=True,
                                                             val_fraction=0.0, progress=False))
    before, after = _inits(grafted), _inits(out.model)
    lines = {n for r in read_grafts(grafted) for n in (r.a, r.b)}
    assert all(np.array_equal(before[n], after[n]) for n in before if n not in lines)
    assert any(not np.array_equal(before[n], after[n]) for n in lines)


# ----------------------------------------------------------------------------- loop: determinism, resume
def _tiny_run(digits, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    net = build_arch("mlp:16", (1, 8, 8), 10)
    fit(net, torch.from_numpy(digits[0].x[:400]), torch.from_numpy(digits[0].y[:400]), cfg)
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_other_seed_differs(digits):
    cfg = TrainConfig(epochs=2, eps=0.05, batch_size=50, val_steps=3, progress=False, seed=5)
    first, second = _tiny_run(digits, cfg), _tiny_run(digits, cfg)
    assert _same(first, second)
    assert not _same(first, _tiny_run(digits, TrainConfig(**{**cfg.__dict__, "seed": 6})))


def test_resume_equals_uninterrupted_run(digits, tmp_path):
    common = dict(epochs=3, eps=0.05, batch_size=50, val_steps=3, progress=False, seed=1)
    straight = _tiny_run(digits, TrainConfig(**common))
    ckpt = str(tmp_path / "run.ckpt")
    torch.manual_seed(123)
    net = build_arch("mlp:16", (1, 8, 8), 10)
    x, y = torch.from_numpy(digits[0].x[:400]), torch.from_numpy(digits[0].y[:400])
    part = fit(net, x, y, TrainConfig(**common, checkpoint=ckpt, epochs_run_limit=1))
    assert len(part.history) == 1 and Path(ckpt).is_file()
    torch.manual_seed(999)
    net2 = build_arch("mlp:16", (1, 8, 8), 10)  # fresh weights: all state must come from the checkpoint
    rest = fit(net2, x, y, TrainConfig(**common, checkpoint=ckpt, resume=True))
    assert [h.epoch for h in rest.history] == [1, 2, 3]
    assert _same(straight, net2.state_dict())
    with pytest.raises(BadInput, match="different settings"):
        fit(net2, x, y, TrainConfig(**{**common, "lr": 0.5}, checkpoint=ckpt, resume=True))


def test_config_rejects_bad_values():
    for bad in (dict(epochs=0), dict(eps=-0.1), dict(slope_range=(1.0, 0.0)), dict(val_fraction=1.0),
                dict(resume=True), dict(lr=float("nan"))):
        with pytest.raises(BadInput):
            TrainConfig(**bad)


# ----------------------------------------------------------------------------- arch + export
@pytest.mark.parametrize(("spec", "shape"), [("cnn-b", (1, 28, 28)), ("cnn-b", (1, 8, 8)), ("mlp:64,32", (784,))])
def test_arch_exports_with_parity(spec, shape):
    torch.manual_seed(0)
    net = build_arch(spec, shape, 10)
    m = export_onnx(net, shape)
    info = inspect_model(m)
    assert info.opset >= 13 and info.input.dims[0] is None and info.input.sample_shape == shape
    assert len(info.relus) == (3 if spec == "cnn-b" else 2)
    x = np.random.default_rng(0).uniform(0, 1, (5, *shape)).astype(np.float32)
    with torch.no_grad():
        assert np.abs(ort_callable(m)(x) - net(torch.from_numpy(x)).numpy()).max() < 1e-5


def test_unknown_arch_is_bad_input():
    for spec, shape in (("resnet", (1, 8, 8)), ("mlp:", (64,)), ("mlp:a", (64,)), ("cnn-b", (64,))):
        with pytest.raises(BadInput):
            build_arch(spec, shape, 10)


# ----------------------------------------------------------------------------- CLI
def _npz(path: Path, x: np.ndarray, y: np.ndarray) -> str:
    np.savez(path, x=x, y=y)
    return str(path)


def test_cli_train_finetune_evaluate(tmp_path, base):
    r = CliRunner()
    out = tmp_path / "net.onnx"
    res = r.invoke(main, ["train", "--arch", "mlp:16", "--data", "digits", "--n", "300", "--epochs", "2",
                          "--eps", "0.05", "-o", str(out), "--no-progress", "--json"])
    assert res.exit_code == 0, res.output
    rec = json.loads(res.output)
    assert rec["config"]["eps"] == 0.05 and len(rec["history"]) == 2 and out.is_file()
    assert json.loads((tmp_path / "net.train.json").read_text())["arch"] == "mlp:16"
    grafted = tmp_path / "g.onnx"
    onnx.save(_graft_half(base.model), grafted)
    tuned = tmp_path / "t.onnx"
    res = r.invoke(main, ["finetune", str(grafted), "--data", "digits", "--n", "200", "--eps", "0.05", "--epochs", "1",
                          "-o", str(tuned), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "best epoch 1/1" in res.output and tuned.is_file()
    res = r.invoke(main, ["evaluate", str(tuned), "--data", "digits", "--n", "50", "--eps", "0.05", "--steps", "5",
                          "--restarts", "1", "--json"])
    assert res.exit_code == 0, res.output
    ev = json.loads(res.output)
    assert ev["n"] == 50 and 0 <= ev["ra"] <= ev["sa"] <= 1 and ev["unconfirmed"] == 0


def test_cli_finetune_plain_model_trains_weights_with_note(tmp_path, base):
    plain = tmp_path / "plain.onnx"
    onnx.save(base.model, plain)
    res = CliRunner().invoke(main, ["finetune", str(plain), "--data", "digits", "--n", "100", "--eps", "0.05",
                                    "--epochs", "1", "-o", str(tmp_path / "t.onnx"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "not grafted" in res.output and "weights only" in res.output


def test_cli_finetune_bad_input_exits_2_without_output(tmp_path, base):
    grafted = tmp_path / "g.onnx"
    onnx.save(_graft_half(base.model), grafted)
    x = load_dataset("digits", stub_info((1, 8, 8)), DataSpec(layout="nchw", n=20))
    empty = _npz(tmp_path / "empty.npz", np.zeros((0, 1, 8, 8), np.float32), np.zeros(0, np.int64))
    wrong = _npz(tmp_path / "wrong.npz", x.x, np.full(20, 12))
    odd = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["r"]), onnx.helper.make_node("Softplus", ["r"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 10])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])]))
    onnx.save(odd, tmp_path / "odd.onnx")
    exists = tmp_path / "exists.onnx"
    exists.write_bytes(b"keep")
    base_args = ["--epochs", "1", "--no-progress"]
    cases = [
        ([str(grafted), "--data", "digits", "--eps", "0", "-o", str(tmp_path / "o1.onnx")], "eps"),
        ([str(grafted), "--data", empty, "--eps", "0.1", "-o", str(tmp_path / "o2.onnx")], "no samples"),
        ([str(grafted), "--data", wrong, "--eps", "0.1", "-o", str(tmp_path / "o3.onnx")], "label 12"),
        ([str(tmp_path / "odd.onnx"), "--data", "digits", "--eps", "0.1", "-o", str(tmp_path / "o4.onnx")], "Softplus"),
        ([str(grafted), "--data", "digits", "--eps", "0.1", "-o", str(exists)], "--force"),
        ([str(grafted), "--data", "digits", "--eps", "0.1", "-o", str(tmp_path / "nope" / "o.onnx")], "does not exist"),
        ([str(grafted), "--eps", "0.1", "-o", str(tmp_path / "o5.onnx")], "--data"),
        ([str(grafted), "--data", "digits", "--eps", "0.1", "--resume", "-o", str(tmp_path / "o6.onnx")], "checkpoint"),
    ]
    for args, words in cases:
        res = CliRunner().invoke(main, ["finetune", *args, *base_args])
        assert res.exit_code == 2, (args, res.output)
        last = res.output.strip().splitlines()[-1]
        assert last.startswith("graftonnx: error:") and words in last and "Traceback" not in res.output, last
    assert exists.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.npz", "exists.onnx", "g.onnx", "odd.onnx",
                                                          "wrong.npz"]


def test_cli_evaluate_bad_input(tmp_path):
    res = CliRunner().invoke(main, ["evaluate", str(model_path("mnist-net_256x2")), "--data",
                                    str(DATASETS / "eran_mnist_test.csv"), "--eps", "-1"])
    assert res.exit_code == 2 and "--eps" in res.output


# ----------------------------------------------------------------------------- the real shared nets
CIFAR_NORM = DataSpec(n=20, mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616))


def test_evaluate_every_shared_net(shared_net):
    """SA/RA on each VNN-COMP net (normalisation outside the graph for resnet_2b, NHWC for cifar10_small)."""
    name = shared_net.stem
    m = load_model(shared_net)
    csv = DATASETS / ("eran_mnist_test.csv" if name.startswith("mnist") else "eran_cifar10_test.csv")
    data = load_dataset(str(csv), inspect_model(m), CIFAR_NORM if name == "resnet_2b" else DataSpec(n=20))
    r = evaluate(m, data, EvalConfig(0.02 if name.startswith("mnist") else 2 / 255, steps=10, restarts=1))
    assert r.n == 20 and r.correct >= 10  # SOURCES.md: 61–100 % clean accuracy on these images
    assert r.robust <= r.correct and r.unconfirmed == 0 and r.robust == r.correct - r.confirmed


def test_finetune_shared_mnist_net_keeps_parity(mnist_csv):
    m = _graft_half(load_model(model_path("mnist-net_256x2")))
    data = load_dataset(str(mnist_csv), inspect_model(m), DataSpec())
    out = finetune(m, data, TrainConfig(epochs=1, eps=0.02, batch_size=50, val_fraction=0.0, progress=False))

    def torch_fn(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return out.module(torch.from_numpy(x)).numpy()

    assert_parity(torch_fn, ort_callable(out.model), data.x, atol=1e-5)
    assert [n.op_type for n in out.model.graph.node] == [n.op_type for n in m.graph.node]
    assert out.model.graph.input[0].type == m.graph.input[0].type  # batch-1 input shape kept
