"""``--device auto|cpu|cuda``: one declaration, resolved once per stage, the same numbers on every device.

On a machine without CUDA (CI) the tests check resolution, the one-line refusal of
``cuda`` in every command that has the flag, that work started on ``auto`` runs on the CPU
and that modules and tensors come back to the CPU.  Where torch sees a GPU the last tests
finetune, score and verify on CUDA and compare with the CPU run.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from graftonnx.cli import main
from graftonnx.device import DEVICES, current, module_device, resolve, using
from graftonnx.errors import BadInput

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent / "bad_inputs")]
from conftest import model_path  # noqa: E402
from test_hardening import CORPUS, _check_bad_input  # noqa: E402
from verify_helpers import NET, make_bench  # noqa: E402

CUDA = torch.cuda.is_available()
no_cuda = pytest.mark.skipif(CUDA, reason="this machine has CUDA: the refusal cannot happen")
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


def test_auto_is_cuda_exactly_when_torch_sees_one() -> None:
    assert resolve("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve("cpu").type == "cpu"
    with pytest.raises(BadInput, match="choose one of auto, cpu, cuda"):
        resolve("tpu")


@no_cuda
def test_cuda_without_a_gpu_is_one_line() -> None:
    with pytest.raises(BadInput, match=r"--device cuda: torch .* sees no CUDA GPU.*use --device cpu or --device auto"):
        resolve("cuda")


def test_using_sets_and_restores_the_stage_device() -> None:
    assert current().type == "cpu"
    with using("cpu") as dev:
        assert dev.type == "cpu" and current() == dev
        with using(torch.device("meta")):
            assert current().type == "meta"
        assert current() == dev
    assert current().type == "cpu"


@pytest.fixture
def work(tmp_path: Path, mnist_csv: Path) -> Path:
    for rel in ("tiny_ok.onnx", "data_ok.npz"):
        shutil.copy(CORPUS / rel, tmp_path / rel)
    make_bench(tmp_path, model_path(NET), mnist_csv, [(0, 0.01), (1, 0.05)], timeout=30)
    return tmp_path


def _commands(w: Path) -> dict[str, list[str]]:
    m, d = str(w / "tiny_ok.onnx"), str(w / "data_ok.npz")
    return {"score": ["score", m, "--data", d, "-o", str(w / "s.json")],
            "plan": ["plan", m, "--data", d, "-o", str(w / "p.json")],
            "graft": ["graft", m, "--data", d, "-o", str(w / "g.onnx")],
            "finetune": ["finetune", m, "--data", d, "--eps", "0.1", "-o", str(w / "f.onnx")],
            "train": ["train", "--arch", "mlp:8", "--data", d, "-o", str(w / "t.onnx")],
            "evaluate": ["evaluate", m, "--data", d, "--eps", "0.1"],
            "verify": ["verify", str(w / "bench"), "--results", str(w / "r.jsonl")],
            "demo": ["demo", "-o", str(w / "demo")]}


@no_cuda
@pytest.mark.parametrize("command", ["score", "plan", "graft", "finetune", "train", "evaluate", "verify", "demo"])
def test_every_device_flag_refuses_cuda_without_a_gpu(work: Path, command: str) -> None:
    args = _commands(work)[command] + ["--device", "cuda"]
    before = sorted(p.name for p in work.iterdir())
    line = _check_bad_input(CliRunner().invoke(main, args, env={"TQDM_DISABLE": "1"}))
    assert "--device" in line and "cuda" in line and "no CUDA GPU" in line, line
    assert sorted(p.name for p in work.iterdir()) == before  # nothing written


def test_every_device_flag_has_the_same_choices_and_default() -> None:
    import click

    seen = {}
    for name, cmd in main.commands.items():
        for p in cmd.params:
            if isinstance(p, click.Option) and p.opts[0].endswith("-device"):
                seen[(name, p.opts[0])] = (tuple(p.type.choices), p.default)
    assert {("score", "--device"), ("finetune", "--device"), ("train", "--device"), ("evaluate", "--device"),
            ("verify", "--device")} <= set(seen)
    assert set(seen.values()) == {(DEVICES, "auto")}, seen


def _tiny_run(device: str):
    from graftonnx import api
    from graftonnx.train import EvalConfig, TrainConfig, evaluate
    from graftonnx.train.api import finetune

    data = api.load_data(str(CORPUS / "data_ok.npz"), api.inspect(str(CORPUS / "tiny_ok.onnx")))
    grafted = api.graft(str(CORPUS / "tiny_ok.onnx"), data, ratio=0.5, eps=0.1, seed=0, device=device).model
    out = finetune(grafted, data, TrainConfig(epochs=2, eps=0.1, batch_size=16, progress=False, device=device))
    ev = evaluate(out.model, data, EvalConfig(eps=0.1, steps=5, restarts=1, device=device), module=out.module)
    return out, ev


def test_auto_trains_where_it_resolves_and_hands_back_cpu_modules() -> None:
    out, ev = _tiny_run("auto")
    assert out.result.device == resolve("auto").type
    assert out.result.to_dict()["device"] == out.result.device
    assert module_device(out.module).type == "cpu"  # fit and evaluate move it back
    cpu, ev_cpu = _tiny_run("cpu")
    if not CUDA:  # the same process on the same device: bit for bit
        assert [h.loss for h in out.result.history] == [h.loss for h in cpu.result.history]
        assert (ev.correct, ev.robust) == (ev_cpu.correct, ev_cpu.robust)


def test_a_resumed_run_may_change_device(tmp_path: Path) -> None:
    from graftonnx.train import TrainConfig

    a = TrainConfig(epochs=2, eps=0.1, device="cpu", checkpoint=str(tmp_path / "c.pt"))
    b = TrainConfig(epochs=2, eps=0.1, device="auto", checkpoint=str(tmp_path / "c.pt"), resume=True)
    assert a.result_fields() == b.result_fields()  # device is a runtime knob: resume is allowed


@needs_cuda
def test_cuda_finetune_matches_cpu_to_float_tolerance() -> None:
    gpu, ev_gpu = _tiny_run("cuda")
    cpu, ev_cpu = _tiny_run("cpu")
    assert gpu.result.device == "cuda"
    assert np.allclose([h.loss for h in gpu.result.history], [h.loss for h in cpu.result.history], rtol=1e-3)
    assert abs(ev_gpu.correct - ev_cpu.correct) <= 1


@needs_cuda
def test_cuda_crown_scores_and_lirpa_verdicts_match_cpu(work: Path) -> None:
    import json

    from graftonnx import api

    m = str(work / "tiny_ok.onnx")
    data = api.load_data(str(work / "data_ok.npz"), api.inspect(m))
    a = api.score(m, data, eps=0.05, bound="crown", device="cuda")
    b = api.score(m, data, eps=0.05, bound="crown", device="cpu")
    for sa, sb in zip(a.sites, b.sites, strict=True):
        assert np.allclose(sa.instability, sb.instability, atol=0.05)
    runs = [CliRunner().invoke(main, ["verify", str(work / "bench"), "--device", dev, "--json", "--results",
                                      str(work / f"{dev}.jsonl")]) for dev in ("cuda", "cpu")]
    assert all(r.exit_code == 0 for r in runs), [r.output for r in runs]
    verdicts = [[x["verdict"] for x in json.loads(r.output)["results"]] for r in runs]
    assert verdicts[0] == verdicts[1]
