"""Verification speed, the paper's way: is a grafted network faster to verify than the one it came from?

Two parts, each writing its own section of ``benchmarks/results/speed.json``; ``docs/bench-speed.md``
is generated from that file (never edited by hand).

``bounds``: CROWN bound time per image in the embedded auto_LiRPA 0.6.0 (``lirpa_bounds``, what
``graftonnx score --bound crown`` runs) of resnet_2b (ERAN CIFAR, ε 2/255) and the paper
benchmark's MNIST CNN-B (ε 0.1): the baseline and 50 % grafts (neuron / auto granularity) in
mask form and in the verifier-ready form ``graftonnx export`` writes, with the conv mode each
got.  All variants of a net run in one process, one after the other (compare ratios).

``verify``: CNN-B at ε 0.1, the baseline and its 50 % grafts, all finetuned with the same budget
(``benchmarks/paper`` builds and caches them), exported into ONE benchmark folder (same seeded
ERAN images), verified by each backend.  Per model, time statistics over the instances that
model classifies correctly and PGD does not break (the paper's rule), timeouts counted apart,
and the baseline/graft ratio on the instances eligible for both.

    python benchmarks/bench_speed.py bounds [--n 20]
    python benchmarks/bench_speed.py verify [--instances 30] [--timeout 60] [--backends abcrown,neuralsat,...]
    python benchmarks/bench_speed.py bab --bench DIR --tag NAME   # every α,β-CROWN heuristic, logs recorded
    python benchmarks/bench_speed.py report          # docs/bench-speed.md from the JSON

``bab`` runs α,β-CROWN (patches mode, through graftonnx's abcrown backend) with each ReLU branching
heuristic on every instance of DIR and keeps a trimmed copy of each log (settings, every BaB
round line, the verdict) under ``tests/data/abcrown/bab/``, which the tests replay.

α,β-CROWN runs from ``$ABCROWN_PATH`` with ``$ABCROWN_PY`` (``../shared/tools/abcrown-cpu-env`` builds
both; source its env.sh first).  One torch thread per process (the machine has 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.paper.config import FULL  # noqa: E402
from benchmarks.paper.nets import SHARED, base_network, splits_for, subset  # noqa: E402
from benchmarks.paper.rows import _accuracy, _make_variant, _scores, machine, variants_of  # noqa: E402
from graftonnx import api  # noqa: E402
from graftonnx._io import atomic_write_text  # noqa: E402
from graftonnx._lirpa import lirpa_bounds, lirpa_model  # noqa: E402
from graftonnx.attack import PgdConfig, pgd  # noqa: E402
from graftonnx.bench.export import export_benchmark  # noqa: E402
from graftonnx.bounds import eps_box  # noqa: E402
from graftonnx.data import load_dataset  # noqa: E402
from graftonnx.data.dataset import DataSpec  # noqa: E402
from graftonnx.model import OrtRunner, inspect_model, prepend_normalisation  # noqa: E402
from graftonnx.rewrite.native import native_form  # noqa: E402
from graftonnx.train.bridge import to_torch  # noqa: E402
from graftonnx.verify import backend_options, read_instances, verify_benchmark  # noqa: E402
from graftonnx.verify.journal import Journal  # noqa: E402
from graftonnx.verify.result import Verdict, is_solved  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "speed.json"
DOC = ROOT / "docs" / "bench-speed.md"
OUT = ROOT / "out" / "speed"
CIFAR = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2471, 0.2435, 0.2616)}
#: CNN-B of the paper benchmark (same cached base network), with the rows this benchmark verifies.
CNN_JOB = replace(next(j for j in FULL.jobs if j.key == "cnn-eps0.1"), criteria=("combined",), ratios=(0.5,),
                  extra=(("combined", 0.5, "const", "total", "auto"),), nsat=())
BACKENDS = {"abcrown": ("abcrown", "crown"), "neuralsat": ("neuralsat", "crown"),
            "lirpa-crown": ("lirpa", "crown"), "lirpa-alpha": ("lirpa", "alpha-crown")}


def _log(msg: str) -> None:
    print(f"[speed] {msg}", file=sys.stderr, flush=True)


def _save(section: str, value: object) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data[section] = value
    data["machine"] = machine()
    atomic_write_text(RESULTS, json.dumps(data, indent=1, default=str) + "\n")


# --- bounds -------------------------------------------------------------------------------------------------------
def _bound_time(model: object, x: np.ndarray, eps: float, rng: tuple[float, float]) -> dict[str, object]:
    lo, hi = eps_box(x, eps, rng)
    t0 = time.perf_counter()
    lm = lirpa_model(model)  # type: ignore[arg-type]
    traced = time.perf_counter() - t0
    sites = inspect_model(model).relus  # type: ignore[arg-type]
    t0 = time.perf_counter()
    lirpa_bounds(model, lo, hi, sites, "CROWN")  # type: ignore[arg-type]
    secs = time.perf_counter() - t0
    return {"conv_mode": lm.module.bound_opts["conv_mode"], "relu_neurons": sum(s.size for s in sites),
            "crown_s_per_image": secs / len(x), "trace_s": traced}


def _nets_for_bounds(n: int) -> list[tuple[str, object, object, float]]:
    """(name, base model, data with normalisation applied in-graph, eps) per network."""
    r2b = api.load(SHARED / "models" / "resnet_2b.onnx")
    cifar = load_dataset(str(SHARED / "datasets" / "eran_cifar10_test.csv"), inspect_model(r2b),
                         DataSpec(layout="nchw", **CIFAR))
    out = [("resnet_2b", r2b, cifar, 2 / 255)]
    cnn = OUT / "cnn-eps0.1" / "models" / "baseline.onnx"
    if cnn.is_file():
        base = api.load(cnn)
        out.append(("cnn-b", base, load_dataset(str(SHARED / "datasets" / "eran_mnist_test.csv"),
                                               inspect_model(base), DataSpec(layout="auto")), 0.1))
    else:
        _log("no CNN-B yet (run `verify` once first): bounds of resnet_2b only")
    return out


def run_bounds(n: int) -> None:
    torch.set_num_threads(1)
    rows = []
    for name, base, data, eps in _nets_for_bounds(n):
        score = subset(data, np.arange(min(50, len(data))))
        scores = api.score(base, score, api.GraftSettings(eps=eps))
        x = np.asarray(data.x[50:50 + n], np.float32)
        full = prepend_normalisation(base, data.mean, data.std, data.channel_axis)
        variants = [("baseline", full)]
        for gran in ("neuron", "auto"):
            s = api.GraftSettings(eps=eps, ratio=0.5, granularity=gran, init="fit", schedule="total")
            g = api.graft(base, score, settings=s, plan=api.plan(base, score, s, scores=scores)).model
            g = prepend_normalisation(g, data.mean, data.std, data.channel_axis)
            variants += [(f"graft50-{gran} mask form", g), (f"graft50-{gran} verifier-ready", native_form(g)[0])]
        for label, model in variants:
            rec = {"net": name, "variant": label, "eps": eps, "n_images": len(x)} | _bound_time(
                model, x, eps, data.input_range)
            _log(f"{name} {label}: {rec['crown_s_per_image']:.3f} s/image ({rec['conv_mode']})")
            rows.append(rec)
    for r in rows:
        base = next(b for b in rows if b["net"] == r["net"] and b["variant"] == "baseline")
        r["ratio_to_baseline"] = r["crown_s_per_image"] / base["crown_s_per_image"]
    _save("bounds", rows)


# --- verify -------------------------------------------------------------------------------------------------------
def _eligible(model_path: Path, data: object, idx: list[int], eps: float) -> list[bool]:
    """Per instance image: classified correctly and not broken by PGD (50 steps, 2 restarts)."""
    model = api.load(model_path)
    x = np.asarray(data.x[idx], np.float32)  # type: ignore[attr-defined]
    y = np.asarray(data.y, np.int64)[idx]  # type: ignore[attr-defined]
    ok = OrtRunner(model).logits(x).reshape(len(x), -1).argmax(1) == y
    _, fooled = pgd(to_torch(model), torch.from_numpy(x), torch.from_numpy(y),
                    PgdConfig(eps=eps, steps=50, restarts=2, seed=0), *data.input_range)  # type: ignore[attr-defined]
    return [bool(a and not b) for a, b in zip(ok, fooled.numpy(), strict=True)]


def _stats(times: list[float]) -> dict[str, float | None]:
    return {"mean": statistics.fmean(times) if times else None, "median": statistics.median(times) if times else None}


def _summarise(bench: Path, journal: Path, eligible: dict[str, list[bool]], images: list[int],
               timeout: float) -> dict[str, object]:
    inst = read_instances(bench)
    by = {inst_key: r for (inst_key, _), r in Journal(journal).load().items()}
    per: dict[str, dict[str, object]] = {}
    for model, flags in eligible.items():
        rows = [by.get(i.key) for i in inst if Path(i.model).stem == model]
        rows = [r for r in rows if r is not None]
        ok = [r for r, f in zip(rows, flags, strict=False) if f]
        solved = [r.seconds for r in ok if is_solved(r.verdict)]
        per[model] = {"instances": len(rows), "eligible": len(ok),
                      "va": sum(r.verdict == Verdict.UNSAT for r in rows) / max(1, len(rows)),
                      "timeouts": sum(r.verdict == Verdict.TIMEOUT for r in ok),
                      "errors": sum(r.verdict == Verdict.ERROR for r in rows),
                      "verdicts": [r.verdict for r in rows], "seconds": [round(r.seconds, 3) for r in rows],
                      "solved": _stats(solved),
                      "with_timeouts": _stats([min(r.seconds, timeout) if r.verdict != Verdict.TIMEOUT else timeout
                                               for r in ok])}
    both = [i for i in range(len(images)) if all(f[i] for f in eligible.values())]
    base = per.get("baseline")
    for model, rec in per.items():
        if model == "baseline" or base is None:
            continue
        b = [min(float(base["seconds"][i]), timeout) for i in both]  # type: ignore[index]
        g = [min(float(rec["seconds"][i]), timeout) for i in both]  # type: ignore[index]
        rec["paired"] = {"n": len(both), "baseline_mean": _stats(b)["mean"], "graft_mean": _stats(g)["mean"],
                         "ratio": (sum(b) / sum(g)) if g and sum(g) > 0 else None}
    return per


def _build_models(job: object, mode: object, splits: object, folder: Path) -> dict[str, dict[str, object]]:
    """Every variant of ``job`` built once into ``folder/models`` (its record cached beside it), as the paper does."""
    from dataclasses import asdict

    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    base, _ = base_network(job, mode, splits, ROOT / "out" / "paper-full" / "cache")  # type: ignore[arg-type]
    scores, out = None, {}
    for v in variants_of(job):  # type: ignore[arg-type]
        path, meta = models / f"{v.name}.onnx", models / f"{v.name}.json"
        if not meta.is_file():
            if v.criterion != "baseline" and scores is None:
                scores = _scores(job, mode, base, splits, folder)  # type: ignore[arg-type]
            rec = {"variant": asdict(v)} | _make_variant(v, job, mode, base, splits, scores, path)  # type: ignore
            rec |= _accuracy(path, job, mode, splits)  # type: ignore[arg-type]
            atomic_write_text(meta, json.dumps(rec, indent=1, default=str) + "\n")
        out[v.name] = json.loads(meta.read_text())
    return out


def run_verify(instances: int, timeout: float, backends: list[str], workers: int, models: list[str]) -> None:
    torch.set_num_threads(1)
    folder = OUT / CNN_JOB.key
    splits = splits_for(CNN_JOB, FULL)
    records = _build_models(CNN_JOB, FULL, splits, folder)
    every = [v.name for v in variants_of(CNN_JOB)]
    names = [x for x in every if x in models] if models else every
    tag = "" if names == every else "-" + "+".join(names)
    bench = folder / f"bench-speed-{instances}{tag}"
    if not bench.is_dir():
        export_benchmark([folder / "models" / f"{x}.onnx" for x in names], splits.verify, CNN_JOB.eps, instances,
                         FULL.seed, bench, timeout, skip="none")
    readme = (bench / "README.md").read_text()
    images = [int(line.split("|")[2]) for line in readme.splitlines() if line.startswith("| `vnnlib/")]
    eligible = {x: _eligible(bench / "onnx" / f"{x}.onnx", splits.verify, images, CNN_JOB.eps) for x in names}
    out = json.loads(RESULTS.read_text()).get("verify", {}) if RESULTS.is_file() else {}
    out |= {"job": CNN_JOB.key, "eps": CNN_JOB.eps, "timeout": timeout, "instances": len(images),
            "models": {x: {k: records[x].get(k) for k in ("sa", "ra", "grafted_neurons", "n_heldout")}
                       for x in every},
            "eligible": out.get("eligible", {}) | {x: sum(f) for x, f in eligible.items()}}
    for key in backends:
        backend, method = BACKENDS[key]
        journal = folder / f"speed-{key}{tag}.jsonl"
        _log(f"{key}: {len(images)} instances × {len(names)} models, timeout {timeout:g} s")
        t0 = time.perf_counter()
        opts = backend_options(backend, {"method": method, "device": "cpu", "grace_s": 15.0})
        verify_benchmark(bench, backend, opts, journal,
                         timeout=timeout, workers=workers if backend != "abcrown" else 1, progress=False)
        entry = _summarise(bench, journal, eligible, images, timeout) | {
            "wall_s": round(time.perf_counter() - t0, 1), "timeout": timeout,
            "command": f"python benchmarks/bench_speed.py verify --instances {instances} --timeout {timeout:g} "
                       f"--backends {key}" + (f" --models {','.join(names)}" if tag else "")}
        # re-read: another run (another backend) may have saved since this one started
        now = json.loads(RESULTS.read_text()).get("verify", {}) if RESULTS.is_file() else {}
        out["backends"] = now.get("backends", {}) | {f"{key}:{instances}{tag}": entry}
        _save("verify", out)


# --- bab ----------------------------------------------------------------------------------------------------------
BAB_DIR = ROOT / "tests" / "data" / "abcrown" / "bab"
#: How the recorded folders were built (graftonnx commands; one property each that needs BaB).
BAB_NETS = {
    "mnist-mlp": "mnist-net_256x2: `graft --data eran_mnist_test.csv --eps 0.03 --ratio 0.5 --init fit`, then "
                 "`finetune --data mnist5k --eps 0.03 --epochs 2` (the base got the same finetune), `simplify`; "
                 "ERAN image 22 at ε 0.06",
    "digits-cnn": "`train --arch cnn-b --data digits --eps 0.05 --epochs 15`, `graft --ratio 0.5 --granularity auto "
                  "--schedule total`, `finetune --epochs 4`, `export --eps 0.1 --instances 8 --skip attacked`; the "
                  "one exported property whose kfsb run branched (digits image 1258); base not finetuned",
}


def _trim(log: str) -> str:
    """The lines that say what ran and how it ended: settings, BaB rounds, verdict, errors."""
    lines = log.splitlines()
    keep = [ln for ln in lines if any(k in ln for k in ("method:", "conv_mode:", "BaB round", "Result:", "Time:",
                                                        "Error", "Traceback", "Random branching"))]
    return "\n".join(keep + lines[-3:]) + "\n"


def run_bab(bench: Path, tag: str, timeout: float) -> None:
    BAB_DIR.mkdir(parents=True, exist_ok=True)
    rows = []
    for branching in ("babsr", "kfsb", "fsb"):
        journal = OUT / "bab" / f"{tag}-{branching}.jsonl"
        journal.parent.mkdir(parents=True, exist_ok=True)
        opts = backend_options("abcrown", {"device": "cpu", "branching": branching, "grace_s": 15.0})
        summary = verify_benchmark(bench, "abcrown", opts, journal, timeout=timeout, progress=False)
        for r in summary.results:
            stem = f"{tag}_{Path(r.model).stem}_{Path(r.vnnlib).stem}_{branching}"
            log = Path(r.log).read_text(errors="replace") if r.log else ""
            res = Path(r.log).with_name("abcrown_results.txt") if r.log else None
            if res is not None and res.is_file():  # a run killed at the hard limit wrote no verdict: not kept
                atomic_write_text(BAB_DIR / f"{stem}.log", _trim(log))
                atomic_write_text(BAB_DIR / f"{stem}.results.txt", res.read_text())
            rows.append({"tag": tag, "model": Path(r.model).stem, "vnnlib": Path(r.vnnlib).stem,
                         "branching": branching, "verdict": r.verdict, "seconds": round(r.seconds, 2),
                         "bab_rounds": log.count("BaB round")})
            _log(f"{stem}: {r.verdict} in {r.seconds:.1f} s, {rows[-1]['bab_rounds']} BaB rounds")
    old = json.loads(RESULTS.read_text()).get("bab", []) if RESULTS.is_file() else []
    _save("bab", [r for r in old if r["tag"] != tag] + rows)


# --- report -------------------------------------------------------------------------------------------------------
def _fmt(v: object, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)  # type: ignore[arg-type]


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(str(c) for c in r) + " |" for r in rows] + [""]


def write_doc() -> None:
    data = json.loads(RESULTS.read_text())
    m = data.get("machine", {})
    lines = ["# Verification speed: grafted vs original networks", "",
             "Generated by `python benchmarks/bench_speed.py report` from `benchmarks/results/speed.json`",
             f"(machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, one torch thread per process).", ""]
    if "bounds" in data:
        lines += ["## CROWN bound time per image (embedded auto_LiRPA 0.6.0)", "",
                  "`python benchmarks/bench_speed.py bounds`: pre-activation bounds of every ReLU site, CROWN "
                  "intersected with IBP (what `graftonnx score --bound crown` runs). 50 % grafts are combined "
                  "criterion, λ over all units, init fit, not finetuned; *verifier-ready* is what "
                  "`graftonnx export` writes.", ""]
        lines += _table(["net", "variant", "conv mode", "ReLU neurons", "s / image", "× baseline"],
                        [[r["net"], r["variant"], r["conv_mode"], r["relu_neurons"], f"{r['crown_s_per_image']:.3f}",
                          f"{r['ratio_to_baseline']:.2f}"] for r in data["bounds"]])
    v = data.get("verify")
    if v:
        cmds = "; ".join(f"`{per['command']}`" for per in v.get("backends", {}).values() if "command" in per)
        lines += [f"## Complete and incomplete verification of CNN-B, ε = {v['eps']:g}", "",
                  f"{cmds}: seeded ERAN MNIST test images (the first n of one seeded order), every model of a backend "
                  "on the same instances; each model finetuned 4 epochs (FAT + GradAlign) like its baseline. "
                  "*Eligible*: classified correctly and not broken by PGD (50 steps, 2 restarts), the paper's rule for "
                  "times. *Solved*: unsat or sat within the budget; timeouts counted apart. *Paired*: mean time "
                  "(timeouts at the budget) over the instances eligible for the baseline and the graft. Times are "
                  "wall seconds per instance, the verifier's start-up included.", ""]
        lines += _table(["model", "SA %", "RA %", "grafted neurons"],
                        [[k, _fmt(r["sa"], ".1f"), _fmt(r["ra"], ".1f"), r["grafted_neurons"]]
                         for k, r in v["models"].items()])
        rows = []
        for key, per in v.get("backends", {}).items():
            label = f"{key.split(':')[0]} ({per.get('timeout', v['timeout']):g} s)"
            for model, r in per.items():
                if isinstance(r, dict):
                    p = r.get("paired") or {}
                    pair = f"{_fmt(p.get('baseline_mean'))} → {_fmt(p.get('graft_mean'))} (n={p['n']})" if p else ""
                    rows.append([label, model, f"{100 * r['va']:.1f}", f"{r['eligible']}/{r['instances']}",
                                 r["timeouts"], _fmt(r["solved"]["mean"]), _fmt(r["solved"]["median"]), pair,
                                 f"{p['ratio']:.1f}×" if p.get("ratio") else ""])
        lines += _table(["backend", "model", "VA %", "eligible", "timeouts", "mean s (solved)", "median s (solved)",
                         "paired mean s base → graft", "speed-up"], rows)
    if data.get("bab"):
        lines += ["## Every α,β-CROWN branching heuristic on grafted networks (CPU, patches mode)", "",
                  "`python benchmarks/bench_speed.py bab --bench DIR --tag NAME`, through graftonnx's abcrown "
                  "backend (its launcher restores α-CROWN's clamp gradient where needed and gives BaBSR's random "
                  "fallback the `split_indices` it reads: an upstream bug hit on ungrafted nets too). Trimmed logs: "
                  "`tests/data/abcrown/bab/`.", ""] + [f"- {k}: {v}" for k, v in BAB_NETS.items()] + [""]
        lines += _table(["net", "model", "property", "branching", "verdict", "s", "BaB rounds"],
                        [[r["tag"], r["model"], r["vnnlib"], r["branching"], r["verdict"], f"{r['seconds']:.1f}",
                          r["bab_rounds"]] for r in data["bab"]])
    atomic_write_text(DOC, "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=["bounds", "verify", "bab", "report"])
    ap.add_argument("--n", type=int, default=20, help="images per bound timing")
    ap.add_argument("--instances", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--models", default="", help="verify: comma-separated model names (default: all)")
    ap.add_argument("--backends", default="lirpa-crown,lirpa-alpha,abcrown,neuralsat")
    ap.add_argument("--bench", type=Path, help="bab: the benchmark folder to run")
    ap.add_argument("--tag", default="net", help="bab: a name for the recorded logs")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.part == "bounds":
        run_bounds(a.n)
    elif a.part == "verify":
        run_verify(a.instances, a.timeout, [b for b in a.backends.split(",") if b], a.workers,
                   [m for m in a.models.split(",") if m])
    elif a.part == "bab":
        run_bab(a.bench, a.tag, a.timeout)
    write_doc()


if __name__ == "__main__":
    main()
