"""docs/results.md's arithmetic and rendering on a synthetic results dict (no training, no verifier).

Why: the table1 run takes many hours, so CI cannot run it; every cell it will print (Wilson
intervals, interval-aware verdicts, McNemar p-values, the paper's times, the sweep, the
recommended ratio, the README claim) is checked here on hand-made rows whose answers are
known, and the page and the sweep figure are rendered from them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.paper.config import MODES  # noqa: E402
from benchmarks.paper.evidence import cell, diff_interval, paired, paper_time, ratio_interval, verdict  # noqa: E402
from benchmarks.paper.plots import plot_sweep, write_plots  # noqa: E402
from benchmarks.paper.sweep import recommend, sweep_lines, sweep_rows  # noqa: E402
from benchmarks.paper.tables import readme_claim, results_markdown, target_lines  # noqa: E402

__all__: list[str] = []

N, NC, NH = 20, 10, 200  # α-CROWN instances, complete-verifier instances (the first NC), held-out images


def _row(crit: str, ratio: float, n_va: int, sa: float, ra: float, *, n_complete: int | None = None,
         t: float = 2.0, gran: str = "neuron", unr: float = 50.0) -> dict:
    """A row whose first ``n_va`` instances are verified (unsat), the rest timeouts; all images clean."""
    crown = ["unsat"] * n_va + ["timeout"] * (N - n_va)
    nv = None if n_complete is None else ["unsat"] * n_complete + ["sat"] * (NC - n_complete)
    return {"criterion": crit, "ratio": ratio, "init": "const", "schedule": "total", "granularity": gran,
            "finetuned": True, "grafted_neurons": round(512 * ratio), "relu_neurons": 512, "unr": unr,
            "unr_layers": {"r1": unr}, "unr_bound": "ibp", "sa": sa, "ra": ra, "n_heldout": NH,
            "va_crown": 100 * n_va / N, "n_crown": N, "crown_mean_time": t, "crown_method": "alpha-crown",
            "crown_verdicts": crown, "crown_times": [t if v == "unsat" else 60.0 for v in crown],
            "clean": [True] * N, "va_nsat": None if nv is None else 100 * n_complete / NC,
            "n_nsat": 0 if nv is None else NC, "nsat_verdicts": nv or [], "nsat_times": [4 * t] * NC if nv else [],
            "nsat_mean_time": 4 * t if nv else None, "nsat_mean_time_nonsat": None, "nsat_timeouts": 0,
            "complete_backend": "neuralsat", "ra_verify": ra, "ra_verify_nsat": ra if nv else None,
            "variant": f"{crit}{round(100 * ratio)}"}


@pytest.fixture
def data() -> dict:
    return synthetic_results()


def synthetic_results() -> dict:
    """One job with a sweep: VA rises with the ratio, SA falls past 50 % (so 50 % is recommended)."""
    sa = {0.0: 98.0, 0.1: 98.0, 0.2: 97.9, 0.25: 97.9, 0.3: 97.8, 0.4: 97.5, 0.5: 97.0, 0.6: 96.0, 0.7: 95.0,
          0.75: 94.0, 0.8: 93.0, 0.9: 90.0}
    rows = [_row("baseline", 0.0, 2, 98.0, 90.0, n_complete=1, t=8.0, unr=80.0)]
    rows += [_row("combined", r, 2 + round(16 * r), sa[r], sa[r] - 8, unr=80 * (1 - r),
                  n_complete=(9 if r == 0.5 else 5) if r in (0.25, 0.5, 0.75) else None, t=8.0 * (1 - r))
             for r in (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9)]
    rows += [_row("random", 0.5, 4, 97.5, 88.0, n_complete=2), _row("prune", 0.5, 3, 97.0, 88.0, n_complete=2),
             _row("combined", 0.5, 9, 97.2, 89.0, gran="channel")]
    job = {"job": {"key": "cnn-eps0.1", "source": "train:cnn-b", "eps": 0.1, "note": "", "finetune": True,
                   "init": "const", "schedule": "total", "ratios": [0.25, 0.5, 0.75],
                   "sweep": [k / 10 for k in range(1, 10)]},
           "data": "synthetic", "base": {"source": "synthetic"}, "rows": rows, "seconds": [100.0, 20.0],
           "step_seconds": {"base": 10.0, "scores": 5.0, "variant:baseline": 3.0, "variant:combined50": 4.0,
                            "lirpa:ab": 50.0, "nsat:cd": 40.0, "rows:ef": 1.0}, "layer_sizes": {"r1": 512}}
    budget = vars(MODES["table1"].budget)
    machine = {"cpu": "test CPU", "cores": 2, "torch": "x", "torch_threads": 1, "onnxruntime": "x", "onnx": "x",
               "neuralsat": "x", "graftonnx": "x", "python": "3"}
    return {"mode": "table1", "seed": 0, "finetune_lr": 0.01, "budget": budget, "machine": machine, "jobs": [job],
            "jobs_planned": ["cnn-eps0.1", "mlp-eps0.1"], "complete_backend": "neuralsat"}


#: Newcombe (1998), "Interval estimation for the difference between independent proportions: comparison of
#: eleven methods", Statistics in Medicine 17:873–890, Table II, method 10 (hybrid score from Wilson intervals).
NEWCOMBE_1998_DIFF = [((56, 70, 48, 80), (0.0524, 0.3339)), ((9, 10, 3, 10), (0.1705, 0.8090)),
                      ((6, 7, 2, 7), (0.0582, 0.8062)), ((5, 56, 0, 29), (-0.0381, 0.1926)),
                      ((0, 10, 0, 20), (-0.1611, 0.2775)), ((10, 10, 0, 20), (0.6791, 1.0))]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_1998_DIFF)
def test_difference_interval_against_newcombe(counts: tuple[int, int, int, int], expected: tuple) -> None:
    a, n1, b, n2 = counts
    lo, hi = diff_interval(100 * a / n1, n1, 100 * b / n2, n2)  # type: ignore[misc]
    assert (round(lo / 100, 4), round(hi / 100, 4)) == expected


def test_cells_verdicts_and_pairs() -> None:
    assert cell(50.0, 10) == "50.0 [23.7, 76.3]" and cell(None, 10) == "–" and cell(12.5, None) == "12.5"
    assert verdict(45, (41, 49), 40, True, "x") == "**met**, and the interval decides it"
    assert verdict(45, (30, 60), 40, True, "x") == "**met**, but the interval does not exclude a miss"
    assert verdict(35, (20, 39), 40, True, "short") == "**missed** (short), and the interval decides it"
    assert verdict(35, (20, 45), 40, True, "s").endswith("but the interval does not exclude meeting it")
    assert verdict(1.0, (0.2, 1.4), 1.5, False, "x") == "**met**, and the interval decides it"  # "≤" targets
    assert verdict(2.0, (1.6, 2.4), 1.5, False, "o") == "**missed** (o), and the interval decides it"
    first = ["unsat", "unsat", "unsat", "timeout", "missing", "unsat"]
    second = ["timeout", "unsat", "sat", "unsat", "unsat", "unknown"]
    assert paired(first, second) == (3, 1, 0.625)  # the missing pair is left out; 2·(1 + 4)/16
    assert paired([], []) is None


def test_paper_time_population() -> None:
    """Mean over correct, unattacked instances that answered in time; timeouts and errors apart."""
    pt = paper_time(["unsat", "timeout", "sat", "unsat", "error", "missing"], [1.0, 30.0, 3.0, 100.0, 0.5, None],
                    [True, True, True, False, True, True])
    assert pt is not None and (pt.mean, pt.timed, pt.timeouts, pt.errors, pt.population) == (2.0, 2, 1, 1, 4)
    assert paper_time([], [], []) is None
    lo, hi = ratio_interval([8.0, 8.0, 8.0], [2.0, 2.0, 2.0])  # type: ignore[misc]
    assert lo == hi == pytest.approx(4.0)


def test_sweep_and_recommendation(data: dict) -> None:
    job = data["jobs"][0]
    rows = sweep_rows(job)
    assert [round(100 * r["ratio"]) for r in rows] == list(range(0, 100, 10))  # no 25/75, no channel row
    best = recommend(rows)
    assert best is not None and best["ratio"] == 0.5  # 60 % verifies more but drops SA by 2.0 > 1.5
    tie = [dict(rows[0]), dict(rows[1], va_crown=50.0), dict(rows[2], va_crown=50.0)]
    assert recommend(tie)["ratio"] == 0.1  # type: ignore[index]  # ties: the smaller ratio
    text = "\n".join(sweep_lines(job))
    assert "**Recommended ratio: 50 %**" in text and "(SA 98.0 → 97.0 %, -1.0 pts)" in text
    assert "| 50 % | 256/512 | 40.0 | 50.0 [29.9, 70.1] |" in text  # 10/20 verified, Wilson interval


def test_targets_with_intervals_and_mcnemar(data: dict) -> None:
    text = "\n".join(target_lines(data["jobs"][0]))
    # complete VA 1/10 → 9/10: +80 pts, but at n = 10 Newcombe's interval [+37.0, +91.6] still reaches below 40
    # (by hand: 0.8 − √((0.9 − 0.596)² + (0.404 − 0.1)²) = 0.370); McNemar on the 8 discordant pairs, 8:0
    assert "| VA gain ≥ +40 pts (va_nsat) | 10.0 → 90.0 (+80.0 pts) | **met**, but the interval does not exclude a " \
           "miss | [+37.0, +91.6] pts | p = 0.0078 (8:0) |" in text
    assert "| SA drop ≤ 1.5 pts | 98.0 → 97.0 (-1.0) | **met**, but the interval does not exclude a miss |" in text
    # every instance clean and answered: 32 s → 16 s, constant times, so the bootstrap interval is the point
    assert "32.0 s (n=10, 0 timeouts) → 16.0 s (n=10, 0 timeouts) (÷2.00) | **missed** (÷2.00 only), and the " \
           "interval decides it" in text
    assert "combined beats random by ≥ 5 VA pts at 50 % (va_nsat) | 90.0 vs 20.0 (+70.0) | **met**, and the " \
           "interval decides it" in text and "(combined:random)" in text


def test_page_figure_and_claim(data: dict, tmp_path: Path) -> None:
    images = write_plots(data, tmp_path / "img", "paper-table1")
    names = {p.name for p in images}
    assert "paper-table1-cnn-eps0.1-sweep.png" in names
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in images)
    assert plot_sweep({"job": {"key": "x"}, "rows": []}, tmp_path / "none.png") is None
    md = results_markdown(data, [p.relative_to(tmp_path).as_posix() for p in images])
    assert "Generated by `python benchmarks/paper/run.py --table1`" in md and "test CPU, 2 cores" in md
    assert "VA % α-CROWN (n=20)" in md and "VA % NeuralSAT (n=10)" in md and "SA % (n=200)" in md
    assert "**Not run in this build (cut for time):** mlp-eps0.1." in md
    carried = results_markdown(data | {"pending": {"mlp-eps0.1": "lirpa.jsonl 12 results"}}, [])
    assert "**Not finished yet** (the run resumes in the next sitting from the verdicts committed under " \
           "`benchmarks/results/paper-table1/`): mlp-eps0.1 (lirpa.jsonl 12 results)." in carried
    assert "Steps (the seconds of the sitting that finished each): base 10 s, scores 5 s, 2 rows built 7 s, " \
           "lirpa:ab 50 s, nsat:cd 40 s, rows:ef 1 s." in md
    assert "| combined 50 %, init const, channels | 256/512 |" in md
    # channel 9/20 vs neuron 10/20 on the same instances: the neuron row alone verifies instance 10 → 0:1, p = 1
    assert "| 50 % | 256 / 256 | 50.0 [29.9, 70.1] | 45.0 [25.8, 65.8] | p = 1 (0:1) |" in md
    assert "![img/paper-table1-cnn-eps0.1-sweep.png](img/paper-table1-cnn-eps0.1-sweep.png)" in md
    claim = readme_claim(data)
    assert claim is not None and claim in md
    assert "went from 10.0 % [1.8, 40.4] to 90.0 % [59.6, 98.2] verified by NeuralSAT (10 images" in claim
    assert "McNemar p = 0.0078 (8:0)" in claim and "α-CROWN: 10.0 % [2.8, 30.1] → 50.0 % [29.9, 70.1] on 20" in claim
    assert readme_claim(data, key="no-such-job") is None


def test_table1_mode_sizes() -> None:
    """Issue 15's sizes: α-CROWN on ≥ 200, a complete verifier on ≥ 100, every criterion row verified completely."""
    b = MODES["table1"].budget
    assert b.n_lirpa >= 200 and b.n_nsat >= 100 and b.lirpa_method == "alpha-crown" and b.complete == "auto"
    assert all(j.lirpa_instances is None and j.nsat_instances is None for j in MODES["table1"].jobs)
    assert b.verify_on == "heldout" and b.n_heldout >= b.n_lirpa  # ERAN has only 100 MNIST images
    by_key = {j.key: j for j in MODES["table1"].jobs}
    assert set(by_key) == {j.key for j in MODES["full"].jobs}  # every network of --full
    for j in by_key.values():
        assert {("baseline", 0.0), ("combined", 0.25), ("combined", 0.5), ("combined", 0.75), ("random", 0.5),
                ("prune", 0.5), ("instability", 0.5), ("significance", 0.5)} <= set(j.nsat)
    assert by_key["cnn-eps0.1"].sweep == by_key["mlp-eps0.1"].sweep == tuple(k / 10 for k in range(1, 10))
    assert by_key["cnn-eps0.1"].schedule == "total" and not by_key["resnet_2b"].finetune
    assert any(len(x) == 5 and x[4] == "channel" for x in by_key["cnn-eps0.1"].extra)


