"""docs/results.md from the benchmark JSON: our tables, the paper's Table 1 beside them, targets and notes.

Why generated: every number on the page must come from the committed script's JSON, so
the page is rebuilt from it (``run.py --render-only`` re-renders a finished run) and the
target checks (VA gain, SA/RA drop, time ratio, certified gap, criterion margins) are
computed, never typed in.  Every VA / SA / RA cell carries its Wilson 95 % interval, every
grafted row its exact McNemar p against the baseline on the same instances (evidence.py);
the targets live in targets.py, the trade-off sweep in sweep.py, the prose in paper_text.py.
Rows from older runs (no per-instance verdicts) still render, with "–" where a number needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .evidence import cell, p_text, paired
from .paper_text import PAPER_TABLE1, abcrown_section, notes, paper_section
from .sweep import channel_lines, sweep_lines
from .targets import find_row, readme_claim, row_time, target_lines, verifier_name

__all__ = ["results_markdown", "PAPER_TABLE1", "target_lines", "job_table", "abcrown_section", "readme_claim",
           "durations"]


def _f(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _label(r: dict[str, Any]) -> str:
    if r["criterion"] == "baseline":
        return "baseline (ungrafted, same finetune)" if r["finetuned"] else "baseline (ungrafted)"
    init = "" if r["criterion"] == "prune" else f", init {r['init']}"
    what = "prune (a = b = 0 fixed)" if r["criterion"] == "prune" else r["criterion"]
    sched = r.get("schedule", "total")
    staged = f", λ over the {'requested picks' if sched == 'target' else 'whole net'}" \
        if r["criterion"] in ("combined", "prune") and sched != "total" else ""
    gran = ", channels" if r.get("granularity", "neuron") == "channel" else ""
    tune = ", distilled from the original (no labels)" if r.get("tune") == "teacher" else ""
    return f"{what} {round(100 * r['ratio'])} %{init}{staged}{gran}{tune}"


def _time_cells(r: dict[str, Any], key: str, old_mean: str, old_timeouts: str | None = None) -> list[str]:
    """(mean time, timeouts) cells the paper's way; an older row's plain mean over all instances, marked *."""
    pt = row_time(r, key)
    if pt is not None:
        return [_f(pt.mean, 2 if key == "va_crown" else 1) + f" (n={pt.timed})", f"{pt.timeouts}/{pt.population}"]
    mean = r.get(old_mean)
    return ["–" if mean is None else f"{mean:.2f}*", "–" if old_timeouts is None else old_timeouts]


def job_table(job: dict[str, Any]) -> list[str]:
    """The Markdown table of one network's rows: every VA / SA / RA with its Wilson 95 % interval."""
    rows = job["rows"]
    if not rows:
        return ["(no rows)"]
    r0, base = rows[0], find_row(job, "baseline", 0.0)
    crown, who = verifier_name(r0.get("crown_method", "crown")), verifier_name(r0.get("complete_backend",
                                                                                        "neuralsat"))
    n_c, n_n = r0["n_crown"], max((r["n_nsat"] for r in rows), default=0)
    lines = [f"| row | grafted | UNR % ({r0['unr_bound']}) | VA % {crown} (n={n_c}) | McNemar vs baseline | "
             f"VA % {who} (n={n_n}) | McNemar vs baseline | SA % (n={r0.get('n_heldout', '?')}) | RA % | "
             f"RA % on the {crown} images | {who} time s | {who} timeouts | {crown} time s |",
             "|---|" + "---:|" * 12]
    for r in rows:
        nsat = r["va_nsat"] is not None
        vs = base is not None and r is not base
        pc = p_text(paired(r.get("crown_verdicts") or [], base.get("crown_verdicts") or [])) if vs else "–"
        pn = p_text(paired(r.get("nsat_verdicts") or [], base.get("nsat_verdicts") or [])) if vs and nsat else "–"
        t_n = _time_cells(r, "va_nsat", "nsat_mean_time", str(r["nsat_timeouts"])) if nsat else ["–", "–"]
        t_c = _time_cells(r, "va_crown", "crown_mean_time")[0]
        lines.append(f"| {_label(r)} | {r['grafted_neurons']}/{r['relu_neurons']} | {_f(r['unr'])} | "
                     f"{cell(r['va_crown'], r['n_crown'])} | {pc} | "
                     f"{cell(r['va_nsat'], r['n_nsat']) if nsat else '–'} | {pn} | "
                     f"{cell(r['sa'], r.get('n_heldout'))} | {cell(r['ra'], r.get('n_heldout'))} | "
                     f"{cell(r.get('ra_verify'), r['n_crown'])} | {t_n[0]} | {t_n[1]} | {t_c} |")
    return lines + ["", "Brackets: Wilson 95 % intervals. McNemar: exact two-sided p on the same instances, "
                    "(only this row verifies : only the baseline verifies). Times: the paper's way, mean seconds "
                    "over the instances correctly classified and not attacked (PGD) that got an answer in time "
                    "(n), timeouts counted apart (timeouts / such instances; a late answer is a timeout); "
                    "* marks an older run's plain mean over all instances."]


