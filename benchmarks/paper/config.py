"""What the Table-1 benchmark runs, as frozen settings: one ``Budget`` per mode and one ``NetJob`` per row set.

Why settings objects and not flags: ``--quick`` (CI, minutes), ``--full`` (≤ 2 hours on
2 CPU cores) and ``--table1`` (issue 15's sizes: many hours, over several sittings) must
run *the same code* with different sizes, every number in docs/results.md must be
traceable to one committed configuration, and cached networks are keyed by the settings
that made them (a changed setting can never reuse a stale net).  Fields added after a
mode's first run default to that mode's old behaviour and are left out of its
fingerprint while at their default (:func:`fingerprint_fields`), so adding a knob never
invalidates a finished run of another mode.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

__all__ = ["Budget", "NetJob", "Mode", "MODES", "CRITERIA", "CIFAR_MEAN", "CIFAR_STD", "settings_key",
           "fingerprint_fields", "complete_backend", "SWEEP_RATIOS", "DISTIL_EPOCHS"]

#: The rows of the paper's Table 1 we can build: ours (combined), the two one-score
#: ablations of Table 2, random grafting and pruning (a = b = 0 fixed, Table 5).
CRITERIA = ("combined", "instability", "significance", "random", "prune")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2471, 0.2435, 0.2616)


@dataclass(frozen=True)
class Budget:
    """Sizes of one mode: data, epochs, attack strength, instance counts and verifier budgets."""

    n_train: int  # mnist5k images used for training/finetuning/scoring (the rest is held out)
    n_heldout: int  # mnist5k images held out for SA / RA
    train_epochs: int
    finetune_epochs: int
    n_score: int  # training images used to score neurons
    score_bound: str  # bound method for the instability score
    n_lirpa: int  # verification instances (ERAN test images) for the CROWN column
    lirpa_timeout: float
    n_nsat: int  # the first n_nsat of those instances also go to NeuralSAT
    nsat_timeout: float
    pgd_steps: int
    pgd_restarts: int
    unr_bound: str  # bound method for UNR on the instance boxes
    workers: int = 2
    lirpa_method: str = "crown"  # the lirpa column's bound: crown | alpha-crown
    #: VA images of the MNIST jobs: ``eran`` (../shared's 100 ERAN test images) or ``heldout`` (the first
    #: n_lirpa held-out mnist5k images in the export's seeded order: ≥ 100 instances need more than ERAN's
    #: 100, and SA/RA/VA then come from one image set).  CIFAR jobs always verify ERAN CIFAR images.
    verify_on: str = "eran"
    #: the complete verifier: ``neuralsat``, or ``auto`` (α,β-CROWN when $ABCROWN_PATH or $ABCROWN names a
    #: checkout, else NeuralSAT; :func:`complete_backend`)
    complete: str = "neuralsat"


@dataclass(frozen=True)
class NetJob:
    """One network and the rows built from it.

    ``source``: ``train:<arch>`` (trained here on mnist5k) or ``shared:<name>`` (a VNN-COMP
    net from ../shared/models).  ``criteria`` × ``ratios`` are grafted and (unless
    ``finetune`` is False) finetuned; ``extra`` adds single (criterion, ratio, init[, schedule]) rows.
    ``nsat`` names the (criterion, ratio) rows NeuralSAT runs on, ``("baseline", 0)`` included, and
    (criterion, ratio, tune) for a row finetuned otherwise (``"teacher"``: distilled).
    """

    key: str
    source: str
    dataset: str  # mnist | cifar
    eps: float
    criteria: tuple[str, ...] = CRITERIA
    ratios: tuple[float, ...] = (0.25, 0.5, 0.75)
    init: str = "const"
    finetune: bool = True
    extra: tuple[tuple[str | float, ...], ...] = ()
    nsat: tuple[tuple[str, float] | tuple[str, float, str], ...] = ()
    nsat_instances: int | None = None  # overrides Budget.n_nsat for this job
    lirpa_instances: int | None = None  # overrides Budget.n_lirpa for this job
    schedule: str = "total"  # λ schedule of combined/prune rows; graftonnx's default is "target" (selection.md)
    note: str = ""
    #: ratios of the trade-off sweep (combined criterion, the job's init and schedule; 0 = the baseline):
    #: with ``schedule == "total"`` the plans are nested, so every point grafts the previous point's units too
    sweep: tuple[float, ...] = ()
    #: overrides Budget.lirpa_method for this job (None: the budget's), like nsat_instances for n
    lirpa_method: str | None = None

    def method(self, budget: Budget) -> str:
        """The lirpa column's bound method for this job."""
        return self.lirpa_method or budget.lirpa_method


@dataclass(frozen=True)
class Mode:
    name: str
    budget: Budget
    jobs: tuple[NetJob, ...]
    seed: int = 0
    lr: float = 0.05
    finetune_lr: float = 0.01
    extra_info: dict[str, str] = field(default_factory=dict)


