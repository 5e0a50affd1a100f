"""The embedded default job: train, graft, finetune and measure a small digits classifier.

Why: a newcomer on a fresh machine (no GPU, no network, no data of their own) should see
the whole method work in about a minute: a network adversarially trained here on
scikit-learn's bundled 8×8 digits, grafted at 50 %, finetuned, and measured before and
after (clean and PGD accuracy, unstable neurons per image under IBP and CROWN).  It is a
pipeline of the engine (train → graft → finetune → measure), so a rerun into the same
folder reuses every finished step.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import api
from ._io import atomic_write_text
from .data import load_dataset
from .data.dataset import Dataset, DataSpec
from .device import device_knob
from .engine import DONE, PIPELINES, Ctx, Step, fingerprint, make_jobs, run_batch
from .errors import BadInput, GraftFailure
from .settings import Settings, above, at_least, knob, to_dict, within

__all__ = ["DemoRow", "DemoReport", "DemoConfig", "run_demo", "demo_steps", "DEMO_FILES"]


@dataclass(frozen=True)
class DemoRow:
    """One model's measurements on the held-out digits."""

    name: str
    sa: float
    ra: float
    unr_ibp: float
    unr_crown: float
    relu_neurons: int


@dataclass(frozen=True)
class DemoReport:
    eps: float
    ratio: float
    n_train: int
    n_test: int
    rows: tuple[DemoRow, ...]
    folder: str

    def table(self) -> str:
        lines = [f"digits (sklearn, 8×8), eps = {self.eps:g} on [0, 1] pixels, {self.n_test} held-out images",
                 f"{'model':<26}{'SA':>7}{'RA(PGD)':>9}{'UNR ibp':>9}{'UNR crown':>11}"]
        lines += [f"{r.name:<26}{r.sa:>7.3f}{r.ra:>9.3f}{r.unr_ibp:>9.2f}{r.unr_crown:>11.2f}" for r in self.rows]
        return "\n".join(lines)


@dataclass(frozen=True)
class DemoConfig(Settings):
    """The demo's knobs (``graftonnx demo``'s flags; the journal is keyed by all but ``progress``)."""

    eps: float = knob(0.05, "L∞ radius on the raw pixel scale (the digits are scaled to [0, 1]).", check=above(0))
    ratio: float = knob(0.5, "Fraction of the neurons to graft.",
                        check=within(0, 1))
    epochs: int = knob(20, "Training epochs.", check=at_least(1))
    seed: int = knob(0, "Random seed (split, training, selection).")
    progress: bool = knob(True, "Show progress bars.", runtime=True)
    device: str = device_knob()

    def fingerprint(self) -> str:
        return fingerprint(to_dict(self))


def _split(data: Dataset, n_test: int, seed: int) -> tuple[Dataset, Dataset]:
    order = np.random.default_rng(seed).permutation(len(data))
    test, train = order[:n_test], order[n_test:]

    def part(idx: np.ndarray) -> Dataset:
        return Dataset(data.x[idx], data.y[idx], data.source, data.input_range, data.mean, data.std,
                       data.channel_axis)

    return part(train), part(test)


def _splits(ctx: Ctx) -> tuple[Dataset, Dataset]:
    from .train.api import stub_info

    def make() -> tuple[Dataset, Dataset]:
        digits = load_dataset("digits", stub_info((64,), 10), DataSpec(layout="flat"))
        return _split(digits, 300, ctx.config.seed)

    return ctx.cached("splits", make)  # type: ignore[no-any-return]


def _cfg(c: DemoConfig, epochs: int, lr: float) -> Any:
    from .train import TrainConfig

    return TrainConfig(epochs=epochs, eps=c.eps, lr=lr, batch_size=64, seed=c.seed, progress=c.progress,
                       device=c.device)


