"""What the VNN-COMP rules ask of an exported benchmark folder (issue 14, item 1).

``generate_properties.py SEED`` must run with numpy and the standard library only and give
back export's files for export's seed; LICENSE states the networks' license; ``--gz-only``
ships only .gz files; summed timeouts over 6 hours are refused; ``2.0/`` is self-contained.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DATASETS, model_path

from graftonnx.bench import read_vnnlib, read_vnnlib2
from graftonnx.cli import main

NET, DATA = str(model_path("mnist-net_256x2")), str(DATASETS / "eran_mnist_test.csv")
BLOCKED = ("graftonnx", "torch", "onnx", "onnxruntime")
REGENERATED = ("vnnlib", "2.0/vnnlib", "instances.csv", "2.0/instances.csv")


def _export(out: Path, *extra: str, instances: int = 3, seed: int = 3) -> tuple[int, str]:
    args = ["export", NET, "--data", DATA, "--eps", "0.02", "--instances", str(instances), "--seed", str(seed),
            "-o", str(out), *extra]
    res = CliRunner().invoke(main, args)
    return res.exit_code, res.output


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _generate(folder: Path, seed: int | str, blockers: Path) -> subprocess.CompletedProcess[str]:
    """Run the script in a fresh interpreter whose first sys.path entry makes graftonnx/torch/onnx unimportable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(blockers)
    return subprocess.run([sys.executable, "generate_properties.py", str(seed)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def blockers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("blockers")
    for name in BLOCKED:
        (d / f"{name}.py").write_text(f"raise ImportError('{name} is not available to generate_properties.py')\n")
    return d


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("b") / "bench"
    code, output = _export(out, "--license", "CC-BY-4.0", "--gz")
    assert code == 0, output
    return out


def test_blockers_really_block(blockers: Path, tmp_path: Path) -> None:
    probe = tmp_path / "generate_properties.py"
    probe.write_text("import sys\nfor m in sys.argv[1:]:\n    try:\n        __import__(m)\n    except ImportError:\n"
                     "        continue\n    raise SystemExit(m + ' imported')\nimport numpy\nprint('ok')\n")
    res = subprocess.run([sys.executable, str(probe), *BLOCKED], cwd=tmp_path, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
                         | {"PYTHONPATH": str(blockers)}, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


def test_generate_properties_reproduces_export(bench: Path, blockers: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    for rel in REGENERATED:  # the script must write these from data/ alone
        shutil.rmtree(copy / rel) if (copy / rel).is_dir() else (copy / rel).unlink()
    res = _generate(copy, 3, blockers)
    assert res.returncode == 0, res.stderr
    assert _files(copy) == _files(bench)  # byte for byte, .gz copies included


def test_generate_properties_other_seed(bench: Path, blockers: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    res = _generate(copy, 11, blockers)
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader((copy / "instances.csv").open()))
    assert rows != list(csv.reader((bench / "instances.csv").open())) and len(rows) == 3
    assert sorted(p.name for p in (copy / "vnnlib").glob("*.vnnlib")) == sorted(Path(r[1]).name for r in rows)
    status = json.loads((copy / "data" / "benchmark.json").read_text())
    assert status["export_seed"] == 3 and status["instances"] == 3
    for onnx_rel, v1, timeout in rows:  # valid: both versions read back as the same property
        assert (copy / onnx_rel).is_file() and timeout == "60"
        p1, p2 = read_vnnlib(copy / v1), read_vnnlib2(copy / "2.0" / v1)
        assert p1.same_as(p2) and p1.n_inputs == 784
        assert gzip.decompress((copy / (v1 + ".gz")).read_bytes()) == (copy / v1).read_bytes()
    assert _generate(copy, "-1", blockers).returncode == 2
    assert _generate(copy, "x", blockers).returncode == 2


def test_license_and_readme(bench: Path, tmp_path: Path) -> None:
    assert "CC-BY-4.0" in (bench / "LICENSE").read_text()
    readme = (bench / "README.md").read_text()
    assert "180 s = 0.05 h, within the limit" in readme and "generate_properties.py 3" in readme
    assert "a byte copy of the source network" in readme
    code, output = _export(tmp_path / "u")
    assert code == 0, output
    assert "unspecified" in (tmp_path / "u" / "LICENSE").read_text()
    code, output = _export(tmp_path / "bad", "--license", "")
    assert code == 2 and "--license" in output and not (tmp_path / "bad").exists()


def test_two_point_zero_is_self_contained(bench: Path) -> None:
    root = bench / "2.0"
    rows = list(csv.reader((root / "instances.csv").open()))
    assert len(rows) == 3
    for onnx_rel, v2, _ in rows:
        for rel in (onnx_rel, v2):
            path = (root / rel).resolve()
            assert path.is_file() and path.is_relative_to(root.resolve()), rel
    assert (root / "onnx" / "mnist-net_256x2.onnx").read_bytes() == (bench / "onnx" / "mnist-net_256x2.onnx"
                                                                    ).read_bytes()


def test_gz_only(tmp_path: Path, blockers: Path) -> None:
    out = tmp_path / "g"
    code, output = _export(out, "--gz-only", instances=2)
    assert code == 0, output
    names = _files(out)
    assert all(n.endswith(".gz") for n in names if n.startswith(("onnx/", "vnnlib/", "2.0/onnx/", "2.0/vnnlib/")))
    rows = list(csv.reader((out / "instances.csv").open()))
    assert all(r[0].endswith(".onnx.gz") and r[1].endswith(".vnnlib.gz") and (out / r[1]).is_file() for r in rows)
    assert gzip.decompress((out / "onnx" / "mnist-net_256x2.onnx.gz").read_bytes()) == Path(NET).read_bytes()
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert _generate(copy, 3, blockers).returncode == 0 and _files(copy) == names
    # graftonnx verify runs a .gz-only folder from gunzipped copies, journaled under the listed names,
    # with the same verdicts as the plain folder of the same seed
    runs = {}
    for name, folder in (("gz", out), ("plain", tmp_path / "plain")):
        if name == "plain":
            assert _export(folder, instances=2)[0] == 0
        res = CliRunner().invoke(main, ["verify", str(folder), "--backend", "lirpa", "--json", "--no-progress",
                                        "--results", str(tmp_path / f"{name}.jsonl")])
        assert res.exit_code == 0, res.output
        runs[name] = json.loads(res.output)["results"]
    assert [r["model"] for r in runs["gz"]] == [r[0] for r in rows]  # the listed .onnx.gz names
    assert [r["verdict"] for r in runs["gz"]] == [r["verdict"] for r in runs["plain"]]
    assert _files(out) == names  # the benchmark folder is untouched: copies live beside the journal
    (copy / "vnnlib" / Path(rows[0][1]).name).write_bytes(b"\x1f\x8b broken")
    res = CliRunner().invoke(main, ["verify", str(copy), "--backend", "lirpa", "--results",
                                    str(tmp_path / "broken.jsonl"), "--no-progress"])
    assert res.exit_code == 2 and "Traceback" not in res.output and ".vnnlib.gz" in res.output
    code, output = _export(tmp_path / "both", "--gz", "--gz-only")
    assert code == 2 and "contradict" in output and not (tmp_path / "both").exists()


def test_six_hour_limit(tmp_path: Path) -> None:
    code, output = _export(tmp_path / "over", "--timeout", "7201")  # 3 × 7201 s > 21600 s
    assert code == 2 and "6 hours" in output and "--allow-over-6h" in output, output
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even the temp folder
    code, output = _export(tmp_path / "ok", "--timeout", "7201", "--allow-over-6h")
    assert code == 0, output
    assert "OVER the limit" in (tmp_path / "ok" / "README.md").read_text()
    code, output = _export(tmp_path / "edge", "--timeout", "7200")  # exactly 6 hours is allowed
    assert code == 0, output


def test_readme_records_the_verifier_ready_check(tmp_path: Path, blockers: Path) -> None:
    import numpy as np
    import onnx

    from graftonnx.model import inspect_model, load_model
    from graftonnx.planning import GraftPlan, LayerPlan
    from graftonnx.rewrite import apply_plan

    m = load_model(NET)
    info = inspect_model(m)
    s = info.relus[0]
    idx = tuple(range(0, s.size, 4))
    rng = np.random.default_rng(0)
    plan = GraftPlan((LayerPlan(s.name, "neuron", idx, tuple(rng.uniform(0.1, 0.9, len(idx))),
                                tuple(rng.uniform(-0.2, 0.2, len(idx)))),))
    grafted = tmp_path / "grafted.onnx"
    onnx.save(apply_plan(m, plan, info), str(grafted))
    out = tmp_path / "g"
    res = CliRunner().invoke(main, ["export", str(grafted), "--data", DATA, "--eps", "0.02", "--instances", "2",
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    readme = (out / "README.md").read_text()
    assert "verifier-ready form" in readme and "max output difference from the grafted mask form" in readme
    assert "agree within 1e-05 × max(1, |output|)" in readme and "export refuses otherwise" in readme
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert _generate(copy, 0, blockers).returncode == 0 and _files(copy) == _files(out)
