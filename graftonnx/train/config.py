"""Every training setting in one frozen dataclass, recorded with the results.

Why one object: ``finetune`` and ``train`` share the loop, a resumed run must check it
continues the *same* run, and a results JSON must say exactly how a model was made.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import BadInput

__all__ = ["TrainConfig", "RUNTIME_FIELDS"]

#: Fields that do not change the result: a resumed run may differ in these only.
RUNTIME_FIELDS = frozenset({"checkpoint", "resume", "progress", "epochs_run_limit"})


@dataclass(frozen=True)
class TrainConfig:
    """FAT (FGSM-RS) + GradAlign training with SGD, momentum and a cosine schedule.

    ``eps`` is on the raw pixel scale (0 = clean training).  ``graft_lr`` defaults to
    10× ``lr`` (the paper tunes slopes/intercepts faster than weights) and grafted
    parameters get no weight decay.  ``slope_range`` clamps grafted slopes after every
    step.  The best epoch is chosen on a held-out ``val_fraction`` by PGD robust accuracy
    (``val_steps`` × ``val_restarts``), or by clean accuracy when ``eps`` is 0.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.01
    graft_lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    eps: float = 0.0
    fgsm_step: float | None = None
    grad_align: float = 0.2
    freeze_weights: bool = False
    slope_range: tuple[float, float] = (0.0, 1.0)
    val_fraction: float = 0.1
    val_steps: int = 10
    val_restarts: int = 1
    seed: int = 0
    checkpoint: str | None = None
    resume: bool = False
    progress: bool = True
    epochs_run_limit: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def graft_learning_rate(self) -> float:
        return 10.0 * self.lr if self.graft_lr is None else self.graft_lr

    @property
    def fgsm_alpha(self) -> float:
        return 1.25 * self.eps if self.fgsm_step is None else self.fgsm_step

    def validate(self) -> None:
        """Reject impossible settings with the flag to fix (BadInput)."""
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.lr >= 0 and math.isfinite(self.lr), f"--lr must be a finite number ≥ 0, got {self.lr}"),
            (self.graft_lr is None or self.graft_lr >= 0, f"--graft-lr must be ≥ 0, got {self.graft_lr}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"--weight-decay must be ≥ 0, got {self.weight_decay}"),
            (self.eps >= 0 and math.isfinite(self.eps), f"--eps must be a finite number ≥ 0, got {self.eps}"),
            (self.grad_align >= 0, f"--grad-align must be ≥ 0, got {self.grad_align}"),
            (self.slope_range[0] <= self.slope_range[1],
             f"--slope-range LO HI needs LO ≤ HI, got {self.slope_range[0]} {self.slope_range[1]}"),
            (0 <= self.val_fraction < 1, f"--val-fraction must be in [0, 1), got {self.val_fraction}"),
            (self.val_steps >= 0 and self.val_restarts >= 1,
             "--val-steps must be ≥ 0 and --val-restarts ≥ 1"),
            (not self.resume or self.checkpoint, "--resume needs --checkpoint PATH to resume from"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInput(message)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["slope_range"] = list(self.slope_range)
        d["graft_lr_effective"] = self.graft_learning_rate
        d["fgsm_step_effective"] = self.fgsm_alpha
        return d

    def result_fields(self) -> dict[str, Any]:
        """The settings that determine the result (what a resumed run must match)."""
        return {f.name: self.to_dict()[f.name] for f in fields(self) if f.name not in RUNTIME_FIELDS}
