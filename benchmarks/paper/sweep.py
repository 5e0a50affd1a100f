"""The trade-off curve (VA, SA, RA, UNR and time against the ratio, the ratio graftonnx recommends), channel vs neuron.

Why a sweep: Table 1 shows three ratios, the paper's Figure shows the whole trade-off, and
a user needs one answer ("how much can I graft?").  A job with ``NetJob.sweep`` grafts the
combined criterion at 10 … 90 % with ``--schedule total``, whose plans are nested (each
point grafts the previous point's units and more, specs/selection.md), so the curve moves
one knob.  The recommendation is the rule ``graftonnx tune`` applies: the largest VA whose
SA drop from the ungrafted baseline stays within 1.5 pts (the baseline is always
feasible); ties go to the smaller ratio.  Channel rows (``granularity == "channel"``) are
set beside the neuron rows of the same ratio, which graft (nearly) the same neuron count.
"""

from __future__ import annotations

from typing import Any

from .evidence import cell, p_text, paired
from .targets import find_row, row_time, verifier_name

__all__ = ["MAX_SA_DROP", "sweep_rows", "recommend", "sweep_lines", "channel_lines"]

#: the brief's SA target, and the recommendation's feasibility rule
MAX_SA_DROP = 1.5


def sweep_rows(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The baseline (0 %) and the combined rows at the job's sweep ratios, by ratio (rows not built are skipped)."""
    ratios = job["job"].get("sweep") or ()
    init = job["job"].get("init", "const")
    found = [find_row(job, "baseline", 0.0)] + [find_row(job, "combined", r, init) for r in ratios if r > 0]
    return sorted((r for r in found if r is not None), key=lambda r: r["ratio"]) if ratios else []


def recommend(rows: list[dict[str, Any]], max_sa_drop: float = MAX_SA_DROP) -> dict[str, Any] | None:
    """The row of largest VA (the complete verifier's where every row has it, else the lirpa column's)
    among those whose SA is within ``max_sa_drop`` pts of the baseline's; ties: the smaller ratio."""
    base = next((r for r in rows if r["criterion"] == "baseline"), None)
    if base is None:
        return None
    key = "va_nsat" if all(r.get("va_nsat") is not None for r in rows) else "va_crown"
    feasible = [r for r in rows if base["sa"] - r["sa"] <= max_sa_drop + 1e-9]
    return max(feasible, key=lambda r: (r[key], -r["ratio"]))


def _time(r: dict[str, Any], key: str) -> str:
    pt = row_time(r, key)
    if pt is None or pt.mean is None:
        return "–"
    return f"{pt.mean:.2f} ({pt.timeouts}/{pt.population} t/o)"


def sweep_lines(job: dict[str, Any]) -> list[str]:
    """The sweep table and the recommended ratio (empty when the job has no sweep)."""
    rows = sweep_rows(job)
    if len(rows) < 2:
        return []
    r0 = rows[0]
    crown, who = verifier_name(r0.get("crown_method", "crown")), verifier_name(r0.get("complete_backend",
                                                                                        "neuralsat"))
    lines = [f"**Trade-off sweep** (combined criterion, `--schedule total`: nested plans, each point grafts the "
             f"previous point's units and more; {crown} n={r0['n_crown']}, SA/RA n={r0.get('n_heldout', '?')}):", "",
             f"| ratio | grafted | UNR % | VA % {crown} | McNemar vs previous point | VA % {who} | SA % | RA % | "
             f"{crown} time s | {who} time s |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    prev = None
    for r in rows:
        pp = p_text(paired(r.get("crown_verdicts") or [], prev.get("crown_verdicts") or [])) if prev else "–"
        va_n = cell(r["va_nsat"], r["n_nsat"]) if r.get("va_nsat") is not None else "–"
        lines.append(f"| {round(100 * r['ratio'])} % | {r['grafted_neurons']}/{r['relu_neurons']} | {r['unr']:.1f} | "
                     f"{cell(r['va_crown'], r['n_crown'])} | {pp} | {va_n} | {cell(r['sa'], r.get('n_heldout'))} | "
                     f"{cell(r['ra'], r.get('n_heldout'))} | {_time(r, 'va_crown')} | "
                     f"{_time(r, 'va_nsat') if r.get('va_nsat') is not None else '–'} |")
        prev = r
    best = recommend(rows)
    if best is not None:
        key = "va_nsat" if all(r.get("va_nsat") is not None for r in rows) else "va_crown"
        lines += ["", f"**Recommended ratio: {round(100 * best['ratio'])} %**: the largest "
                  f"{who if key == 'va_nsat' else crown} VA ({cell(best[key], best[_n(key)])} %) whose SA drop "
                  f"stays within {MAX_SA_DROP:g} pts of the baseline (SA {r0['sa']:.1f} → {best['sa']:.1f} %, "
                  f"{best['sa'] - r0['sa']:+.1f} pts); McNemar against the baseline "
                  f"{p_text(paired(best.get(_v(key)) or [], r0.get(_v(key)) or []))}."]
    return lines + [""]


def _n(key: str) -> str:
    return "n_nsat" if key == "va_nsat" else "n_crown"


def _v(key: str) -> str:
    return "nsat_verdicts" if key == "va_nsat" else "crown_verdicts"


def channel_lines(job: dict[str, Any]) -> list[str]:
    """Channel vs neuron grafting at each ratio that has both rows (equal neuron counts), paired by McNemar."""
    pairs = []
    for c in (r for r in job["rows"] if r.get("granularity", "neuron") == "channel"):
        n = find_row(job, c["criterion"], c["ratio"], c["init"])
        if n is not None and c.get("schedule", "total") == "total":
            pairs.append((n, c))
    if not pairs:
        return []
    crown = verifier_name(pairs[0][0].get("crown_method", "crown"))
    lines = [f"**Channel vs neuron grafting at equal neuron counts** ({crown} VA on the same "
             f"{pairs[0][0]['n_crown']} instances):", "",
             f"| ratio | neurons grafted (neuron / channel) | VA % {crown}, neurons | VA % {crown}, channels | "
             "McNemar (channels : neurons) | SA %, neurons | SA %, channels | UNR %, neurons / channels |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, c in sorted(pairs, key=lambda p: p[0]["ratio"]):
        pair = p_text(paired(c.get("crown_verdicts") or [], n.get("crown_verdicts") or []))
        lines.append(f"| {round(100 * n['ratio'])} % | {n['grafted_neurons']} / {c['grafted_neurons']} | "
                     f"{cell(n['va_crown'], n['n_crown'])} | {cell(c['va_crown'], c['n_crown'])} | {pair} | "
                     f"{cell(n['sa'], n.get('n_heldout'))} | {cell(c['sa'], c.get('n_heldout'))} | "
                     f"{n['unr']:.1f} / {c['unr']:.1f} |")
    return lines + [""]
