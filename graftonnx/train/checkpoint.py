"""Per-epoch checkpoints and ``--resume``.

Why: adversarial finetuning of a large net takes hours; an interrupted run must be able
to continue from its last finished epoch and end with the same weights as a run that was
never interrupted.  A checkpoint holds the model and optimiser state (momentum buffers),
the epoch history and the best state so far, plus the result-determining settings, so
resuming with different settings is refused instead of silently mixing two runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import atomic_write
from ..errors import BadInput
from .config import TrainConfig

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(cfg: TrainConfig, epochs_done: int, model: nn.Module, opt: torch.optim.Optimizer,
                    history: list[Any], best_state: dict[str, torch.Tensor] | None) -> None:
    """Write the checkpoint atomically (an interruption mid-write keeps the previous epoch's file)."""
    payload = {
        "format": "graftonnx.train.checkpoint/1",
        "config": json.dumps(cfg.result_fields(), sort_keys=True),
        "epochs_done": epochs_done,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "history": json.dumps([asdict(h) for h in history]),
        "best_state": best_state,
    }
    assert cfg.checkpoint is not None
    with atomic_write(cfg.checkpoint, "wb") as fh:
        torch.save(payload, fh)


def load_checkpoint(cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer
                    ) -> tuple[int, list[Any], dict[str, torch.Tensor] | None]:
    """Restore model and optimiser in place; returns (epochs done, history, best state)."""
    from .loop import EpochStats  # local: loop imports this module

    path = Path(str(cfg.checkpoint))
    if not path.is_file():
        raise BadInput(f"checkpoint {path} not found: run without --resume first, or give the right --checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        stored = json.loads(payload["config"])
    except Exception as exc:
        raise BadInput(f"checkpoint {path} is not a graftonnx training checkpoint ({type(exc).__name__})") from None
    # a knob missing on either side (added later, left out at its default) compares as its default
    defaults = json.loads(json.dumps(TrainConfig().to_dict()))
    mine = json.loads(json.dumps(cfg.result_fields()))
    differs = sorted(k for k in set(mine) | set(stored)
                     if mine.get(k, defaults.get(k)) != stored.get(k, defaults.get(k)))
    if differs:
        raise BadInput(f"checkpoint {path} was made with different settings ({', '.join(differs)}): "
                       "resume with the same flags, or start a new run without --resume")
    try:
        model.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise BadInput(f"checkpoint {path} does not fit this model ({type(exc).__name__}): "
                       "resume with the model the run started from") from None
    history = [EpochStats(**h) for h in json.loads(payload["history"])]
    return int(payload["epochs_done"]), history, payload["best_state"]
