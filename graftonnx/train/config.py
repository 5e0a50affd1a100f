"""Every training setting in one frozen dataclass, recorded with the results.

Why one object: ``finetune`` and ``train`` share the loop, a resumed run must check it
continues the *same* run, and a results JSON must say exactly how a model was made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..device import device_knob
from ..errors import BadInput
from ..settings import Settings, above, at_least, fingerprint_dict, knob, knobs, stage, within

__all__ = ["TrainConfig", "RUNTIME_FIELDS"]


def _below_one(v: float) -> str | None:
    return None if 0 <= v < 1 else "must be in [0, 1)"


def _lo_hi(v: tuple[float, float]) -> str | None:
    return None if v[0] <= v[1] else "needs LO ≤ HI"


@stage("train")
@dataclass(frozen=True)
class TrainConfig(Settings):
    """FAT (FGSM-RS) + GradAlign training with SGD, momentum and a cosine schedule (the ``train`` stage).

    ``eps`` is on the raw pixel scale (0 = clean training).  ``graft_lr`` defaults to
    10× ``lr`` (the paper tunes slopes/intercepts faster than weights) and grafted
    parameters get no weight decay.  ``slope_range`` clamps grafted slopes after every
    step.  The best epoch is chosen on a held-out ``val_fraction`` by PGD robust accuracy
    (``val_steps`` × ``val_restarts``), or by clean accuracy when ``eps`` is 0.
    """

    epochs: int = knob(10, "Training epochs.", check=at_least(1))
    batch_size: int = knob(128, "Training batch size.", check=at_least(1))
    lr: float = knob(0.01, "Learning rate of the weights.", check=at_least(0))
    graft_lr: float | None = knob(None, "Learning rate of grafted a, b. Default: 10 × --lr.", check=at_least(0))
    momentum: float = knob(0.9, "SGD momentum.", check=_below_one)
    weight_decay: float = knob(5e-4, "Weight decay of the weights (grafted a, b get none).", check=at_least(0))
    eps: float = knob(0.0, "L∞ training radius on the raw pixel scale (0 = clean training).", check=at_least(0))
    fgsm_step: float | None = knob(None, "FGSM step. Default: 1.25 × --eps.", check=at_least(0))
    grad_align: float = knob(0.2, "GradAlign regulariser weight (0 = plain FGSM-RS training).", check=at_least(0))
    freeze_weights: bool = knob(False, "Train only the grafted slopes and intercepts.")
    slope_range: tuple[float, float] = knob((0.0, 1.0), "Clamp grafted slopes to [LO, HI] after every step.",
                                            check=_lo_hi, metavar="LO HI")
    val_fraction: float = knob(0.1, "Held-out share of --data for choosing the best epoch (by PGD robust "
                                    "accuracy).", check=_below_one)
    val_steps: int = knob(10, "PGD steps of the per-epoch validation attack.", check=at_least(0))
    val_restarts: int = knob(1, "PGD restarts of the per-epoch validation attack.", check=at_least(1))
    teacher: str | None = knob(None, "Distil from this network (usually the original ONNX before grafting): match "
                                     "its temperature-scaled logits on clean and adversarial inputs; labels are not "
                                     "needed. In a zoo manifest, 'original' names the entry's own model.",
                               metavar="ONNX", added=True)
    temperature: float = knob(4.0, "Softmax temperature of the --teacher KL loss.", check=above(0), added=True)
    teacher_hard: float = knob(0.5, "With --teacher: share h of the loss that is cross-entropy at the adversarial "
                                    "input against the teacher's top-1; 1 − h is the KL (0 = soft targets only).",
                               check=within(0, 1), added=True)
    crop_pad: int = knob(0, "Augment: zero-pad images by this many pixels and crop back at a random offset "
                            "(0 = off; 4 suits CIFAR, 2 MNIST).", check=at_least(0), added=True)
    flip: bool = knob(False, "Augment: random horizontal flips (natural images only; wrong for digits).", added=True)
    noise: bool = knob(False, "Augment: add uniform noise within ±eps to every training image.", added=True)
    rs_weight: float = knob(0.0, "Weight of the ReLU-stability loss (Xiao et al. 2019) on interval bounds of the "
                                 "remaining ReLUs over the eps-ball (0 = off).", check=at_least(0), added=True)
    ibp_weight: float = knob(0.0, "Weight of the IBP certified-training loss (cross-entropy of the worst-case "
                                  "logits over the eps-ball, 0 = off).", check=at_least(0), added=True)
    bound_warmup: int = knob(0, "Epochs over which the radius of the RS and IBP terms grows linearly from 0 to "
                                "--eps (0 = full radius from the first step).", check=at_least(0), added=True)
    seed: int = knob(0, "Random seed (random selection, synthetic inputs, training, export order).")
    device: str = device_knob()
    checkpoint: str | None = knob(None, "Write a checkpoint here after every epoch.", runtime=True, metavar="PATH")
    resume: bool = knob(False, "Continue the run saved in --checkpoint.", runtime=True)
    progress: bool = knob(True, "Show a progress bar.", runtime=True)
    epochs_run_limit: int | None = knob(None, "Stop after this many epochs in this process.", runtime=True,
                                        cli=False)

    def cross_check(self) -> None:
        if self.resume and not self.checkpoint:
            raise BadInput("--resume needs --checkpoint PATH to resume from")
        if self.bound_warmup > self.epochs:
            raise BadInput(f"--bound-warmup {self.bound_warmup} exceeds --epochs {self.epochs}: the RS/IBP radius "
                           "would never reach eps; lower it or train longer")
        super().cross_check()

    @property
    def graft_learning_rate(self) -> float:
        return 10.0 * self.lr if self.graft_lr is None else self.graft_lr

    @property
    def uses_bounds(self) -> bool:
        """Whether a loss term needs differentiable interval bounds (RS or IBP)."""
        return self.rs_weight > 0 or self.ibp_weight > 0

    @property
    def fgsm_alpha(self) -> float:
        return 1.25 * self.eps if self.fgsm_step is None else self.fgsm_step

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["slope_range"] = list(self.slope_range)
        d["graft_lr_effective"] = self.graft_learning_rate
        d["fgsm_step_effective"] = self.fgsm_alpha
        return d

    def result_fields(self) -> dict[str, Any]:
        """The settings that determine the result (what a resumed run must match); knobs added later are left
        out while at their default, so checkpoints and cached networks made before them still match."""
        keep = fingerprint_dict(self)
        return {f.name: self.to_dict()[f.name] for f in fields(self) if f.name not in RUNTIME_FIELDS and f.name in keep}


#: Fields that do not change the result: a resumed run may differ in these only.
RUNTIME_FIELDS = frozenset(f.name for f, k in knobs(TrainConfig) if k.runtime)