def test_earlier_modes_keep_their_fingerprints() -> None:
    """Knobs added for table1 leave quick/full job fingerprints as they were: their finished runs still resume."""
    from benchmarks.paper.pipeline import PaperJob

    got = {m: [PaperJob(j, MODES[m]).fingerprint() for j in MODES[m].jobs] for m in ("quick", "full")}
    assert got == {"quick": ["70e859d7fb7b"], "full": ["3e090750ff65", "50cadb61234a", "81e095712f53",
                                                       "10a53c334c32", "d81bd4081445"]}  # as of commit 3be166d
    methods = {j.key: j.method(MODES["table1"].budget) for j in MODES["table1"].jobs}
    assert methods == {"cnn-eps0.1": "crown", "resnet_2b": "crown",  # α-CROWN is past the budget there (the notes)
                       "mlp-eps0.1": "alpha-crown", "mnist-net_256x2": "alpha-crown", "mlp-eps0.05": "alpha-crown"}


def test_resnet_distilled_rows_are_separate_rows() -> None:
    """Scope 5: ResNet-2B's distilled rows are rows of their own (names, label, NeuralSAT set), never the
    unfinetuned row a target or the sweep reads."""
    from benchmarks.paper.config import settings_key
    from benchmarks.paper.pipeline import PaperJob, paper_steps
    from benchmarks.paper.rows import variants_of
    from benchmarks.paper.tables import _label
    from benchmarks.paper.targets import find_row

    job = {j.key: j for j in MODES["table1"].jobs}["resnet_2b"]
    names = [v.name for v in variants_of(job)]
    assert {"combined25-distilled", "combined50-distilled", "combined75-distilled", "random50-distilled"} <= set(names)
    assert "combined50" in names and len(names) == len(set(names))
    nsat = next(s for s in paper_steps(PaperJob(job, MODES["table1"])) if s.name.startswith("nsat"))
    complete = ["baseline", "combined25", "combined50", "combined75", "instability50", "significance50", "random50",
                "prune50", "combined50-distilled"]  # the eight Table-1 rows and one distilled row
    assert nsat.name == f"nsat:{settings_key(complete)[:8]}"
    plain, distilled = _row("combined", 0.5, 3, 40.0, 30.0), _row("combined", 0.5, 9, 60.0, 50.0) | {"tune": "teacher"}
    assert find_row({"rows": [distilled, plain]}, "combined", 0.5) is plain
    assert find_row({"rows": [distilled]}, "combined", 0.5) is None
    assert _label(distilled) == "combined 50 %, init const, distilled from the original (no labels)"