def _header(data: dict[str, Any]) -> list[str]:
    m, b = data["machine"], data["budget"]
    planned, done = data.get("jobs_planned", []), [j["job"]["key"] for j in data["jobs"]]
    missing = [k for k in planned if k not in done]
    crown, who = verifier_name(b.get("lirpa_method", "crown")), verifier_name(data.get("complete_backend",
                                                                                     "neuralsat"))
    images = ("held-out mnist5k images (ERAN CIFAR images for ResNet-2B)" if b.get("verify_on") == "heldout"
              else "ERAN images")
    abcrown = f", α,β-CROWN checkout {m['abcrown']}" if m.get("abcrown") else ""
    lines = ["# Linearity grafting, reproduced: a Table-1 benchmark on this machine", "",
             f"Generated by `python benchmarks/paper/run.py --{data['mode']}` (seed {data['seed']}); raw numbers in "
             f"`benchmarks/results/paper-{data['mode']}.json`. Do not edit by hand: re-run the script.", "",
             f"**Machine:** {m['cpu']}, {m['cores']} cores, CPU only (torch {m['torch']}, {m['torch_threads']} "
             f"torch threads; onnxruntime {m['onnxruntime']}, onnx {m['onnx']}, NeuralSAT {m['neuralsat']}"
             f"{abcrown}, graftonnx {m['graftonnx']}, Python {m['python']}). The cores were shared with other work "
             "while this ran, so times are upper bounds and compare only *within* one table (same run).", "",
             f"**Budget ({data['mode']}):** train {b['train_epochs']} epochs, finetune {b['finetune_epochs']} epochs "
             f"(every row, the baseline too: lr {data['finetune_lr']}, grafted a/b at 10×), FAT + GradAlign 0.2; "
             f"{b['n_train']} training / {b['n_heldout']} held-out mnist5k images; neurons scored on "
             f"{b['n_score']} training images with {b['score_bound'].upper()}; SA/RA on all the held-out images "
             f"(RA: PGD-{b['pgd_steps']} × {b['pgd_restarts']} restarts, every attack re-checked in onnxruntime); "
             f"VA on the first {b['n_lirpa']} (fewer where a table's header says so) {images} in a seeded order "
             "(none skipped: a misclassified image counts as not verified) with auto_LiRPA "
             f"{crown} (incomplete, {b['lirpa_timeout']:g} s; another bound where a table's header names it), "
             f"and the first {b['n_nsat']} or fewer (see the table) "
             f"of the same images with {who} (complete, CPU, {b['nsat_timeout']:g} s per instance; its start-up is "
             f"inside every time; {b.get('workers', 2)} verifier processes at once). UNR: unstable ReLUs "
             f"(l < 0 < u, {b['unr_bound'].upper()}) over all ReLUs, mean over the instance boxes. "
             "λ schedule: *combined* and *prune* rows use `--schedule total` (λ over all units) unless labelled "
             "*λ over the requested picks* (graftonnx's default `--schedule target`); see the notes. Every n is "
             "in its table's header; every cell's interval is a Wilson 95 % interval.", ""]
    pending = data.get("pending") or {}
    if missing and pending:  # a run carried across sittings (carry.py): say how far each unfinished job got
        lines += ["**Not finished yet** (the run resumes in the next sitting from the verdicts committed under "
                  f"`benchmarks/results/paper-{data['mode']}/`): "
                  + "; ".join(f"{k} ({pending.get(k, 'not started')})" for k in missing) + ".", ""]
    elif missing:
        lines += [f"**Not run in this build (cut for time):** {', '.join(missing)}.", ""]
    claim = readme_claim(data)
    if claim is not None:
        lines += ["**The README's one-line claim** (generated from the cnn-eps0.1 table below): " + claim, ""]
    return lines


