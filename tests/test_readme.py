"""The README runs as written: its Python example and every command of its "Use" block."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from tests.conftest import ROOT, SHARED


def test_readme_python_block(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block.replace("../shared", str(SHARED)), "README.md", "exec"), {})  # noqa: S102
    assert (tmp_path / "net-graft50.onnx").exists()
    before, after = capsys.readouterr().out.split("→")
    assert float(after) < float(before.split()[-1])  # grafting half the neurons lowers UNR


def _use_block() -> str:
    text = (ROOT / "README.md").read_text()
    use = text[text.index("## Use"):]
    return re.findall(r"```bash\n(.*?)```", use, flags=re.S)[0]


@pytest.mark.slow
def test_readme_use_block_runs_as_written(tmp_path):
    """Every command of the README's "Use" block, on the shared nets, in a folder holding the files it names."""
    if not (SHARED / "models").exists():
        pytest.skip("../shared not available")
    shutil.copy(SHARED / "models" / "mnist-net_256x2.onnx", tmp_path / "net.onnx")
    shutil.copy(SHARED / "models" / "resnet_2b.onnx", tmp_path / "resnet_2b.onnx")
    for csv in ("eran_mnist_test.csv", "eran_cifar10_test.csv"):
        (tmp_path / csv).symlink_to(SHARED / "datasets" / csv)
    rows = np.loadtxt(SHARED / "datasets" / "eran_mnist_test.csv", delimiter=",", max_rows=200)
    np.savez(tmp_path / "images.npz", x=(rows[:, 1:] / 255).astype(np.float32))  # unlabelled: --teacher needs none
    manifest = (ROOT / "examples" / "zoo" / "manifest.yaml").read_text().replace("../../../shared", str(SHARED))
    (tmp_path / "manifest.yaml").write_text(manifest)
    env = os.environ | {"OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", _use_block()], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    for name in ("out0.onnx", "resnet_2b-graft50.onnx", "scores.json", "plan.json", "out.onnx", "tuned.onnx",
                 "bench/instances.csv", "bench/lirpa.jsonl", "report/report.md", "ready.onnx", "mlp.onnx",
                 "zoo-out/summary.md", "distilled.onnx", "tune-out/chosen.onnx", "tune-out/tune.md"):
        assert (tmp_path / name).is_file(), name
    assert "Traceback" not in res.stderr
