"""The graft plan: which neurons of which ReLU sites become which lines.

Why a file: a plan is the reviewable, editable contract between scoring and the
rewrite.  ``graftonnx plan`` writes it, a person may edit it, ``graftonnx graft --plan``
applies it; a plan saved and loaded again is the same object (JSON round trip).
Indices count neurons row-major over the site's per-image shape, or channels (the
first per-image axis) when ``granularity == "channel"``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from ..errors import BadInput
from ..model.info import ModelInfo
from ..settings import to_dict
from .settings import GraftSettings

__all__ = ["LayerPlan", "Provenance", "GraftPlan", "PLAN_FORMAT", "GRANULARITIES", "PLAN_GRANULARITIES",
           "site_granularity"]

PLAN_FORMAT = "graftonnx-plan"
PLAN_VERSION = 1
GRANULARITIES = ("neuron", "channel")
#: What a plan request may ask for: ``auto`` = channels on conv feature maps (they have a
#: verifier-ready Conv form, rewrite/native.py), neurons on flat sites.
PLAN_GRANULARITIES = (*GRANULARITIES, "auto")


def site_granularity(requested: str, shape: tuple[int, ...]) -> str:
    """The unit of one site under a requested granularity (``auto``: channel on feature maps, else neuron)."""
    if requested == "auto":
        return "channel" if len(shape) > 1 else "neuron"
    return requested


@dataclass(frozen=True)
class LayerPlan:
    """The grafted units of one ReLU site with their initial slope ``a`` and intercept ``b``.

    ``fixed`` marks lines that must not be trained (the pruning baseline: a = b = 0).
    """

    site: str
    granularity: str
    indices: tuple[int, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]
    fixed: bool = False

    @property
    def count(self) -> int:
        return len(self.indices)

    def units(self, shape: tuple[int, ...]) -> int:
        """How many units (neurons or channels) the site has under this granularity."""
        return int(shape[0]) if self.granularity == "channel" else int(math.prod(shape))


@dataclass(frozen=True)
class Provenance:
    """Where a plan came from; recorded in the grafted model's metadata too.

    Stored flat (JSON): the four keys below plus every knob of the :class:`GraftSettings`
    that made the plan, so a new knob is recorded without touching this class.
    """

    model: str = ""
    dataset: str = ""
    tool_version: str = ""
    #: what ``ratio`` is a fraction of: "neurons" (every granularity; channels weigh their positions)
    ratio_counts: str = ""
    settings: GraftSettings | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"model": self.model, "dataset": self.dataset, "tool_version": self.tool_version,
                             "ratio_counts": self.ratio_counts}
        if self.settings is not None:
            d |= to_dict(self.settings) | {"init": self.settings.line}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> Provenance:
        if not isinstance(d, dict):
            raise BadInput(f"{where}: provenance must be a mapping, got {d!r}")
        own = {k: d.get(k, "") for k in ("model", "dataset", "tool_version", "ratio_counts")}
        rest = {k: v for k, v in d.items() if k not in own and v not in (None, "")}
        known = {f.name for f in fields(GraftSettings)}
        unknown = sorted(set(rest) - known)
        if unknown:
            raise BadInput(f"{where}: unknown provenance key {unknown[0]!r}; known: {', '.join(sorted(known))}")
        try:
            settings = GraftSettings(**rest) if rest else None
        except BadInput as exc:
            raise BadInput(f"{where}: provenance {exc.message}") from None
        return cls(**{k: str(v) for k, v in own.items()}, settings=settings)


@dataclass(frozen=True)
class GraftPlan:
    """A whole plan: one :class:`LayerPlan` per touched site, plus provenance."""

    layers: tuple[LayerPlan, ...]
    provenance: Provenance = field(default_factory=Provenance)

    @property
    def total(self) -> int:
        """Grafted units in total (neurons, or channels for channel plans)."""
        return sum(lp.count for lp in self.layers)

    def layer(self, site: str) -> LayerPlan | None:
        return next((lp for lp in self.layers if lp.site == site), None)

    def grafted_neurons(self, info: ModelInfo) -> int:
        """Grafted *neurons* (a channel counts for all its positions)."""
        n = 0
        for lp in self.layers:
            site = info.site(lp.site)
            n += lp.count * (site.per_channel if lp.granularity == "channel" else 1)
        return n

    # --- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "provenance": self.provenance.to_dict(),
                "layers": [asdict(lp) | {"indices": list(lp.indices), "a": list(lp.a), "b": list(lp.b)}
                           for lp in self.layers]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "plan") -> GraftPlan:
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise BadInput(f"{where} is not a graftonnx plan (missing \"format\": \"{PLAN_FORMAT}\")")
        if d.get("version") != PLAN_VERSION:
            raise BadInput(f"{where} has plan version {d.get('version')!r}; "
                           f"this graftonnx reads version {PLAN_VERSION}")
        prov = Provenance.from_dict(d.get("provenance", {}), where)
        try:
            layers = tuple(
                LayerPlan(site=str(ld["site"]), granularity=str(ld.get("granularity", "neuron")),
                          indices=tuple(int(i) for i in ld["indices"]), a=tuple(float(v) for v in ld["a"]),
                          b=tuple(float(v) for v in ld["b"]), fixed=bool(ld.get("fixed", False)))
                for ld in d["layers"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInput(f"{where} is malformed ({type(exc).__name__}: {exc}): "
                           "each layer needs site, granularity, indices, a, b") from None
        return cls(layers, prov)

    @classmethod
    def from_json(cls, text: str, where: str = "plan") -> GraftPlan:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
        return cls.from_dict(d, where)

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GraftPlan:
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"plan file {p} not found: write one with `graftonnx plan` first")
        return cls.from_json(p.read_text(), where=f"plan {p}")

    # --- validation ---------------------------------------------------------------------
    def validate(self, info: ModelInfo) -> GraftPlan:
        """Check the plan fits ``info``; raise BadInput naming the first problem."""
        names = {s.name for s in info.relus}
        seen: set[str] = set()
        for lp in self.layers:
            where = f"plan layer {lp.site!r}"
            if lp.site not in names:
                raise BadInput(f"{where}: no Relu node of that name in the model; sites are {', '.join(sorted(names))}")
            if lp.site in seen:
                raise BadInput(f"{where} appears twice: merge its indices into one entry")
            seen.add(lp.site)
            if lp.granularity not in GRANULARITIES:
                raise BadInput(f"{where}: granularity {lp.granularity!r} must be neuron or channel")
            units = lp.units(info.site(lp.site).shape)
            if len(set(lp.indices)) != len(lp.indices):
                raise BadInput(f"{where}: indices repeat; each unit may be grafted once")
            bad = [i for i in lp.indices if not 0 <= i < units]
            if bad:
                raise BadInput(f"{where}: index {bad[0]} is outside 0..{units - 1} ({lp.granularity}s of the site)")
            if not len(lp.a) == len(lp.b) == len(lp.indices):
                raise BadInput(f"{where}: a, b and indices must have the same length "
                               f"({len(lp.a)}, {len(lp.b)}, {len(lp.indices)})")
            if not all(math.isfinite(v) for v in lp.a + lp.b):
                raise BadInput(f"{where}: a and b must be finite numbers")
        return self
