"""Per-neuron scores of every ReLU site, saved and reloaded as JSON.

``graftonnx score`` writes a ScoreTable; ``graftonnx plan`` reads it, so the (slow)
bounding and the (fast, tweakable) selection can be run separately.
"""

from __future__ import annotations

import json
import math
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
        """Read a table strictly: a hand-edited or truncated table must not steer the selection silently."""
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"scores file {p} not found: write one with `graftonnx score`")
        where = f"scores file {p}"
        try:
            d = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadInput(f"{where} is not valid JSON ({exc}): write it again with `graftonnx score`") from None
        if not isinstance(d, dict) or d.get("format") != SCORES_FORMAT:
            raise BadInput(f"{where} is not a graftonnx scores file (missing \"format\": \"{SCORES_FORMAT}\")")
        raw = d.get("sites")
        if not isinstance(raw, list):
            raise BadInput(f"{where}: \"sites\" must be a list of site entries")
        sites = tuple(_site_from_dict(s, n, where) for n, s in enumerate(raw))
        first: dict[str, int] = {}
        for n, s in enumerate(sites):
            if s.site in first:
                raise BadInput(f"{where}: sites[{n}] ({s.site!r}) repeats sites[{first[s.site]}]: one entry per site")
            first[s.site] = n
        n_images = d.get("n_images")
        if type(n_images) is not int or n_images < 0:
            raise BadInput(f"{where}: n_images = {n_images!r} must be a whole number >= 0")
        for key in ("bound", "significance", "dataset"):
            if not isinstance(d.get(key), str):
                raise BadInput(f"{where}: {key!r} must be a string, got {d.get(key)!r}")
        model = d.get("model", "")
        if not isinstance(model, str):
            raise BadInput(f"{where}: 'model' must be a string, got {model!r}")
        return cls(sites, _number(d.get("eps"), f"{where}: eps"), d["bound"], d["significance"], n_images,
                   d["dataset"], model)


def _number(v: object, what: str) -> float:
    """A finite JSON number (not a bool, not a string), or BadInput naming ``what``."""
    if type(v) not in (int, float) or not math.isfinite(v):  # type: ignore[arg-type]
        raise BadInput(f"{what} = {v!r} must be a finite number")
    return float(v)  # type: ignore[arg-type]


def _array(v: object, size: int, what: str) -> np.ndarray:
    """A flat list of ``size`` finite numbers, or BadInput with the path of the first bad element."""
    if not isinstance(v, list):
        raise BadInput(f"{what} must be a list of numbers, got {type(v).__name__}")
    if len(v) != size:
        raise BadInput(f"{what} has {len(v)} values but the site's shape has {size} neurons: "
                       "write the table again with `graftonnx score`")
    for k, x in enumerate(v):
        if type(x) not in (int, float) or not math.isfinite(x):
            raise BadInput(f"{what}[{k}] = {x!r} must be a finite number")
    return np.asarray(v, np.float64)


def _site_from_dict(s: object, n: int, where: str) -> SiteScore:
    if not isinstance(s, dict):
        raise BadInput(f"{where}: sites[{n}] must be a mapping with site, shape, unr, instability, significance")
    name = s.get("site")
    if not isinstance(name, str) or not name:
        raise BadInput(f"{where}: sites[{n}] 'site' must be a Relu node name, got {name!r}")
    at = f"{where}: sites[{n}] ({name!r})"
    unknown = sorted(set(s) - {"site", "shape", "unr", "instability", "significance"})
    if unknown:
        raise BadInput(f"{at} unknown key {unknown[0]!r}; known keys: site, shape, unr, instability, significance")
    shape = s.get("shape")
    if not isinstance(shape, list) or not all(type(x) is int and x > 0 for x in shape):
        raise BadInput(f"{at} shape = {shape!r} must be a list of positive integers")
    size = math.prod(shape)
    return SiteScore(name, tuple(shape), _array(s.get("instability"), size, f"{at} instability"),
                     _array(s.get("significance"), size, f"{at} significance"), _number(s.get("unr"), f"{at} unr"))
