"""One settings schema: a knob declared once reaches the CLI, the manifest, provenance and the API.

Why these tests: the knobs used to be written five to seven times and had drifted (the
API silently replaced ``settings.eps`` by its own default).  Here a stage that exists only
in this test proves the derivation is generic, and ``graft(settings=...)`` is checked
field by field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import model_path

import graftonnx as g
from graftonnx.cli import main
from graftonnx.errors import BadInput
from graftonnx.planning.settings import GraftSettings
from graftonnx.settings import STAGES, Settings, knob, knobs, stage
from graftonnx.zoo import load_manifest


@dataclass(frozen=True)
class ProbeSettings(Settings):
    """A stage that exists only in this test."""

    level: int = knob(3, "How hard the probe probes.", check=lambda v: None if v >= 1 else "must be at least 1")
    mode: str = knob("soft", "Probe mode.", choices=("soft", "hard"))


@pytest.fixture
def probe_stage() -> Iterator[type]:
    stage("probe")(ProbeSettings)
    try:
        yield ProbeSettings
    finally:
        STAGES._items.pop("probe")


def test_test_only_stage_reaches_cli_manifest_and_provenance(probe_stage: type, tmp_path: Path) -> None:
    help_text = " ".join(CliRunner().invoke(main, ["zoo", "--help"]).output.split())
    assert "--probe-level INTEGER How hard the probe probes. [default: 3]" in help_text
    assert "--probe-mode [soft|hard]" in help_text
    man = tmp_path / "m.yaml"
    man.write_text("defaults:\n  probe: {mode: hard}\nmodels:\n  - path: a.onnx\n  - path: b.onnx\n"
                   "    probe: {level: 0}\n")
    with pytest.raises(BadInput, match=r"line 6: models\[1\] key 'probe.level': must be at least 1"):
        load_manifest(man)
    man.write_text("defaults:\n  probe: {mode: hard}\nmodels:\n  - path: a.onnx\n  - path: b.onnx\n"
                   "    probe: {level: 5}\n")
    a, b = load_manifest(man).entries
    assert dict(a.extra)["probe"] == ProbeSettings(3, "hard") and dict(b.extra)["probe"] == ProbeSettings(5, "hard")
    assert a.to_json()["probe"] == {"level": 3, "mode": "hard"} and a.fingerprint() != b.fingerprint()
    with pytest.raises(BadInput, match=r"--mode 'loud': 'loud' is not one of soft, hard"):
        ProbeSettings(mode="loud")


def test_every_graft_knob_is_a_cli_flag_and_a_manifest_key(tmp_path: Path) -> None:
    help_text = CliRunner().invoke(main, ["graft", "--help"]).output
    for f, _ in knobs(GraftSettings):
        assert "--" + f.name.replace("_", "-") in help_text, f.name
    man = tmp_path / "m.yaml"
    man.write_text("defaults:\n  significance: act\n  granularity: auto\n  scope: per-layer\n"
                   "models:\n  - path: a.onnx\n")
    (e,) = load_manifest(man).entries
    assert (e.graft.significance, e.graft.granularity, e.graft.scope) == ("act", "auto", "per-layer")
    assert e.graft.init == GraftSettings().init == "const"  # one default, wherever it is read


def _every_field_changed() -> GraftSettings:
    s = GraftSettings(init="fit", eps=0.05, bound="ibp", significance="act", batch_size=17, criterion="random",
                      ratio=0.3, scope="per-layer", granularity="neuron", layers=("1",), stages=3, seed=7,
                      schedule="total", device="cpu")
    defaults = GraftSettings()
    same = [f.name for f in fields(s) if getattr(s, f.name) == getattr(defaults, f.name)
            and f.name not in ("bound", "granularity", "count")]  # count: exclusive with ratio, checked below
    assert not same, f"extend this test to the new knob(s) {same}"
    return s


def test_graft_honours_every_settings_field() -> None:
    net, data = str(model_path("mnist-net_256x2")), None
    s = _every_field_changed()
    result = g.graft(net, data, settings=s)
    assert result.plan.provenance.settings == s  # recorded exactly, nothing replaced by a keyword default
    assert result.scores is not None and (result.scores.eps, result.scores.significance) == (0.05, "act")
    assert [lp.site for lp in result.plan.layers] == [result.info.relus[1].name]  # layers=("1",)
    assert result.plan.total == round(0.3 * result.info.relus[1].size)  # per-layer ratio
    assert result.plan == g.plan(net, data, s)  # the same plan as the explicit call (seeded random)
    meta = {p.key: p.value for p in result.model.metadata_props}
    prov = json.loads(meta["graftonnx.provenance"])
    assert (prov["eps"], prov["ratio"], prov["seed"], prov["schedule"], prov["batch_size"]) == (0.05, 0.3, 7,
                                                                                                "total", 17)
    assert g.graft(net, data, settings=s, seed=8).plan.provenance.settings.seed == 8  # keywords override
    assert g.graft(net, data, settings=GraftSettings(count=5)).plan.total == 5


def test_api_never_mutates_its_model_argument() -> None:
    import onnx

    proto = onnx.load(str(model_path("mnist-net_256x2")))
    for node in proto.graph.node:
        node.name = ""
    before = proto.SerializeToString()
    g.graft(proto, None, ratio=0.2)
    assert proto.SerializeToString() == before


@pytest.mark.parametrize("kw, match", [({"eps": -1.0}, "--eps -1.0: must be > 0"),
                                       ({"criterion": "best"}, "'best' is not one of"),
                                       ({"ratio": 0.5, "count": 3}, "exactly one"),
                                       ({"colour": "red"}, "unknown graft setting 'colour'")])
def test_bad_api_settings_are_one_line(kw: dict, match: str) -> None:
    with pytest.raises(BadInput, match=match):
        g.graft(str(model_path("mnist-net_256x2")), None, **kw)


def test_one_graft_run_inspects_its_model_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`graftonnx graft` inspects the input once (and the grafted output once), through one model handle."""
    import graftonnx.model.handle as handle

    seen: list[int] = []
    real = handle.inspect_model
    monkeypatch.setattr(handle, "inspect_model", lambda m: seen.append(len(m.graph.node)) or real(m))
    handle._cache.clear()
    res = CliRunner().invoke(main, ["graft", str(model_path("mnist-net_256x2")), "--ratio", "0.3", "--n", "20",
                                    "-o", str(tmp_path / "g.onnx"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert len(seen) == 2 and seen[0] != seen[1], seen  # the input, then the grafted model


@pytest.mark.parametrize("args, needle", [
    (["--backend", "lirpa", "--mip"], "--mip is not an option of backend 'lirpa'"),
    (["--backend", "neuralsat", "--conv-mode", "matrix"], "--conv-mode is not an option of backend 'neuralsat'")])
def test_a_flag_of_another_backend_is_refused(tmp_path: Path, args: list[str], needle: str) -> None:
    """Each backend declares its own knobs: a flag the chosen backend would ignore is one clear error."""
    res = CliRunner().invoke(main, ["verify", str(tmp_path), *args])
    assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output


def test_a_knob_added_later_leaves_fingerprints_alone_at_its_default() -> None:
    """Journals, checkpoints and cached networks made before a knob existed must still match after an upgrade."""
    from dataclasses import dataclass

    from graftonnx.settings import Settings, fingerprint_dict, knob
    from graftonnx.train import TrainConfig

    @dataclass(frozen=True)
    class Before(Settings):
        lr: float = knob(0.1, "lr")

    @dataclass(frozen=True)
    class After(Settings):
        lr: float = knob(0.1, "lr")
        rs: float = knob(0.0, "rs", added=True)

    assert fingerprint_dict(After()) == fingerprint_dict(Before())
    assert fingerprint_dict(After(rs=1.0)) == {"lr": 0.1, "rs": 1.0}  # a value that changes results is keyed
    assert "teacher" not in TrainConfig().result_fields() and "rs_weight" in TrainConfig(rs_weight=1).result_fields()
