"""α,β-CROWN config pass-through: a base YAML and KEY=VALUE overrides layered around graftonnx's own keys.

The layering is checked on the YAML each instance gets; the validation is checked against a
fake checkout whose ``arguments.Config`` refuses unknown keys the way α,β-CROWN's does, and,
where a real CPU checkout is built (``$ABCROWN``, see ../shared/tools/abcrown-cpu-env),
against α,β-CROWN's own parser.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import model_path
from verify_helpers import make_bench

from graftonnx.cli import main
from graftonnx.errors import BadInput
from graftonnx.verify.backends.abcrown import AbcrownConfig, AbcrownOptions
from graftonnx.verify.backends.abcrown_config import merge, parse_overrides
from graftonnx.verify.backends.base import make_backend

#: Refuses a key outside a small known tree, like α,β-CROWN's set_dict_by_hierarchy(nonexist_ok=False).
FAKE_ARGUMENTS = '''
import yaml
KNOWN = {"general": {"device", "conv_mode", "sparse_interm", "save_adv_example", "complete_verifier"},
         "attack": {"cex_path", "pgd_order"}, "bab": {"timeout", "branching"}, "solver": {"batch_size"},
         "model": {"input_shape"}}
class _Config:
    def parse_config(self, args, verbose=True):
        cfg = yaml.safe_load(open(args[1]))
        for sec, keys in cfg.items():
            for k in keys:
                if sec not in KNOWN or k not in KNOWN[sec]:
                    raise ValueError(f"Config key {k} not found!")
Config = _Config()
'''


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "abcrown" / "complete_verifier"
    root.mkdir(parents=True)
    (root / "abcrown.py").write_text("print('fake')\n")
    (root / "arguments.py").write_text(textwrap.dedent(FAKE_ARGUMENTS))
    return root


def test_layers_base_then_graftonnx_then_overrides(tmp_path: Path) -> None:
    base = {"general": {"device": "cuda", "conv_mode": "matrix"}, "solver": {"batch_size": 4096},
            "bab": {"timeout": 999}}
    sets = parse_overrides(["solver.batch_size=64", "bab.branching.method=fsb"])
    cfg = AbcrownConfig(device="cpu", timeout=30, cex_path="c.txt", base=base, sets=sets).as_dict()
    assert cfg["general"]["device"] == "cpu" and cfg["general"]["conv_mode"] == "patches"  # graftonnx over base
    assert cfg["bab"]["timeout"] == 30.0  # the instance's own limit, whatever the base says
    assert cfg["solver"]["batch_size"] == 64 and cfg["bab"]["branching"] == {"method": "fsb"}  # overrides last
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


@pytest.mark.parametrize("item, needle", [("bab.timeout=5", "graftonnx sets it per instance"),
                                          ("nodot", "KEY=VALUE"), ("a..b=1", "KEY=VALUE"),
                                          ("solver.batch_size=[1,", "not valid YAML")])
def test_bad_overrides_are_one_line(item: str, needle: str) -> None:
    with pytest.raises(BadInput, match=needle):
        parse_overrides([item])


def test_unknown_key_is_refused_by_the_checkouts_parser(checkout: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("solver: {batch_size: 128}\nattack: {pgd_order: before}\n")
    b = make_backend("abcrown", AbcrownOptions(device="cpu", path=str(checkout), config=str(good),
                                               set=("bab.branching.method=fsb",)))
    assert b.config(10, tmp_path).as_dict()["solver"]["batch_size"] == 128
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver: {batch_sise: 128}\n")
    with pytest.raises(BadInput, match="α,β-CROWN rejects the config .*Config key batch_sise not found"):
        make_backend("abcrown", AbcrownOptions(device="cpu", path=str(checkout), config=str(bad)))


@pytest.mark.parametrize("text, needle", [(None, "--abcrown-config {cfg} not found"),
                                          ("a: [1,\n", "line 2 is not valid YAML"),
                                          ("- 1\n- 2\n", "is not a mapping")])
def test_bad_base_config_is_one_cli_line(checkout: Path, tmp_path: Path, mnist_csv: Path, text: str | None,
                                         needle: str) -> None:
    cfg = tmp_path / "base.yaml"
    if text is not None:
        cfg.write_text(text)
    needle = needle.format(cfg=cfg)
    bench = make_bench(tmp_path, model_path("mnist-net_256x2"), mnist_csv, [(0, 0.01)])
    res = CliRunner().invoke(main, ["verify", str(bench), "--backend", "abcrown", "--abcrown", str(checkout),
                                    "--device", "cpu", "--abcrown-config", str(cfg), "--results",
                                    str(tmp_path / "r.jsonl")])
    assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.skipif(not os.environ.get("ABCROWN") or not os.environ.get("ABCROWN_PY"),
                    reason="no α,β-CROWN CPU checkout ($ABCROWN, $ABCROWN_PY; ../shared/tools/abcrown-cpu-env)")
def test_real_checkout_parser_accepts_a_tuned_config_and_refuses_a_typo(tmp_path: Path) -> None:
    root, py = Path(os.environ["ABCROWN"]) / "complete_verifier", os.environ["ABCROWN_PY"]
    tuned = next(iter(sorted((root / "exp_configs").rglob("*.yaml"))), None)
    assert tuned is not None
    base = yaml.safe_load(tuned.read_text()) or {}
    base.pop("model", None)  # a tuned config names its own model files; graftonnx passes the instance's
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(base))
    make_backend("abcrown", AbcrownOptions(device="cpu", path=str(root), python=py, config=str(good)))
    with pytest.raises(BadInput, match="not found"):
        make_backend("abcrown", AbcrownOptions(device="cpu", path=str(root), python=py,
                                               set=("solver.batch_sise=3",)))


@pytest.mark.parametrize("seconds, verdict", [(3.0, "unknown"), (59.5, "timeout")])
def test_timeout_word_well_inside_the_budget_is_unknown(tmp_path: Path, seconds: float, verdict: str) -> None:
    """α,β-CROWN's results file says "timeout" for "unknown" too; an early one is α,β-CROWN giving up."""
    from graftonnx.verify.backends.abcrown import AbcrownBackend
    from graftonnx.verify.backends.base import ProcOutcome

    results, log = tmp_path / "abcrown_results.txt", tmp_path / "abcrown.log"
    results.write_text("timeout")
    log.write_text("Result: timeout\n")
    backend = AbcrownBackend(tmp_path, device="cpu")
    r = backend._result(tmp_path / "m.onnx", tmp_path / "p.vnnlib", ProcOutcome(0, seconds, False, log), results,
                        seconds, timeout=60.0)
    assert r.verdict == verdict, r.message
