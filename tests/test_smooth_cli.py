"""A sigmoid MLP through every command: train, inspect, score, plan, graft, finetune, export, verify, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from click.testing import CliRunner

from graftonnx.cli import main
from graftonnx.data import DataSpec, load_dataset
from graftonnx.model import inspect_model
from graftonnx.model.graftmeta import read_smooth
from graftonnx.model.runtime import OrtRunner
from graftonnx.planning import GraftPlan
from graftonnx.train.api import stub_info


def run(*args: object) -> tuple[int, str]:
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


def test_sigmoid_mlp_end_to_end(tmp_path: Path) -> None:
    base, scores, plan, grafted, tuned = (tmp_path / n for n in ("base.onnx", "s.json", "p.json", "g.onnx", "t.onnx"))
    code, out = run("train", "--arch", "mlp-sigmoid:24,24", "--data", "digits", "--epochs", "20", "--lr", "0.5",
                    "--batch-size", "32", "-o", base, "--no-progress")
    assert code == 0, out
    code, out = run("inspect", base)
    assert code == 0 and "Sigmoid/Tanh sites: 2, 48 neurons" in out, out
    common = ("--data", "digits", "--eps", "0.02", "--no-progress")
    code, out = run("score", base, *common, "-o", scores)
    assert code == 0 and "instability scores are relaxation looseness" in out, out
    table = json.loads(scores.read_text())
    assert all(max(s["instability"]) > 0 and s["unr"] == 0 for s in table["sites"])  # looseness, never UNR
    code, out = run("plan", base, *common, "--scores", scores, "--ratio", "0.5", "--criterion", "combined",
                    "-o", plan)
    assert code == 0, out
    p = GraftPlan.load(plan)
    assert sum(len(lp.indices) for lp in p.layers) == 24 and all(0 < a < 0.26 for lp in p.layers for a in lp.a)
    code, out = run("graft", base, "--plan", plan, *common, "-o", grafted)
    assert code == 0 and "grafted 24 of 48 neurons" in out, out
    g = onnx.load(grafted)
    assert [r.count for r in read_smooth(g, check=True)] == [len(lp.indices) for lp in p.layers]
    code, out = run("finetune", grafted, "--data", "digits", "--eps", "0.02", "--epochs", "1", "-o", tuned,
                    "--no-progress")
    assert code == 0, out
    t = onnx.load(tuned)
    before = {i.name: onnx.numpy_helper.to_array(i) for i in g.graph.initializer}
    after = {i.name: onnx.numpy_helper.to_array(i) for i in t.graph.initializer}
    assert any(not np.array_equal(before[r.a], after[r.a]) for r in read_smooth(t, check=True))  # lines trained
    data = load_dataset("digits", stub_info((1, 8, 8)), DataSpec(layout="nchw", n=200))
    acc = float((OrtRunner(t).logits(data.x).argmax(1) == data.y).mean())
    assert acc > 0.6, acc
    bench = tmp_path / "bench"
    code, out = run("export", tuned, base, "--data", "digits", "--eps", "0.02", "--instances", "3", "-o", bench,
                    "--no-progress")
    assert code == 0, out
    journal = tmp_path / "r.jsonl"
    code, out = run("verify", bench, "--backend", "lirpa", "--method", "crown", "--results", journal, "--no-progress")
    assert code == 0, out
    verdicts = [json.loads(line)["verdict"] for line in journal.read_text().splitlines()]
    assert len(verdicts) == 6 and set(verdicts) <= {"unsat", "unknown", "sat"}, verdicts
    code, out = run("report", journal, "--bench", bench, "-o", tmp_path / "rep", "--data", "digits", "--no-progress")
    assert code == 0 and "VA" in out, out  # no ReLU: UNR is 0 of 0, not an onnxruntime error
    assert [s.name for s in inspect_model(t).smooth] == [s.name for s in inspect_model(onnx.load(base)).smooth]


def test_smooth_arch_and_plan_errors_are_one_bad_input_line(tmp_path: Path) -> None:
    for args, words in (
        (("train", "--arch", "mlp-sigmoid:", "--data", "digits", "-o", tmp_path / "a.onnx"), "hidden width"),
        (("train", "--arch", "mlp-softplus:8", "--data", "digits", "-o", tmp_path / "b.onnx"), "unknown --arch"),
    ):
        code, out = run(*args, "--no-progress")
        last = out.strip().splitlines()[-1]
        assert code == 2 and last.startswith("graftonnx: error:") and words in last and "Traceback" not in out, out
