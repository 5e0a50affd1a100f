"""α,β-CROWN configuration pass-through: a user's base YAML and ``KEY=VALUE`` overrides around graftonnx's keys.

Why: α,β-CROWN's competitive settings live in tuned config files (``exp_configs/vnncomp25/
*.yaml``: solver batch sizes, α/β iterations, attack budgets); a benchmark author must be
able to verify with them.  Layering, lowest first: the base file (``--abcrown-config``),
the keys graftonnx sets per run (device, conv mode, branching, sparse intermediates), then
``--abcrown-set`` overrides.  The keys that tie a run to one instance (its timeout, where
the counterexample goes, that it is saved, the model's input shape) stay graftonnx's: a
base file may carry them (they are replaced), an override may not.  When the checkout is
present the merged config is checked with α,β-CROWN's own parser (``arguments.Config``),
so a misspelled key is one clear error before any instance runs, not a crash per instance.
"""

from __future__ import annotations

import copy
import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ...errors import BadInput

__all__ = ["OWNED_KEYS", "load_base", "parse_overrides", "merge", "check_with_checkout"]

#: Dotted keys graftonnx sets for every instance; ``--abcrown-set`` may not change them.
OWNED_KEYS = ("bab.timeout", "attack.cex_path", "general.save_adv_example", "model.input_shape")


def load_base(path: str | None) -> dict[str, Any]:
    """The user's base config (a YAML mapping), or ``{}``; BadInput naming the file otherwise."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"--abcrown-config {p} not found: give an α,β-CROWN config .yaml")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise BadInput(f"--abcrown-config {p}{line} is not valid YAML: fix the file") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInput(f"--abcrown-config {p} is not a mapping of config sections (general:, bab:, ...)")
    return raw


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["bab.branching.method=fsb", "solver.batch_size=64"]`` → a nested dict (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise BadInput(f"--abcrown-set {item!r} is not KEY=VALUE with a dotted key, e.g. bab.branching.method=fsb")
        if key in OWNED_KEYS:
            raise BadInput(f"--abcrown-set {key}: graftonnx sets it per instance ({', '.join(OWNED_KEYS)}); "
                           "use --timeout for the time limit")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise BadInput(f"--abcrown-set {item!r}: the value is not valid YAML") from None
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise BadInput(f"--abcrown-set {item!r} conflicts with another override of {part!r}")
        node[parts[-1]] = value
    return out


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged onto a copy of ``base`` (mappings merge key by key, other values replace)."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_CHECK = ("import sys; sys.argv = ['abcrown.py']; import arguments; "
          "arguments.Config.parse_config(['--config', sys.argv_cfg], verbose=False)")


def check_with_checkout(python: str, root: Path, config: Mapping[str, Any], timeout: float = 180.0) -> None:
    """Parse ``config`` with the checkout's own ``arguments.Config``; BadInput with its message when it refuses."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "check.yaml"
        path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        code = _CHECK.replace("sys.argv_cfg", json.dumps(str(path)))
        try:
            proc = subprocess.run([python, "-c", code], cwd=root, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BadInput(f"cannot check the α,β-CROWN config with {python} ({type(exc).__name__}): "
                           "fix --abcrown-python") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit code {proc.returncode}"
        raise BadInput(f"α,β-CROWN rejects the config from --abcrown-config/--abcrown-set: {why[:300]}")
