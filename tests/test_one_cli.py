"""One CLI (issue 14, items 4 and 5): shared flags mean the same everywhere, quiet bars in logs, threads."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from graftonnx.cli import main
from graftonnx.threads import available_cores, cgroup_cpus, pick_threads
from tests.conftest import model_path

#: Flags the issue names: their help must be the same text in every command, apart from the exceptions below.
SAME_HELP = ("--init", "--criterion", "--bound", "--backend", "--timeout", "--results", "--progress", "--threads")
#: Per-command flags whose target differs by nature (a file, a folder): not compared.
NOT_COMPARED = {"-o", "--output", "--force", "--json", "-h", "--help"}
#: flag → {command: reason} — the same meaning, a different default/requirement/help, on purpose.
EXCEPTIONS: dict[str, dict[str, str]] = {
    "--eps": {
        "demo": "the digits demo's radius (0.05 on [0, 1] pixels) is its own experiment",
        "train": "0 = clean training is the natural default when training from scratch",
        "finetune": "required: finetuning is adversarial, no radius fits every dataset",
        "evaluate": "required: an attack radius is the point of the command",
        "export": "required: the radius is written into every property",
        "report": "optional: without it the report gives SA only",
    },
    "--batch-size": {c: "a different stage batches different work (bounds, training, attacks, boxes)"
                     for c in ("finetune", "train", "evaluate", "report")},
    "--epochs": {"finetune": "finetuning needs fewer epochs than training from scratch"},
    "--lr": {"finetune": "finetuning starts from trained weights: a lower rate"},
    "--ratio": {"demo": "the demo has no --count, so it has a default ratio"},
    "--init": {"tune": "every candidate gets only a brief finetune: the least-squares line (fit) starts closer"},
    "--timeout": {"verify": "an override of instances.csv's timeouts (export writes them): default none"},
    "--results": {"verify": "a JSONL journal of verdicts, not a run record (a rename is suggested in issue 14)"},
    "--bound": {"report": "same choices and default; its help (report/metrics.py, owned by the report work) "
                          "says what it bounds"},
}


def _describe(p: click.Option) -> tuple[Any, ...]:
    t = p.type
    base = "int" if isinstance(t, click.types.IntParamType) else "float" if isinstance(
        t, click.types.FloatParamType) else t.name
    choices = tuple(sorted(t.choices)) if isinstance(t, click.Choice) else None
    return base, choices, p.default, p.required, p.is_flag


def _flags() -> dict[str, dict[str, click.Option]]:
    ctx = click.Context(main)
    out: dict[str, dict[str, click.Option]] = defaultdict(dict)
    for name, cmd in main.commands.items():
        for p in cmd.get_params(click.Context(cmd, info_name=name, parent=ctx)):
            if isinstance(p, click.Option):
                for flag in p.opts:
                    out[flag][name] = p
    return out


def test_shared_flags_mean_the_same_in_every_command():
    problems = []
    for flag, by_cmd in _flags().items():
        if len(by_cmd) < 2 or flag in NOT_COMPARED:
            continue
        allowed = EXCEPTIONS.get(flag, {})
        ruled = {c: p for c, p in by_cmd.items() if c not in allowed}
        descs = {c: _describe(p) for c, p in ruled.items()}
        if len(set(descs.values())) > 1:
            problems.append(f"{flag}: {descs}")
        if flag in SAME_HELP and len({p.help for p in ruled.values()}) > 1:
            problems.append(f"{flag} help differs: {sorted({p.help for p in ruled.values()})}")
    assert not problems, "\n".join(problems)
    # every --eps is an L∞ radius on the raw pixel scale, whatever its default
    for cmd, p in _flags()["--eps"].items():
        assert "L∞" in (p.help or "") and "raw pixel" in (p.help or ""), cmd


def test_exceptions_are_real():
    """An exception that no longer differs (or no longer exists) must be dropped from the list."""
    flags = _flags()
    for flag, cmds in EXCEPTIONS.items():
        for cmd in cmds:
            assert cmd in flags[flag], f"{flag} is no longer an option of {cmd}"


def test_long_commands_take_progress_and_fixed_choices_are_choices():
    flags = _flags()
    for cmd in ("score", "plan", "graft", "demo", "finetune", "train", "evaluate", "simplify", "zoo", "inspect",
                "verify", "export", "report", "tune"):
        assert cmd in flags["--progress"], f"{cmd} has no --progress/--no-progress"
    for flag in ("--init", "--criterion", "--bound", "--backend", "--verify-backend", "--executor"):
        for cmd, p in flags.get(flag, {}).items():
            assert isinstance(p.type, click.Choice), (flag, cmd)


def _run(*args: Any) -> click.testing.Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _stderr(res: click.testing.Result) -> str:
    try:
        return res.stderr
    except ValueError:  # older click mixes the streams
        return res.output


def test_progress_prints_one_final_line_when_stderr_is_not_a_terminal(tmp_path):
    res = _run("score", model_path("mnist-net_256x2"), "--n", "20", "-o", tmp_path / "s.json")
    assert res.exit_code == 0, res.output
    err = _stderr(res)
    assert "\r" not in err and "bounds (ibp, eps=0.02): 20/20 img in" in err
    quiet = _run("score", model_path("mnist-net_256x2"), "--n", "20", "--no-progress")
    assert "bounds (" not in _stderr(quiet)


def test_no_synthetic_data_warning_when_scores_or_plan_carry_the_choice(tmp_path):
    net = model_path("mnist-net_256x2")
    scores, plan = tmp_path / "s.json", tmp_path / "p.json"
    first = _run("score", net, "--n", "20", "--no-progress", "-o", scores)
    assert first.exit_code == 0 and "random inputs" in first.output  # nothing else carries the data here
    res = _run("plan", net, "--scores", scores, "--ratio", "0.3", "--n", "20", "--no-progress", "-o", plan)
    assert res.exit_code == 0, res.output
    assert "random inputs" not in res.output
    res = _run("graft", net, "--plan", plan, "--n", "20", "--no-progress", "-o", tmp_path / "g.onnx")
    assert res.exit_code == 0, res.output
    assert "random inputs" not in res.output
    res = _run("graft", net, "--scores", scores, "--ratio", "0.3", "--n", "20", "--no-progress",
               "-o", tmp_path / "g2.onnx")
    assert res.exit_code == 0 and "random inputs" not in res.output


def test_demo_resumes_without_force_and_starts_over_with_it(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "-o", out, "--epochs", "1", "--no-progress", "--json"]
    assert _run(*args).exit_code == 0
    other = _run(*args, "--eps", "0.04")  # other settings into the same journal: refused, nothing touched
    assert other.exit_code == 2 and "other settings" in other.output
    forced = _run(*args, "--eps", "0.04", "--force")
    assert forced.exit_code == 0, forced.output
    assert '"eps": 0.04' in (out / "report.json").read_text()
    assert len((out / "journal.jsonl").read_text().splitlines()) == 4  # started over: one line per step


def _cgroup(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cpu.max").write_text(text)
    return tmp_path


def test_thread_count_from_affinity_and_cgroup_quota(tmp_path, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    (tmp_path / "a").mkdir()
    assert available_cores(_cgroup(tmp_path / "a", "max 100000")) == 8
    assert cgroup_cpus(tmp_path / "a") is None
    (tmp_path / "b").mkdir()
    assert available_cores(_cgroup(tmp_path / "b", "200000 100000\n")) == 2
    (tmp_path / "c").mkdir()
    assert available_cores(_cgroup(tmp_path / "c", "150000 100000")) == 1  # 1.5 cores: one thread, not two
    assert available_cores(tmp_path / "none") == 8  # no cgroup files: the affinity mask
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("300000")
    (v1 / "cpu.cfs_period_us").write_text("100000")
    assert available_cores(tmp_path / "v1") == 3
    assert pick_threads(workers=3, root=tmp_path / "none") == 2  # never more threads than cores across workers
    assert pick_threads(workers=16, root=tmp_path / "none") == 1
    assert pick_threads(5, workers=3, root=tmp_path / "none") == 5  # an explicit --threads is honoured
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert pick_threads(root=tmp_path / "none") == 3


def test_affinity_limits_the_count(monkeypatch, tmp_path):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert pick_threads(root=_cgroup(tmp_path, "400000 100000")) == 1
