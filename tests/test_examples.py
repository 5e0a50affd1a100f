"""The example READMEs are executed, so the documented commands keep working."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import MODELS, ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*/README.md"))


def _bash_blocks(path: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("readme", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_readme_runs(readme: Path, tmp_path: Path) -> None:
    if not MODELS.exists():
        pytest.skip("../shared not available")
    blocks = _bash_blocks(readme)
    assert blocks, f"{readme} has no bash block"
    env = os.environ | {"OUT": str(tmp_path)}
    for block in blocks:
        res = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert any(tmp_path.iterdir()), "the example wrote nothing"
