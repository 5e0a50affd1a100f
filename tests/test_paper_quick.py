"""The Table-1 benchmark (benchmarks/paper/run.py): quick mode end to end, and its target arithmetic.

The quick mode trains a tiny MLP on mnist5k, grafts 50 % (combined criterion and prune),
finetunes every row, verifies with auto_LiRPA CROWN on 12 ERAN images and NeuralSAT on 2.
Even at that scale two directions must hold: grafting lowers UNR, and CROWN verifies at
least as many of the same instances after grafting as before.  The interval code every cell
of docs/results.md relies on is checked here too, against published values: Wilson
intervals (Newcombe 1998, Table I) and exact McNemar p-values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "paper" / "run.py"

__all__: list[str] = []


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("paper")
    proc = _run("--quick", "--out", str(out / "work"), "--docs", str(out / "docs"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "work" / "paper-quick.json").read_text())


def _rows(data: dict) -> dict[str, dict]:
    (job,) = data["jobs"]
    return {r["variant"]: r for r in job["rows"]}


@pytest.mark.slow
def test_quick_grafting_lowers_unr_and_never_loses_va(quick: tuple[Path, dict]) -> None:
    _, data = quick
    rows = _rows(data)
    assert set(rows) == {"baseline", "combined50", "prune50"}
    base = rows["baseline"]
    for name in ("combined50", "prune50"):
        r = rows[name]
        assert r["grafted_neurons"] == r["relu_neurons"] // 2
        assert r["unr"] < base["unr"], (name, r["unr"], base["unr"])
        assert r["n_crown"] == base["n_crown"] == 12  # same instances for every row
        assert r["va_crown"] >= base["va_crown"], (name, r["va_crown"], base["va_crown"])
        assert 0 <= r["sa"] <= 100 and 0 <= r["ra"] <= r["sa"]
    # every row got the same finetuning budget (the baseline too)
    assert all(r["finetuned"] and r["finetune_seconds"] is not None for r in rows.values())


@pytest.mark.slow
def test_quick_neuralsat_column_and_outputs(quick: tuple[Path, dict]) -> None:
    out, data = quick
    rows = _rows(data)
    for name in ("baseline", "combined50"):
        r = rows[name]
        assert r["n_nsat"] == 2 and len(r["nsat_verdicts"]) == 2
        assert r["nsat_errors"] == 0, r["nsat_verdicts"]
        assert set(r["nsat_verdicts"]) <= {"sat", "unsat", "timeout", "unknown"}
        assert r["va_nsat"] == 100 * r["nsat_unsat"] / 2
    assert rows["prune50"]["va_nsat"] is None  # NeuralSAT only on the rows the job names
    assert data["machine"]["neuralsat"] and data["machine"]["cores"] >= 1
    md = (out / "docs" / "results.md").read_text()
    assert "| baseline (ungrafted, same finetune) |" in md and "82.30" in md  # ours and the paper's Table 1
    pngs = sorted((out / "docs" / "img").glob("*.png"))
    assert {p.name for p in pngs} == {"paper-quick-mlp-eps0.05-va.png", "paper-quick-mlp-eps0.05-unr.png",
                                      "paper-quick-times.png"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs)


@pytest.mark.slow
def test_quick_rerun_reuses_everything(quick: tuple[Path, dict]) -> None:
    """A second run finds every job finished and renders the identical rows (no retraining, no re-verifying)."""
    out, data = quick
    proc = _run("--quick", "--out", str(out / "work"), "--docs", str(out / "docs2"), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "already done" in proc.stderr and "training" not in proc.stderr
    again = json.loads((out / "work" / "paper-quick.json").read_text())
    assert again["jobs"] == data["jobs"]
    steps = [json.loads(x)["step"] for x in (out / "work" / "journal.jsonl").read_text().splitlines()]
    assert steps[:5] == ["base", "scores", "variant:baseline", "variant:combined50", "variant:prune50"]
    assert [s.split(":")[0] for s in steps[5:]] == ["lirpa", "nsat", "rows"]  # run by the engine, each once


def test_unknown_job_is_bad_input(tmp_path: Path) -> None:
    proc = _run("--quick", "--out", str(tmp_path), "--only", "no-such-net", timeout=120)
    assert proc.returncode == 2
    assert "no-such-net" in proc.stderr and "Traceback" not in proc.stderr


def test_folder_made_with_other_settings_is_refused(tmp_path: Path) -> None:
    """A resumed job folder must have been made with the same settings: else stale models would be reused."""
    line = {"model": "mlp-eps0.05", "fingerprint": "0123456789abcdef", "step": "base", "status": "done"}
    (tmp_path / "journal.jsonl").write_text(json.dumps(line) + "\n")  # the engine's journal, other settings
    proc = _run("--quick", "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "other settings" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "mlp-eps0.05" / "models").exists()


def test_ablation_script_rejects_unknown_job(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paper" / "ablate.py"), "no-such-net", "t",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "no-such-net" in proc.stderr


def test_target_arithmetic() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.paper.tables import target_lines
    finally:
        sys.path.remove(str(ROOT))

    def row(crit: str, ratio: float, va: float, sa: float, ra: float, t: float) -> dict:
        return {"criterion": crit, "ratio": ratio, "init": "const", "va_nsat": va, "va_crown": va - 10, "sa": sa,
                "ra": ra, "nsat_mean_time": t, "ra_verify_nsat": ra, "ra_verify": ra, "n_nsat": 20, "n_crown": 40}

    other_schedule = row("combined", 0.5, 99.0, 97.0, 88.0, 1.0) | {"schedule": "target"}  # an ablation row
    job = {"rows": [row("baseline", 0.0, 10.0, 98.0, 90.0, 40.0), other_schedule,
                    row("combined", 0.5, 55.0, 97.0, 88.0, 8.0), row("random", 0.5, 52.0, 97.0, 88.0, 20.0)]}
    text = "\n".join(target_lines(job))
    assert "(+45.0 pts) | **met**" in text  # VA gain
    assert "(÷5.00) | **met**" in text  # time
    assert "88.0 − 55.0 = 33.0 | **missed** (over by 28.0 pts)" in text  # certified gap
    assert "55.0 vs 52.0 (+3.0) | **missed** (short by 2.0 pts)" in text  # combined vs random


#: Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of seven
#: methods", Statistics in Medicine 17:857–872, Table I, method 3 (Wilson score interval, no continuity
#: correction): its four worked examples.  Checked here against an independent formula too (the roots of
#: (p − k/n)² = z² p (1 − p) / n), so neither the table nor graftonnx's closed form is taken on trust.
NEWCOMBE_1998_WILSON = [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
                        (1, 29, 0.0061, 0.1718)]


@pytest.mark.parametrize(("k", "n", "low", "high"), NEWCOMBE_1998_WILSON)
def test_wilson_interval_against_a_published_table(k: int, n: int, low: float, high: float) -> None:
    """The interval every VA / SA / RA cell of docs/results.md carries, against Newcombe's Table I."""
    import math

    from graftonnx.report.stats import Z95, wilson_interval

    lo, hi = wilson_interval(k, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)
    p, a = k / n, 1 + Z95 ** 2 / n  # independent: the quadratic's roots
    b = -(2 * p + Z95 ** 2 / n)
    d = math.sqrt(b * b - 4 * a * p * p)
    assert (lo, hi) == pytest.approx(((-b - d) / (2 * a), (-b + d) / (2 * a)), abs=1e-12)


@pytest.mark.parametrize(("b", "c", "p"), [
    (0, 0, 1.0), (1, 0, 1.0), (5, 0, 0.0625), (6, 0, 0.03125), (0, 9, 0.00390625), (10, 10, 1.0),
    (1, 7, 0.0703125),  # 2·(C(8,0) + C(8,1)) / 2⁸ = 18/256: the exact conditional p = 0.070 of Fagerland,
    #                     Lydersen & Laake (2013, BMC Med Res Methodol 13:91) for their b = 1, c = 7 example
    (3, 12, 0.03515625)])  # 2·(1 + 15 + 105 + 455) / 2¹⁵
def test_mcnemar_exact_known_values(b: int, c: int, p: float) -> None:
    """The paired test of grafted vs baseline (and combined vs random) on the same instances."""
    from scipy.stats import binomtest

    from graftonnx.report.stats import mcnemar_exact

    assert mcnemar_exact(b, c) == p == mcnemar_exact(c, b)
    if b + c:
        assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, abs=1e-12)  # independent
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)