def _train(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    from .train.api import train_from_scratch

    c = ctx.config
    api.save_model(train_from_scratch("mlp:64,64", _splits(ctx)[0], _cfg(c, c.epochs, 0.05)).model,
                   ctx.dir / "base.onnx")
    return {"model": ctx.rel(ctx.dir / "base.onnx")}, {}


def _graft(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    c = ctx.config
    grafted = api.graft(ctx.output("train", "model"), _splits(ctx)[0], ratio=c.ratio, eps=c.eps, init="fit",
                        seed=c.seed).model
    api.save_model(grafted, ctx.dir / "grafted.onnx")
    return {"model": ctx.rel(ctx.dir / "grafted.onnx")}, {}


def _finetune(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    from .train.api import finetune

    c = ctx.config
    tuned = finetune(api.load(ctx.output("graft", "model")), _splits(ctx)[0], _cfg(c, max(c.epochs // 2, 1), 0.01))
    api.save_model(tuned.model, ctx.dir / "tuned.onnx")
    return {"model": ctx.rel(ctx.dir / "tuned.onnx")}, {}


def _measure(name: str, model: object, test: Dataset, eps: float, device: str = "auto") -> DemoRow:
    from .train import EvalConfig, evaluate

    m = api.load(model)
    ev = evaluate(m, test, EvalConfig(eps=eps, steps=20, restarts=1, device=device))
    info = api.inspect(m)
    return DemoRow(name, ev.sa, ev.ra, sum(api.unr(m, test, eps, "ibp").values()),
                   sum(api.unr(m, test, eps, "crown").values()), info.n_neurons)


def _measure_all(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    c, (train, test) = ctx.config, _splits(ctx)
    names = ("baseline", f"grafted {c.ratio:.0%} (no finetune)", f"grafted {c.ratio:.0%} + finetune")
    steps = ("train", "graft", "finetune")
    rows = [_measure(n, ctx.output(s, "model"), test, c.eps, c.device) for n, s in zip(names, steps, strict=True)]
    return {}, {"rows": [asdict(r) for r in rows], "n_train": len(train), "n_test": len(test)}


@PIPELINES.register("demo")
def demo_steps(config: DemoConfig) -> list[Step]:
    """train → graft → finetune → measure."""
    return [Step("train", _train), Step("graft", _graft, ("train",)), Step("finetune", _finetune, ("graft",)),
            Step("measure", _measure_all, ("finetune",))]


#: What a demo run writes into its folder (all that ``force`` removes: nothing else there is touched).
DEMO_FILES = ("journal.jsonl", "report.json", "base.onnx", "grafted.onnx", "tuned.onnx")


def run_demo(folder: str | os.PathLike[str] = "graftonnx-demo", config: DemoConfig | None = None,
             force: bool = False, threads: int | None = None) -> DemoReport:
    """Train → graft → finetune → measure; models, the journal and ``report.json`` go to ``folder``.

    A rerun into the same folder resumes (finished steps come from its journal); ``force``
    starts over: the demo's own files (:data:`DEMO_FILES`) are removed first.  ``threads``:
    torch threads of the job (default: :func:`graftonnx.threads.current_threads`).
    """
    from .threads import current_threads

    c = config or DemoConfig()
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise BadInput(f"demo folder {out} is a file: choose another --output")
    out.mkdir(parents=True, exist_ok=True)
    if force:
        for name in DEMO_FILES:
            (out / name).unlink(missing_ok=True)
    jobs = make_jobs("demo", [("", c)], out, threads or current_threads())
    (outcome,), journal = run_batch(jobs, out)
    if outcome.status != DONE:
        raise GraftFailure(f"demo failed in step {outcome.error}")
    m = next(r for r in reversed(journal.records()) if r.step == "measure" and r.status == DONE).metrics
    report = DemoReport(c.eps, c.ratio, m["n_train"], m["n_test"], tuple(DemoRow(**r) for r in m["rows"]), str(out))
    atomic_write_text(out / "report.json", json.dumps(asdict(report), indent=2) + "\n")
    return report