def test_targets_of_a_net_without_labels_read_its_distilled_rows() -> None:
    """An unfinetuned job's page judges the brief's targets on its distilled rows, against distilled random."""
    base = _row("baseline", 0.0, 2, 76.0, 58.0, n_complete=2) | {"finetuned": False}
    rows = [base, _row("combined", 0.5, 3, 32.0, 30.0, n_complete=3) | {"finetuned": False},
            _row("random", 0.5, 2, 30.0, 25.0) | {"finetuned": False},
            _row("combined", 0.5, 12, 60.0, 50.0, n_complete=7) | {"tune": "teacher"},
            _row("random", 0.5, 6, 40.0, 30.0) | {"tune": "teacher"}]
    job = {"job": {"key": "resnet_2b", "source": "shared:resnet_2b", "eps": 2 / 255, "note": "", "finetune": False,
                   "init": "const", "schedule": "total", "ratios": [0.25, 0.5, 0.75], "sweep": []},
           "data": "synthetic", "base": {"source": "synthetic"}, "rows": rows, "seconds": [10.0],
           "step_seconds": {}, "layer_sizes": {"r1": 512}}
    lines = target_lines(job, "teacher")
    assert any(ln.startswith("| VA gain ≥ +40 pts (va_nsat) | 20.0 → 70.0 (+50.0 pts)") for ln in lines)
    beats = [ln for ln in lines if "beats random" in ln]
    assert len(beats) == 1 and "| 60.0 vs 30.0 (+30.0) |" in beats[0]  # CROWN only: distilled random has no NeuralSAT
    md = results_markdown(synthetic_results() | {"jobs": [job], "jobs_planned": ["resnet_2b"]}, [])
    assert "Targets of the brief on this network's finetuned grafts, the *distilled* rows" in md
