"""What the Table-1 benchmark runs, as frozen settings: one ``Budget`` per mode and one ``NetJob`` per row set.

Why settings objects and not flags: ``--quick`` (CI, minutes) and ``--full`` (≤ 2 hours on
2 CPU cores) must run *the same code* with different sizes, every number in
docs/results.md must be traceable to one committed configuration, and cached networks
are keyed by the settings that made them (a changed setting can never reuse a stale net).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

__all__ = ["Budget", "NetJob", "Mode", "MODES", "CRITERIA", "CIFAR_MEAN", "CIFAR_STD", "settings_key"]

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


@dataclass(frozen=True)
class NetJob:
    """One network and the rows built from it.

    ``source``: ``train:<arch>`` (trained here on mnist5k) or ``shared:<name>`` (a VNN-COMP
    net from ../shared/models).  ``criteria`` × ``ratios`` are grafted and (unless
    ``finetune`` is False) finetuned; ``extra`` adds single (criterion, ratio, init[, schedule]) rows.
    ``nsat`` names the (criterion, ratio) rows NeuralSAT runs on, ``("baseline", 0)`` included.
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
    nsat: tuple[tuple[str, float], ...] = ()
    nsat_instances: int | None = None  # overrides Budget.n_nsat for this job
    lirpa_instances: int | None = None  # overrides Budget.n_lirpa for this job
    schedule: str = "total"  # λ schedule of combined/prune rows; graftonnx's default is "target" (selection.md)
    note: str = ""


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

MODES = {"quick": QUICK, "full": FULL}


def settings_key(*parts: object) -> str:
    """A short stable hash of settings (dataclasses or plain values): the cache key of a trained net."""
    def plain(p: object) -> object:
        return asdict(p) if hasattr(p, "__dataclass_fields__") else p  # type: ignore[call-overload]

    text = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
