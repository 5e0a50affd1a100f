"""The README's Python example runs as written (from a scratch folder, ../shared made absolute)."""

from __future__ import annotations

import re

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
