"""graftonnx report: metrics from real and synthetic journals on a tiny exported benchmark.

The benchmark holds the real mnist-net_256x2, two grafted variants of it (one named after
it, one not) and three ERAN MNIST properties; the real journal comes from the lirpa
backend (IBP, a second or two), the synthetic one has hand-chosen verdicts and times so
every number in the report can be checked exactly.
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import DATASETS, model_path
from matplotlib.image import imread
from onnx import numpy_helper

from graftonnx import api
from graftonnx.bench import export_benchmark, read_vnnlib
from graftonnx.cli import main
from graftonnx.data import Dataset, DataSpec, load_dataset
from graftonnx.errors import BadInput
from graftonnx.model import inspect_model, load_model
from graftonnx.report import (
    CSV_COLUMNS,
    PLOT_FILES,
    ReportOptions,
    build_report,
    group_key,
    markdown_text,
    read_journal,
    write_report,
)
from graftonnx.report import write as write_mod
from graftonnx.verify import verify_benchmark
from graftonnx.verify.backends.lirpa import LirpaOptions
from graftonnx.verify.result import Result

NET = "mnist-net_256x2"
pytestmark = pytest.mark.filterwarnings("ignore:fake has results for 2 of the 3")
BASE, G50, TUNED = f"onnx/{NET}.onnx", f"onnx/{NET}-graft50.onnx", "onnx/tuned.onnx"
# Synthetic verdicts and times per model, in the order of the benchmark's three properties.
SYNTH = {BASE: [("unsat", 1.0), ("timeout", 30.5), ("sat", 3.0)],
         G50: [("unsat", 0.5), ("unsat", 2.5), ("unknown", 4.0)],
         TUNED: [("unsat", 0.25), ("error", 0.1)]}  # third instance never ran: "missing"


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    info = inspect_model(load_model(model_path(NET)))
    return load_dataset(str(DATASETS / "eran_mnist_test.csv"), info, DataSpec(n=8))


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, mnist: Dataset) -> Path:
    """Baseline + two grafted variants (instability criterion, act significance) and 3 properties."""
    tmp = tmp_path_factory.mktemp("report")
    net = model_path(NET)
    g50 = tmp / f"{NET}-graft50.onnx"
    tuned = tmp / "tuned.onnx"
    api.graft(net, mnist, ratio=0.5, eps=0.02, significance="act", criterion="instability").save(g50)
    api.graft(net, mnist, ratio=0.75, eps=0.02, significance="act", criterion="instability").save(tuned)
    out = tmp / "bench"
    export_benchmark([net, g50, tuned], mnist, eps=0.02, n=3, seed=0, out=out, timeout=30)
    return out


def _instances(bench: Path) -> list[tuple[str, str]]:
    return [tuple(line.split(",")[:2]) for line in (bench / "instances.csv").read_text().split()]


@pytest.fixture(scope="module")
def synth_journal(bench: Path) -> Path:
    lines, seen = [], {m: 0 for m in SYNTH}
    for model, vnnlib in _instances(bench):
        k = seen[model]
        seen[model] += 1
        if k < len(SYNTH[model]):
            verdict, sec = SYNTH[model][k]
            r = Result(f"{model}::{vnnlib}", model, vnnlib, "fake", verdict, sec)
            lines.append(json.dumps(r.to_json()))
    path = bench.parent / "synth.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def real_journal(bench: Path) -> Path:
    path = bench.parent / "real.jsonl"
    verify_benchmark(bench, "lirpa", LirpaOptions(method="ibp"), path, progress=False)
    return path


def _row(report, model: str, backend: str = "fake"):
    return next(r for r in report.rows if r.model == model and r.backend == backend)


def _numpy_ibp_unstable(bench: Path) -> list[np.ndarray]:
    """Independent reference: interval arithmetic in float64 straight from the Gemm weights."""
    w = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in onnx.load(bench / BASE).graph.initializer}
    per_layer = [[], []]
    for vnnlib in sorted({v for m, v in _instances(bench) if m == BASE}):
        p = read_vnnlib(bench / vnnlib)
        lo, hi = p.lower.astype(np.float64), p.upper.astype(np.float64)
        for k, layer in enumerate(("layers.0", "layers.2")):
            c, r = (lo + hi) / 2, (hi - lo) / 2
            wk = w[f"{layer}.weight"]
            c, r = wk @ c + w[f"{layer}.bias"], np.abs(wk) @ r
            lo, hi = c - r, c + r
            per_layer[k].append(int(((lo < 0) & (hi > 0)).sum()))
            lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
    return [np.asarray(x) for x in per_layer]


def test_synthetic_counts_va_and_times(bench: Path, synth_journal: Path) -> None:
    with pytest.warns(UserWarning, match="results for 2 of the 3 instances"):
        rep = build_report([synth_journal], bench)
    for model, recs in SYNTH.items():
        r = _row(rep, model)
        verdicts, times = [v for v, _ in recs], [t for _, t in recs]
        assert r.instances == 3 and r.missing == 3 - len(recs)
        assert r.va == pytest.approx(verdicts.count("unsat") / 3)
        assert (r.sat, r.unsat, r.timeouts, r.unknown, r.errors) == tuple(
            verdicts.count(v) for v in ("sat", "unsat", "timeout", "unknown", "error"))
        assert r.median_time == pytest.approx(statistics.median(times))
        assert r.mean_time == pytest.approx(statistics.fmean(times))
    base = _row(rep, BASE)
    assert base.median_time == pytest.approx(3.0) and base.mean_time_solved == pytest.approx(2.0)
    assert _row(rep, G50).median_time_solved == pytest.approx(1.5)
    assert _row(rep, TUNED).va == pytest.approx(1 / 3)  # unrun instance counts against VA
    twice = build_report([synth_journal, synth_journal], bench)  # the same results again: later lines win
    assert [(r.va, r.times) for r in twice.rows] == [(r.va, r.times) for r in rep.rows]


def test_grafted_rows_carry_provenance_and_sort_beside_baseline(bench: Path, synth_journal: Path) -> None:
    rep = build_report([synth_journal], bench)
    assert [r.model for r in rep.rows] == [BASE, G50, TUNED]  # baseline, then ratio 0.5, then 0.75
    assert {r.group for r in rep.rows} == {NET}  # tuned.onnx is recognised by its ReLU sites
    base, g50, tuned = rep.rows
    assert not base.graft.grafted and base.graft.ratio is None
    assert (g50.graft.ratio, g50.graft.criterion) == (0.5, "instability")
    assert (tuned.graft.ratio, tuned.graft.criterion) == (0.75, "instability")
    assert g50.graft.neurons == 256 and tuned.graft.neurons == 384  # of 512 ReLUs
    md = markdown_text(rep)
    assert "| ratio | criterion |" in md and "| 0.5 | instability |" in md


def test_unr_matches_numpy_reference_and_grafting_lowers_it(bench: Path, synth_journal: Path) -> None:
    rep = build_report([synth_journal], bench)
    base, g50, tuned = rep.rows
    ref = _numpy_ibp_unstable(bench)
    assert base.unr.boxes == 3 and base.unr.neurons == 512
    for lay, counts in zip(base.unr.layers, ref, strict=True):
        assert lay.size == 256
        assert abs(lay.unstable - counts.mean()) <= 1.0  # float32 ORT vs float64 numpy: at most a borderline flip
    assert base.unr.unstable == pytest.approx(sum(x.unstable for x in base.unr.layers))
    assert base.unr.unr > 0.02
    assert tuned.unr.unr < g50.unr.unr < base.unr.unr
    for r in (g50, tuned):
        # A site never has more unstable neurons than it has un-grafted ones.
        assert r.unr.unstable <= 512 - r.graft.neurons
    crown = build_report([synth_journal], bench, ReportOptions(bound="crown"))
    for a, b in zip(rep.rows, crown.rows, strict=True):
        assert b.unr.bound == "crown" and b.unr.unr <= a.unr.unr + 1e-9  # CROWN is never looser than IBP


def test_real_lirpa_journal(bench: Path, real_journal: Path) -> None:
    lines = [json.loads(x) for x in real_journal.read_text().splitlines()]
    assert len(lines) == 9
    rep = build_report([real_journal], bench)
    assert rep.backends == ("lirpa",)
    for r in rep.rows:
        mine = [x for x in lines if x["model"] == r.model]
        assert r.instances == 3 and r.missing == 0
        assert r.unsat == sum(x["verdict"] == "unsat" for x in mine)
        assert r.va == pytest.approx(r.unsat / 3)
        assert r.median_time == pytest.approx(statistics.median(x["seconds"] for x in mine))


def test_cli_writes_all_files(bench: Path, synth_journal: Path, real_journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["report", str(synth_journal), str(real_journal), "--bench", str(bench),
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted(["report.md", "report.csv", "report.json", *PLOT_FILES])
    with open(out / "report.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert len(rows) == 6 and {r["backend"] for r in rows} == {"fake", "lirpa"}
    fake_base = next(r for r in rows if r["model"] == BASE and r["backend"] == "fake")
    assert float(fake_base["va"]) == pytest.approx(1 / 3) and fake_base["ratio"] == "" and fake_base["sa"] == ""
    assert next(r for r in rows if r["model"] == G50)["ratio"] == "0.5"
    doc = json.loads((out / "report.json").read_text())
    assert {"bench", "journals", "options", "models", "plots"} <= set(doc)
    assert {"va", "unr", "times", "verdicts", "graft", "median_time"} <= set(doc["models"][0])
    assert len(doc["models"][0]["unr"]["layers"]) == 2
    for name in PLOT_FILES:
        img = imread(out / name)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
        assert img[..., :3].std() > 0.05  # something was drawn
    md = (out / "report.md").read_text()
    assert "![va](va.png)" in md and "33.3% (1/3)" in md
    # The existing folder is kept without --force, replaced with it.
    again = CliRunner().invoke(main, ["report", str(synth_journal), "--bench", str(bench), "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    forced = CliRunner().invoke(main, ["report", str(synth_journal), "--bench", str(bench), "-o", str(out),
                                       "--force", "--no-plots", "--json"])
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["models"][0]["backend"] == "fake"
    assert not (out / "va.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temp or old folders left


def test_sa_and_ra(bench: Path, synth_journal: Path, mnist: Dataset) -> None:
    opts = ReportOptions(eps=0.02, steps=10, restarts=1)
    rep = build_report([synth_journal], bench, opts, mnist)
    base = rep.rows[0]
    assert base.sa == pytest.approx(api.accuracy(model_path(NET), mnist))
    for r in rep.rows:
        assert 0 <= r.ra <= r.sa <= 1
    md = markdown_text(rep)
    assert "| SA | RA |" in md and "PGD-10×1 at eps 0.02" in md
    sa_only = build_report([synth_journal], bench, ReportOptions(), mnist)
    assert sa_only.rows[0].sa == base.sa and sa_only.rows[0].ra is None


def _cli(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["report", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


def test_bad_journals_fail_cleanly(bench: Path, synth_journal: Path, tmp_path: Path) -> None:
    good = synth_journal.read_text().splitlines()
    cases = {
        "garbled.jsonl": ([good[0], "not json at all", good[1]], "garbled.jsonl line 2 is not JSON"),
        "fields.jsonl": ([good[0], json.dumps({"instance": "x", "verdict": "sat"})], "line 2 lacks model"),
        "verdict.jsonl": ([good[0].replace('"unsat"', '"proved"')], "verdict 'proved'"),
        "seconds.jsonl": ([good[0].replace('"seconds": 1.0', '"seconds": "soon"')], "line 1 is malformed"),
        "array.jsonl": (["[1, 2]"], "line 1 is not a JSON object"),
        "empty.jsonl": ([""], "holds no results"),
        "foreign.jsonl": ([good[0].replace("vnnlib/img", "vnnlib/other")], "is not in"),
    }
    for name, (lines, msg) in cases.items():
        p = tmp_path / name
        p.write_text("\n".join(lines) + "\n")
        code, out = _cli([str(p), "--bench", str(bench), "-o", str(tmp_path / "o")])
        assert code == 2 and msg in out and "Traceback" not in out, (name, out)
        assert out.count("\n") == 1
    for args, msg in [([str(tmp_path / "none.jsonl")], "not found"),
                      ([str(synth_journal), "--eps", "0.02"], "give --data too"),
                      ([str(synth_journal), "--bound", "zonotope"], "zonotope")]:
        bench_args = ["--bench", str(bench), "-o", str(tmp_path / "o")]
        code, out = _cli(args + bench_args)
        assert code == 2 and msg in out, out
    code, out = _cli([str(synth_journal), "--bench", str(tmp_path / "nobench"), "-o", str(tmp_path / "o")])
    assert code == 2 and "instances.csv" in out
    code, out = _cli([str(synth_journal), "--bench", str(bench), "-o", str(tmp_path / "missing" / "o")])
    assert code == 2 and "does not exist" in out
    assert not (tmp_path / "o").exists()


def test_truncated_lines_are_skipped_with_a_warning(bench: Path, synth_journal: Path, tmp_path: Path) -> None:
    good = synth_journal.read_text().splitlines()
    torn = tmp_path / "torn.jsonl"
    torn.write_text("\n".join(good) + "\n" + good[0][:40])  # an interrupted append
    with pytest.warns(UserWarning, match="last line is truncated"):
        assert len(read_journal(torn)) == len(good)
    resumed = tmp_path / "resumed.jsonl"  # a resumed run starts a fresh line after the torn one
    resumed.write_text("\n".join([good[0][:25], *good]) + "\n")
    with pytest.warns(UserWarning, match="line 1 is truncated"):
        assert len(read_journal(resumed)) == len(good)
    res = CliRunner().invoke(main, ["report", str(torn), "--bench", str(bench), "-o", str(tmp_path / "o"),
                                    "--no-plots"])
    assert res.exit_code == 0 and "truncated" in res.output


def test_failed_write_leaves_old_report(bench: Path, synth_journal: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    rep = build_report([synth_journal], bench)
    out = tmp_path / "r"
    write_report(rep, out, plots=False)
    before = (out / "report.csv").read_text()

    def boom(*_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(write_mod, "write_plots", boom)
    with pytest.raises(RuntimeError):
        write_report(rep, out, force=True)
    assert (out / "report.csv").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]
    with pytest.raises(BadInput, match="already exists"):
        write_report(rep, out)


@pytest.mark.parametrize(("name", "source", "group"), [
    ("net-graft25", "", "net"), ("net_grafted", "", "net"), ("net-graft50-ft", "", "net"),
    ("mnist-net_256x2-graft0.5", "", "mnist-net_256x2"), ("resnet_2b", "", "resnet_2b"),
    ("whatever", "models/resnet_2b.onnx", "resnet_2b"), ("graft", "", "graft")])
def test_group_key(name: str, source: str, group: str) -> None:
    assert group_key(name, source) == group
