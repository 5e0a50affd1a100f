"""graftonnx zoo: manifest parsing, a small real batch, resume from the journal, Ray, and a killed-and-resumed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DATASETS, model_path

from graftonnx.cli import main
from graftonnx.errors import BadInput
from graftonnx.zoo import ExecutorConfig, load_manifest, run_zoo

CLI = [sys.executable, "-c", "from graftonnx.cli import main; main()"]


def _mnist_entry(eps: float = 0.015) -> str:
    return f"""
  - name: mnist256
    path: {model_path("mnist-net_256x2")}
    eps: {eps}
    data: {{source: {DATASETS / "eran_mnist_test.csv"}, n: 20}}"""


@pytest.fixture(scope="module")
def digits_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MLP trained here on sklearn's digits (a second, different net for the batch)."""
    from graftonnx import api
    from graftonnx.data import DataSpec, load_dataset
    from graftonnx.train import TrainConfig
    from graftonnx.train.api import stub_info, train_from_scratch

    data = load_dataset("digits", stub_info((64,), 10), DataSpec(layout="flat", n=400))
    cfg = TrainConfig(epochs=4, eps=0, lr=0.1, batch_size=32, progress=False, val_fraction=0)
    path = tmp_path_factory.mktemp("digits") / "digits_mlp.onnx"
    api.save_model(train_from_scratch("mlp:32", data, cfg).model, path)
    return path


def _manifest(tmp: Path, digits: Path, extra: str = "") -> Path:
    text = f"""defaults:
  ratios: [0.5]
  export: {{instances: 2, timeout: 20}}
  verify: {{backend: lirpa, timeout: 20}}
models:{_mnist_entry()}
  - name: digits
    path: {digits}
    eps: 0.03
    data: {{source: digits, layout: flat, n: 60}}
    ratios: [0.3, 0.6]
    finetune: {{epochs: 1, batch_size: 32}}{extra}
"""
    p = tmp / "zoo.yaml"
    p.write_text(text)
    return p


def _rows(out: Path) -> list[dict]:
    """Summary rows without wall times (the only thing a rerun may change)."""
    rows = json.loads((out / "summary.json").read_text())["rows"]
    return [{k: v for k, v in r.items() if k != "verify_seconds"} for r in rows]


def _done_counts(out: Path) -> Counter:
    lines = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    return Counter((r["model"], r["step"]) for r in lines if r["status"] == "done")


