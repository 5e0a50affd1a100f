"""Per-neuron scores of every ReLU site, saved and reloaded as JSON.

``graftonnx score`` writes a ScoreTable; ``graftonnx plan`` reads it, so the (slow)
bounding and the (fast, tweakable) selection can be run separately.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text
from ..errors import BadInput

__all__ = ["SiteScore", "ScoreTable", "SCORES_FORMAT"]

SCORES_FORMAT = "graftonnx-scores"


@dataclass(frozen=True, eq=False)
class SiteScore:
    """Scores of one site, flat over its per-image shape (row-major)."""

    site: str
    shape: tuple[int, ...]
    instability: np.ndarray
    significance: np.ndarray
    unr: float

    def per_channel(self) -> tuple[np.ndarray, np.ndarray]:
        """(instability, significance) averaged over each channel's positions."""
        c = int(self.shape[0]) if self.shape else 1
        return self.instability.reshape(c, -1).mean(axis=1), self.significance.reshape(c, -1).mean(axis=1)


@dataclass(frozen=True, eq=False)
class ScoreTable:
    """Scores for all sites plus the settings that produced them."""

    sites: tuple[SiteScore, ...]
    eps: float
    bound: str
    significance: str
    n_images: int
    dataset: str
    model: str = ""

    @property
    def unr(self) -> float:
        """Mean unstable neurons per image over the whole network."""
        return float(sum(s.unr for s in self.sites))

    def site(self, name: str) -> SiteScore:
        for s in self.sites:
            if s.site == name:
                return s
        raise KeyError(name)

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "eps": self.eps, "bound": self.bound, "significance": self.significance,
                "n_images": self.n_images, "dataset": self.dataset, "unr_total": round(self.unr, 4),
                "unr_per_layer": {s.site: round(s.unr, 4) for s in self.sites},
                "neurons_per_layer": {s.site: int(s.instability.size) for s in self.sites}}

    def to_dict(self) -> dict[str, Any]:
        d = self.summary() | {"format": SCORES_FORMAT}
        d["sites"] = [{"site": s.site, "shape": list(s.shape), "unr": s.unr,
                       "instability": np.round(s.instability, 6).tolist(),
                       "significance": s.significance.astype(float).tolist()} for s in self.sites]
        return d

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ScoreTable:
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"scores file {p} not found: write one with `graftonnx score`")
        try:
            d = json.loads(p.read_text())
            if d.get("format") != SCORES_FORMAT:
                raise ValueError("not a graftonnx scores file")
            sites = tuple(SiteScore(s["site"], tuple(s["shape"]), np.asarray(s["instability"], np.float64),
                                    np.asarray(s["significance"], np.float64), float(s["unr"])) for s in d["sites"])
            return cls(sites, float(d["eps"]), d["bound"], d["significance"], int(d["n_images"]),
                       d["dataset"], d.get("model", ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"scores file {p} is not a graftonnx scores file ({exc})") from None