def durations(job: dict[str, Any]) -> str:
    """How long each step of a job took, summed over sittings (the engine journals every step's seconds)."""
    steps = job.get("step_seconds") or {}
    if not steps:
        return ""
    variants = [v for k, v in steps.items() if k.startswith("variant:")]
    parts = [f"{k} {v:.0f} s" for k, v in steps.items() if not k.startswith("variant:")]
    parts.insert(2 if len(parts) > 1 else len(parts), f"{len(variants)} rows built {sum(variants):.0f} s")
    return "Steps (the seconds of the sitting that finished each): " + ", ".join(parts) + "."


def _took(seconds: float | list[float]) -> str:
    runs = seconds if isinstance(seconds, list) else [seconds]
    if len(runs) == 1:
        return f"{runs[0]:.0f} s"
    return f"{sum(runs):.0f} s over {len(runs)} runs (" + " + ".join(f"{r:.0f}" for r in runs) + " s; a resumed " \
        "run only builds and verifies rows added since)"


def _sittings(job: dict[str, Any]) -> str:
    """A job carried across sittings: how many, and their wall time (a sitting shared by jobs counts in full)."""
    runs = job.get("sittings") or []
    if len(runs) < 2:
        return ""
    total = sum(float(r.get("seconds") or 0) for r in runs)
    where = sorted({str(r["machine"]) for r in runs if r.get("machine")})
    return f" in its last sitting, of {len(runs)} sittings ({total:.0f} s of wall time in all, each counted in " \
        "full even when it also ran other jobs; the verdicts and times of one table may come from different " \
        f"sittings{', on ' + ' / '.join(where) if where else ''})"


def results_markdown(data: dict[str, Any], images: Sequence[str], abcrown: tuple[str, str] | None = None) -> str:
    """The whole results page (``abcrown``: the GPU run's summary.csv and gpu.txt, when there is one)."""
    lines = _header(data)
    for job in data["jobs"]:
        j = job["job"]
        lines += [f"## {j['key']}: `{j['source']}` at ε = {j['eps']:.4g}", "",
                  f"{j['note'] + '. ' if j['note'] else ''}Data: {job['data']}. "
                  f"Base net: {job['base'].get('source')}"
                  + (f" ({job['base'].get('train_seconds')} s of training)" if job['base'].get('trained_here') else "")
                  + f"; this job took {_took(job['seconds'])}{_sittings(job)}. {durations(job)}", ""]
        lines += job_table(job) + [""]
        if j["finetune"] and find_row(job, "combined", 0.5) is not None:
            lines += ["Targets of the brief on this network:", ""] + target_lines(job) + [""]
        elif find_row(job, "combined", 0.5, tune="teacher") is not None:
            lines += ["Targets of the brief on this network's finetuned grafts, the *distilled* rows (against the "
                      "distilled random / prune rows where built):", ""] + target_lines(job, "teacher") + [""]
        lines += sweep_lines(job) + channel_lines(job)
        pics = [p for p in images if f"-{j['key']}-" in p or p.endswith(f"-{j['key']}.png")]
        lines += [f"![{p}]({p})" for p in pics] + ([""] if pics else [])
    shared = [p for p in images if not any(f"-{jb['job']['key']}" in p for jb in data["jobs"])]
    lines += [f"![{p}]({p})" for p in shared] + ([""] if shared else [])
    if abcrown is not None:
        lines += abcrown_section(*abcrown)
    lines += paper_section() + notes(data)
    return "\n".join(lines) + "\n"


