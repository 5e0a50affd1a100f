"""The brief's targets on one network, each with its interval, and the README's one-line claim.

Why apart from the page layout (tables.py): a verdict is a claim, so its arithmetic is
one tested function per target, and "met" is never printed without saying whether the
95 % interval of the measured difference decides it (evidence.py).  The targets are
fixed (VA +40 pts, SA −1.5, RA −3, time ÷4, RA − VA ≤ 5, combined ≥ random and prune + 5):
they are reported honestly, never tuned to the data.
"""

from __future__ import annotations

from typing import Any

from .evidence import diff_interval, p_text, paired, paper_time, ratio_interval, verdict

__all__ = ["find_row", "target_lines", "readme_claim", "verifier_name", "row_time"]

_NAMES = {"crown": "CROWN", "alpha-crown": "α-CROWN", "ibp": "IBP", "neuralsat": "NeuralSAT", "abcrown": "α,β-CROWN"}


def verifier_name(backend: str | None) -> str:
    """The display name of a verifier or lirpa bound method."""
    return _NAMES.get(backend or "", backend or "?")


def find_row(job: dict[str, Any], criterion: str, ratio: float, init: str = "const",
             tune: str = "") -> dict[str, Any] | None:
    """The job's (criterion, ratio) row with the total schedule, neuron granularity, ``init`` and finetune
    ``tune`` ("": the job's own; "teacher": a distilled row; the baseline is never distilled)."""
    tune = "" if criterion == "baseline" else tune
    for r in job["rows"]:
        if r["criterion"] == criterion and abs(r["ratio"] - ratio) < 1e-9 and r.get("schedule", "total") == "total" \
                and r.get("granularity", "neuron") == "neuron" and r.get("tune", "") == tune \
                and (r["init"] == init or criterion in ("baseline", "prune")):
            return r
    return None


def _col(key: str) -> tuple[str, str, str, str]:
    """(n key, verdicts key, times key, clean-RA key) of a VA column (``va_nsat`` or ``va_crown``)."""
    if key == "va_nsat":
        return "n_nsat", "nsat_verdicts", "nsat_times", "ra_verify_nsat"
    return "n_crown", "crown_verdicts", "crown_times", "ra_verify"


def row_time(r: dict[str, Any], key: str) -> Any:
    """The paper's time (:class:`~.evidence.PaperTime`) of a row's VA column, None when per-instance data lack."""
    n_key, v_key, t_key, _ = _col(key)
    clean = list(r.get("clean") or [])[: r.get(n_key) or 0]
    return paper_time(r.get(v_key) or [], r.get(t_key) or [], clean)


def _pair(a: dict[str, Any], b: dict[str, Any], key: str) -> str:
    v_key = _col(key)[1]
    return p_text(paired(a.get(v_key) or [], b.get(v_key) or []))


def _time_line(base: dict[str, Any], g: dict[str, Any], who: str) -> str | None:
    tb, tg = row_time(base, "va_nsat"), row_time(g, "va_nsat")
    if tb is not None and tg is not None and not (tb.mean and tg.mean):  # per-instance data, nobody to time
        return (f"| mean {who} time ÷4 or better (the paper's way) | no time: baseline {tb.timed}, grafted "
                f"{tg.timed} instances correct, not attacked and answered in time | **not evaluated** | – | – |")
    if tb is not None and tg is not None and tb.mean and tg.mean:
        ratio, ci = tb.mean / tg.mean, ratio_interval(tb.times, tg.times)
        ci_text = "–" if ci is None else f"÷{ci[0]:.2f} … ÷{ci[1]:.2f} (bootstrap)"
        return (f"| mean {who} time ÷4 or better (the paper's way: correct, not attacked, timeouts apart) | "
                f"{tb.mean:.1f} s (n={tb.timed}, {tb.timeouts} timeouts) → {tg.mean:.1f} s (n={tg.timed}, "
                f"{tg.timeouts} timeouts) (÷{ratio:.2f}) | {verdict(ratio, ci, 4, True, f'÷{ratio:.2f} only')} | "
                f"{ci_text} | – |")
    if base.get("nsat_mean_time") and g.get("nsat_mean_time"):  # rows without per-instance data (older runs)
        ratio = base["nsat_mean_time"] / g["nsat_mean_time"]
        return (f"| mean {who} time ÷4 or better | {base['nsat_mean_time']:.1f} s → {g['nsat_mean_time']:.1f} s "
                f"(÷{ratio:.2f}) | {verdict(ratio, None, 4, True, f'÷{ratio:.2f} only')} | – | – |")
    return None


def _ci(ci: tuple[float, float] | None) -> str:
    return "–" if ci is None else f"[{ci[0]:+.1f}, {ci[1]:+.1f}] pts"