_NSAT_MAIN = (("baseline", 0.0), ("combined", 0.5), ("random", 0.5), ("prune", 0.5))
_ONE_EACH = tuple((c, 0.5, "const") for c in CRITERIA[1:])  # the other criteria at 50 % only (time)
#: the paper's literal λ schedule (slices over the K picks, every graft ends at λ = 0) beside our default
#: (slices over all units, nested plans): the one ablation that moved VA most in our trials (selection.md)
_TARGET = (("combined", 0.5, "const", "target"),)
#: pruning the units the target schedule picks: with the total schedule, pruning grafts a whole hidden
#: layer of the CNN to zero (the net collapses), so both prune rows are shown
_PRUNE_TARGET = (("prune", 0.5, "const", "target"),)

QUICK = Mode("quick", Budget(n_train=1500, n_heldout=300, train_epochs=8, finetune_epochs=2, n_score=200,
                             score_bound="ibp", n_lirpa=12, lirpa_timeout=30.0, n_nsat=2, nsat_timeout=10.0,
                             pgd_steps=10, pgd_restarts=1, unr_bound="ibp", workers=1),
             (NetJob("mlp-eps0.05", "train:mlp:128,128", "mnist", 0.05, criteria=("combined", "prune"),
                     ratios=(0.5,), nsat=(("baseline", 0.0), ("combined", 0.5))),))

FULL = Mode("full", Budget(n_train=4000, n_heldout=1000, train_epochs=20, finetune_epochs=4, n_score=1000,
                           score_bound="ibp", n_lirpa=40, lirpa_timeout=60.0, n_nsat=15, nsat_timeout=30.0,
                           pgd_steps=50, pgd_restarts=2, unr_bound="ibp", workers=2),
            (NetJob("cnn-eps0.1", "train:cnn-b", "mnist", 0.1, criteria=("combined",),
                    extra=_ONE_EACH + (("combined", 0.5, "fit"),) + _TARGET + _PRUNE_TARGET, nsat=_NSAT_MAIN,
                    nsat_instances=8,
                    lirpa_instances=12, note="CROWN on grafted CNN-B needs auto_LiRPA's matrix conv mode (~7 s an "
                    "instance here), hence 12 CROWN and 8 NeuralSAT instances"),
             NetJob("mlp-eps0.1", "train:mlp:256,256", "mnist", 0.1, criteria=("combined",), extra=_ONE_EACH + _TARGET,
                    nsat=(("baseline", 0.0), ("combined", 0.5), ("random", 0.5)), nsat_instances=10),
             NetJob("mnist-net_256x2", "shared:mnist-net_256x2", "mnist", 0.02, criteria=("combined",),
                    extra=(("random", 0.5, "const"),) + _TARGET, nsat=(("baseline", 0.0), ("combined", 0.5)),
                    nsat_instances=10,
                    note="VNN-COMP mnistfc net, finetuned here on mnist5k; eps 0.02 (its VNN-COMP radii are "
                         "0.02/0.05)"),
             NetJob("resnet_2b", "shared:resnet_2b", "cifar", 2 / 255, criteria=("combined",), finetune=False,
                    extra=tuple(("combined", r, "fit") for r in (0.25, 0.5, 0.75)) + _TARGET
                    + (("combined", 0.5, "fit", "target"),),
                    lirpa_instances=20,
                    note="VNN-COMP cifar2020 ResNet-2B, NOT finetuned (no CIFAR training set here); "
                         "grafted with init const and fit; CROWN only (NeuralSAT cut for time)"),
             NetJob("mlp-eps0.05", "train:mlp:256,256", "mnist", 0.05, criteria=("combined",),
                    extra=(("random", 0.5, "const"),) + _TARGET, nsat=(("baseline", 0.0), ("combined", 0.5)),
                    nsat_instances=10, note="the second ε, on the MLP (a second CNN-B did not fit the 2-hour budget)")))

#: 0, 10, …, 90 %: the trade-off curve of issue 15 (0 is the baseline row)
SWEEP_RATIOS = tuple(k / 10 for k in range(1, 10))
#: the rows of the paper's Table 1 that every table1 network verifies completely (issue 15, scope 1)
_T1_COMPLETE = (("baseline", 0.0), ("combined", 0.25), ("combined", 0.5), ("combined", 0.75),
                ("instability", 0.5), ("significance", 0.5), ("random", 0.5), ("prune", 0.5))
#: epochs of a distilled row: what bench_teacher measured on ResNet-2B's 50 images (benchmarks/results/teacher.md)
DISTIL_EPOCHS = 40
#: distilled from the original (no labels): what a net without its training set can still get (issue 15, scope 5)
_DISTILLED = tuple(("combined", r, "const", "total", "neuron", "teacher") for r in (0.25, 0.5, 0.75)) \
    + (("random", 0.5, "const", "total", "neuron", "teacher"),)