def test_manifest_defaults_overrides_and_paths(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    p = tmp_path / "m" / "zoo.yaml"
    p.write_text("defaults:\n  eps: 0.01\n  data: {source: digits, layout: flat}\n  verify: {timeout: 5}\n"
                 "models:\n  - path: a.onnx\n  - name: b2\n    path: /abs/b.onnx\n    eps: 0.2\n    schedule: total\n"
                 "    data: {n: 7, mean: 0.5, std: [0.25]}\n    verify: {method: ibp}\n")
    a, b = load_manifest(p).entries
    assert (a.name, a.path, a.eps, a.verify.timeout) == ("a", str((tmp_path / "m" / "a.onnx").resolve()), 0.01, 5.0)
    assert (b.name, b.path, b.eps, b.data.n, b.data.mean, b.data.std) == ("b2", "/abs/b.onnx", 0.2, 7, (0.5,), (0.25,))
    assert b.data.source == "digits" and b.data.layout == "flat"  # section merged over defaults
    assert b.backend.method == "ibp" and b.verify.timeout == 5.0  # the lirpa backend's own knob
    assert (a.graft.schedule, b.graft.schedule) == ("target", "total")
    assert a.fingerprint() != b.fingerprint()


@pytest.mark.parametrize("body, needle", [
    ("models:\n  - path: a.onnx\n    epz: 0.1\n", "line 3: models[0] key 'epz': unknown key"),
    ("models:\n  - path: a.onnx\n    eps: fast\n", "line 3: models[0] key 'eps': expected a finite number"),
    ("defaults:\n  ratios: [0.5, 2]\nmodels:\n  - path: a.onnx\n", "line 2: defaults key 'ratios'"),
    ("models:\n  - path: a.onnx\n  - path: b.onnx\n    verify: {backend: nope}\n", "models[1] key 'verify.backend'"),
    ("models:\n  - path: a.onnx\n  - path: a.onnx\n", "line 3: models[1] key 'name': name 'a' is also used"),
    ("models:\n  - path: a.onnx\n    schedule: fast\n", "models[0] key 'schedule': 'fast' is not one of target, total"),
    ("models: [\n", "is not valid YAML"),
    ("models: []\n", "non-empty 'models:' list"),
])
def test_malformed_manifest_names_line_and_key(tmp_path: Path, body: str, needle: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(body)
    with pytest.raises(BadInput) as err:
        load_manifest(p)
    assert needle in err.value.message and "\n" not in err.value.message


def test_zoo_batch_failure_isolated_and_resume_reuses_everything(tmp_path: Path, digits_net: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    man = _manifest(tmp_path, digits_net, f"\n  - name: broken\n    path: {broken}\n    data: {{source: digits}}")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["zoo", str(man), "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    by = {(r["model"], r["variant"]): r for r in rows}
    assert [r["variant"] for r in rows if r["model"] == "digits"] == ["baseline", "graft0.3-ft", "graft0.6-ft"]
    assert by[("broken", "baseline")]["status"] == "failed"
    assert "inspect: model" in by[("broken", "baseline")]["error"] and "not a readable ONNX" in \
        by[("broken", "baseline")]["error"]
    for key in [("mnist256", "baseline"), ("mnist256", "graft0.5"), ("digits", "graft0.6-ft")]:
        r = by[key]
        assert r["status"] == "done" and r["instances"] == 2 and 0 <= r["va"] <= 1 and 0 <= r["sa"] <= 1
    # grafting removes unstable neurons: fewer per image than the baseline, more grafted → fewer left
    assert by[("mnist256", "graft0.5")]["unr"] < by[("mnist256", "baseline")]["unr"]
    unr = [by[("digits", v)]["unr"] for v in ("graft0.6-ft", "graft0.3-ft", "baseline")]
    assert unr == sorted(unr) and unr[0] < unr[2]
    md = (out / "summary.md").read_text()
    assert "| mnist256 | graft0.5 |" in md and "failed: inspect:" in md
    before = (out / "journal.jsonl").read_text()
    again = CliRunner().invoke(main, ["zoo", str(man), "-o", str(out)])
    assert again.exit_code == 0
    assert "mnist256: done [all steps from the journal]" in again.output
    after = (out / "journal.jsonl").read_text()
    assert after.startswith(before)  # nothing lost; only the broken model's retry was appended
    assert {json.loads(x)["model"] for x in after[len(before):].splitlines()} == {"broken"}
    assert _rows(out) == rows
    assert not list(out.rglob("*.tmp"))


def test_changed_settings_refuse_to_mix(tmp_path: Path, digits_net: Path) -> None:
    p = tmp_path / "one.yaml"
    p.write_text(f"defaults:\n  export: {{instances: 1}}\nmodels:\n  - path: {digits_net}\n"
                 "    data: {source: digits, layout: flat, n: 20}\n")
    out = tmp_path / "out"
    run_zoo(load_manifest(p), out)
    p.write_text(p.read_text().replace("instances: 1", "instances: 2"))
    res = CliRunner().invoke(main, ["zoo", str(p), "-o", str(out)])
    assert res.exit_code == 2 and "run with other settings" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_ray_and_process_pool_match_sequential(tmp_path: Path, digits_net: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed (pip install ray)")
    man = load_manifest(_manifest(tmp_path, digits_net))
    run_zoo(man, tmp_path / "local")
    pool = run_zoo(man, tmp_path / "pool", "local", ExecutorConfig(workers=2))
    ray_run = run_zoo(man, tmp_path / "ray", "ray", ExecutorConfig(num_cpus=2))
    assert [o.status for o in ray_run.outcomes] == [o.status for o in pool.outcomes] == ["done", "done"]
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "pool") == _rows(tmp_path / "local")
    for model in ("mnist256", "digits"):  # each model's instances ran as Ray tasks: the same verdicts one by one
        runs = [[{k: v for k, v in json.loads(x).items() if k in ("instance", "verdict", "counterexample")}
                 for x in (tmp_path / run / model / "verify.jsonl").read_text().splitlines()]
                for run in ("local", "ray")]
        assert sorted(runs[0], key=str) == sorted(runs[1], key=str) and runs[0]


def _wait_lines(path: Path, n: int, proc: subprocess.Popen, limit: float = 120) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.02)


def _kill(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(timeout=60)


def test_killed_run_resumes_to_the_same_summary(tmp_path: Path, digits_net: Path) -> None:
    man = _manifest(tmp_path, digits_net)
    out = tmp_path / "killed"
    cmd = [*CLI, "zoo", str(man), "-o", str(out)]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    first = subprocess.Popen(cmd, start_new_session=True, env=env, stderr=subprocess.DEVNULL)
    _wait_lines(out / "journal.jsonl", 3, first)
    _kill(first, signal.SIGKILL)
    killed_at = len((out / "journal.jsonl").read_text().splitlines())
    assert 3 <= killed_at < 13, "the first run should have been killed mid-way"
    second = subprocess.Popen(cmd, start_new_session=True, env=env, stderr=subprocess.DEVNULL)
    _wait_lines(out / "digits" / "verify.jsonl", 1, second)  # kill again inside the instance-level journal
    _kill(second, signal.SIGTERM)
    assert second.returncode in (0, 130)  # SIGTERM unwinds like Ctrl-C (130), never a crash
    third = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]
    run_zoo(load_manifest(man), tmp_path / "clean")
    assert _rows(out) == _rows(tmp_path / "clean")
    counts = _done_counts(out)
    assert set(counts.values()) == {1} and len(counts) == 5 + 8  # every step done exactly once
    for model in ("mnist256", "digits"):
        verified = Counter(json.loads(x)["instance"] for x in (out / model / "verify.jsonl").read_text().splitlines())
        assert verified and set(verified.values()) == {1}, f"{model}: an instance was verified twice"
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp"))


def test_folder_mode_two_nets_end_to_end_and_resumed(tmp_path: Path, digits_net: Path) -> None:
    """A folder of models (no manifest): every model gets the flags' settings; a rerun reuses every step."""
    import shutil

    from graftonnx import api
    from graftonnx.data import DataSpec, load_dataset
    from graftonnx.train import TrainConfig
    from graftonnx.train.api import stub_info, train_from_scratch

    folder = tmp_path / "nets"
    folder.mkdir()
    shutil.copy(digits_net, folder / "a_mlp32.onnx")
    data = load_dataset("digits", stub_info((64,), 10), DataSpec(layout="flat", n=300))
    cfg = TrainConfig(epochs=3, eps=0, lr=0.1, batch_size=32, progress=False, val_fraction=0, seed=1)
    api.save_model(train_from_scratch("mlp:24,24", data, cfg).model, folder / "b mlp24.onnx")
    out = tmp_path / "out"
    args = ["zoo", str(folder), "-o", str(out), "--data", "digits", "--layout", "flat", "--n", "60", "--eps", "0.03",
            "--ratios", "0.5", "--criterion", "instability", "--export-instances", "2", "--verify-timeout", "20",
            "--finetune", "--finetune-epochs", "1", "--finetune-batch-size", "32"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert [(r["model"], r["variant"], r["status"]) for r in rows] == [
        ("a_mlp32", "baseline", "done"), ("a_mlp32", "graft0.5-ft", "done"),
        ("b_mlp24", "baseline", "done"), ("b_mlp24", "graft0.5-ft", "done")]
    assert all(r["instances"] == 2 and 0 <= r["sa"] <= 1 for r in rows)
    recorded = json.loads((out / "manifest.json").read_text())["models"]
    for m in recorded:  # every flag landed in its own field (no positional shift)
        assert (m["eps"], m["criterion"], m["init"], m["schedule"]) == (0.03, "instability", "const", "target")
        assert (m["data"]["source"], m["data"]["n"], m["export"]["instances"], m["verify"]["timeout"]) == \
            ("digits", 60, 2, 20.0)
        assert (m["finetune"]["epochs"], m["finetune"]["batch_size"]) == (1, 32)
    before = (out / "journal.jsonl").read_text()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and again.output.count("[all steps from the journal]") == 2, again.output
    assert (out / "journal.jsonl").read_text() == before and _rows(out) == rows


def test_folder_flags_are_refused_with_a_manifest(tmp_path: Path, digits_net: Path) -> None:
    man = _manifest(tmp_path, digits_net)
    res = CliRunner().invoke(main, ["zoo", str(man), "-o", str(tmp_path / "o"), "--export-instances", "3"])
    assert res.exit_code == 2 and "--export-instances applies to a folder of models" in res.output


def test_verify_section_takes_the_chosen_backends_own_knobs(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("models:\n  - path: a.onnx\n    verify: {backend: neuralsat, mip: true, timeout: 9}\n")
    (e,) = load_manifest(p).entries
    assert (e.verify.backend, e.backend.mip, e.verify.timeout) == ("neuralsat", True, 9.0)
    assert e.to_json()["verify"] == {"backend": "neuralsat", "timeout": 9.0, "workers": 1, "device": "auto",
                                     "mip": True}  # grace_s is a runtime knob: no result depends on it
    p.write_text("models:\n  - path: a.onnx\n    verify: {backend: lirpa, mip: true}\n")
    with pytest.raises(BadInput, match=r"line 3: models\[0\] key 'verify.mip': unknown key for backend 'lirpa'"):
        load_manifest(p)