def target_lines(job: dict[str, Any], tune: str = "") -> list[str]:
    """The brief's targets on one network (50 % combined graft + finetune vs the ungrafted baseline); ``tune``
    picks the finetune of the grafted rows compared ("teacher": the distilled rows of a net without labels)."""
    base, g = find_row(job, "baseline", 0.0), find_row(job, "combined", 0.5, tune=tune)
    if base is None or g is None:
        return ["(no baseline / combined 50 % rows: targets not evaluated)"]
    who = verifier_name(g.get("complete_backend", "neuralsat"))
    out = [f"| target ({who} VA where run, else {verifier_name(g.get('crown_method', 'crown'))} VA) | measured | "
           "verdict | 95 % interval | McNemar p (grafted:baseline) |", "|---|---|---|---|---|"]
    key = "va_nsat" if g["va_nsat"] is not None and base["va_nsat"] is not None else "va_crown"
    n_key, _, _, ra_key = _col(key)
    n = g.get(n_key)
    dva, ci = g[key] - base[key], diff_interval(g[key], n, base[key], n)
    out.append(f"| VA gain ≥ +40 pts ({key}) | {base[key]:.1f} → {g[key]:.1f} ({dva:+.1f} pts) | "
               f"{verdict(dva, ci, 40, True, f'short by {40 - dva:.1f} pts')} | {_ci(ci)} | {_pair(g, base, key)} |")
    for what, k, limit in (("SA", "sa", 1.5), ("RA", "ra", 3.0)):
        d, nh = base[k] - g[k], g.get("n_heldout")
        ci = diff_interval(base[k], nh, g[k], nh)
        out.append(f"| {what} drop ≤ {limit:g} pts | {base[k]:.1f} → {g[k]:.1f} ({g[k] - base[k]:+.1f}) | "
                   f"{verdict(d, ci, limit, False, f'over by {d - limit:.1f} pts')} | {_ci(ci)} (drop) | – |")
    line = _time_line(base, g, who)
    out += [line] if line else []
    if g.get(ra_key) is not None:
        gap, ci = g[ra_key] - g[key], diff_interval(g[ra_key], n, g[key], n)
        out.append(f"| certified gap RA − VA ≤ 5 pts (grafted; PGD RA on the same {n} verification images) | "
                   f"{g[ra_key]:.1f} − {g[key]:.1f} = {gap:.1f} | "
                   f"{verdict(gap, ci, 5, False, f'over by {gap - 5:.1f} pts')} | {_ci(ci)} | – |")
    for o in [r for r in job["rows"] if r["criterion"] in ("random", "prune") and abs(r["ratio"] - 0.5) < 1e-9
              and r.get("tune", "") == tune]:
        other = o["criterion"] + (", λ over the requested picks" if o.get("schedule", "total") == "target"
                                  and o["criterion"] == "prune" else "")
        for k in ("va_nsat", "va_crown"):
            if o[k] is None or g[k] is None:
                continue
            nk = g.get(_col(k)[0])
            d, ci = g[k] - o[k], diff_interval(g[k], nk, o[k], nk)
            out.append(f"| combined beats {other} by ≥ 5 VA pts at 50 % ({k}) | {g[k]:.1f} vs {o[k]:.1f} "
                       f"({d:+.1f}) | {verdict(d, ci, 5, True, f'short by {5 - d:.1f} pts')} | {_ci(ci)} | "
                       f"{_pair(g, o, k)} (combined:{o['criterion']}) |")
    return out


def readme_claim(data: dict[str, Any], key: str = "cnn-eps0.1") -> str | None:
    """The README's one-line claim, from job ``key``'s baseline and combined 50 % rows (None: rows absent)."""
    from .evidence import interval

    job = next((j for j in data["jobs"] if j["job"]["key"] == key), None)
    base, g = (find_row(job, "baseline", 0.0), find_row(job, "combined", 0.5)) if job else (None, None)
    if job is None or base is None or g is None:
        return None
    crown, who = verifier_name(g.get("crown_method", "crown")), verifier_name(g.get("complete_backend", "neuralsat"))

    def va(r: dict[str, Any], k: str) -> str:
        n = r[_col(k)[0]]
        lo, hi = interval(r[k], n) or (r[k], r[k])
        return f"{r[k]:.1f} % [{lo:.1f}, {hi:.1f}]"

    main = "va_nsat" if g["va_nsat"] is not None and base["va_nsat"] is not None else "va_crown"
    name = who if main == "va_nsat" else crown
    text = (f"an adversarially trained MNIST CNN at ε = {job['job']['eps']:g}, 50 % of its ReLUs grafted with "
            f"`--schedule total` and finetuned {data['budget']['finetune_epochs']} epochs, went from "
            f"{va(base, main)} to {va(g, main)} verified by {name} ({g[_col(main)[0]]} images, 95 % Wilson "
            f"intervals; McNemar {_pair(g, base, main)}")
    if main == "va_nsat":
        text += f"; {crown}: {va(base, 'va_crown')} → {va(g, 'va_crown')} on {g['n_crown']}"
    text += f") at {g['sa'] - base['sa']:+.1f} pts clean and {g['ra'] - base['ra']:+.1f} pts PGD accuracy"
    tb, tg = row_time(base, main), row_time(g, main)
    if tb is not None and tg is not None and tb.mean and tg.mean:
        ci = ratio_interval(tb.times, tg.times)
        span = "" if ci is None else f" [÷{ci[0]:.1f}, ÷{ci[1]:.1f}]"
        text += (f"; mean verification time (the paper's way: correct, unattacked instances, timeouts apart) "
                 f"÷{tb.mean / tg.mean:.1f}{span}")
    return text + "."