_CHANNEL = tuple(("combined", r, "const", "total", "channel") for r in (0.25, 0.5, 0.75))


def _t1(key: str, source: str, eps: float, extra: tuple[tuple[str | float, ...], ...] = _ONE_EACH,
        **kw: object) -> NetJob:
    """A table1 network: combined 25/50/75 %, the other criteria at 50 %, all eight verified completely."""
    kw.setdefault("nsat", _T1_COMPLETE)
    return NetJob(key, source, "cifar" if source.startswith("shared:resnet") else "mnist", eps,
                  criteria=("combined",), ratios=(0.25, 0.5, 0.75), extra=extra, **kw)  # type: ignore[arg-type]


TABLE1 = Mode("table1", Budget(n_train=4000, n_heldout=1000, train_epochs=20, finetune_epochs=4, n_score=1000,
                               score_bound="ibp", n_lirpa=200, lirpa_timeout=60.0, n_nsat=100, nsat_timeout=30.0,
                               pgd_steps=50, pgd_restarts=2, unr_bound="ibp", workers=2, lirpa_method="alpha-crown",
                               verify_on="heldout", complete="auto"),
              (_t1("cnn-eps0.1", "train:cnn-b", 0.1, _ONE_EACH + _PRUNE_TARGET + _CHANNEL, sweep=SWEEP_RATIOS,
                   lirpa_method="crown",
                   note="lirpa column by CROWN, not α-CROWN: one α-CROWN bound on CNN-B took 307 s here (2 shared "
                        "cores, matrix conv mode), past the 60 s budget, so every α-CROWN answer would count as a "
                        "timeout; prune with the total schedule grafts the whole last hidden layer to zero (a "
                        "collapsed net), so the prune row of the target schedule is shown too; it and the channel "
                        "rows (channel vs neuron at equal neuron counts) are verified by CROWN only"),
               _t1("mlp-eps0.1", "train:mlp:256,256", 0.1, sweep=SWEEP_RATIOS),
               _t1("mnist-net_256x2", "shared:mnist-net_256x2", 0.02,
                   note="VNN-COMP mnistfc net, finetuned here on mnist5k; eps 0.02 (its VNN-COMP radii are "
                        "0.02/0.05)"),
               _t1("resnet_2b", "shared:resnet_2b", 2 / 255,
                   _ONE_EACH + tuple(("combined", r, "fit") for r in (0.25, 0.5, 0.75)) + _DISTILLED,
                   finetune=False, lirpa_method="crown", nsat=_T1_COMPLETE + (("combined", 0.5, "teacher"),),
                   note="VNN-COMP cifar2020 ResNet-2B, NOT finetuned with labels (no CIFAR training set here); the "
                        "*distilled* rows are finetuned from the original network instead (`finetune --teacher`: "
                        "FAT on the 50 scoring images without their labels, soft targets only, "
                        f"{DISTIL_EPOCHS} epochs); lirpa column by CROWN: α-CROWN on one instance CROWN could not "
                        "prove ran over 300 s here; n is "
                        "capped by the data: of ERAN's 100 CIFAR images half score the neurons (and are the "
                        "distillation's images), the other 50 are every VA instance and the SA/RA images; init fit "
                        "rows (CROWN only) show what a fitted line saves"),
               _t1("mlp-eps0.05", "train:mlp:256,256", 0.05, note="the second ε, on the MLP")))

MODES = {"quick": QUICK, "full": FULL, "table1": TABLE1}


def complete_backend(budget: Budget) -> str:
    """The complete verifier a budget asks for: ``auto`` is α,β-CROWN when a checkout is named, else NeuralSAT."""
    if budget.complete != "auto":
        return budget.complete
    return "abcrown" if os.environ.get("ABCROWN_PATH") or os.environ.get("ABCROWN") else "neuralsat"


#: fields added after the first runs, with the value every earlier mode had (left out of fingerprints there)
_LATER_DEFAULTS: dict[str, object] = {"verify_on": "eran", "complete": "neuralsat", "sweep": ()}


def fingerprint_fields(obj: object) -> dict[str, object]:
    """``obj``'s fields for a settings key, without later-added fields at their old default (see module doc)."""
    d = asdict(obj)  # type: ignore[call-overload]
    # lirpa_method: "crown" was every earlier Budget's, None every earlier NetJob's
    old = _LATER_DEFAULTS | {"lirpa_method": "crown" if isinstance(obj, Budget) else None}
    return {k: v for k, v in d.items() if not (k in old and v == old[k])}


def settings_key(*parts: object) -> str:
    """A short stable hash of settings (dataclasses or plain values): the cache key of a trained net."""
    def plain(p: object) -> object:
        return asdict(p) if hasattr(p, "__dataclass_fields__") else p  # type: ignore[call-overload]

    text = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
