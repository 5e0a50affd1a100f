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
           "site_granularity", "F32_MAX", "float32_problem", "check_float32"]

PLAN_FORMAT = "graftonnx-plan"
PLAN_VERSION = 1
GRANULARITIES = ("neuron", "channel")
#: What a plan request may ask for: ``auto`` = channels on conv feature maps (they have a
#: verifier-ready Conv form, rewrite/native.py), neurons on flat sites.
PLAN_GRANULARITIES = (*GRANULARITIES, "auto")
#: The largest finite float32 (graft constants are float32 initialisers).
F32_MAX = 3.4028234663852886e38


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
    #: where the plan was read from ("plan p.json"), for error messages; not part of its value
    source: str = field(default="", compare=False, repr=False)

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
        """Parse strictly: a plan is edited by hand, so a typo must not become a different graft."""
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise BadInput(f"{where} is not a graftonnx plan (missing \"format\": \"{PLAN_FORMAT}\")")
        if d.get("version") != PLAN_VERSION:
            raise BadInput(f"{where} has plan version {d.get('version')!r}; "
                           f"this graftonnx reads version {PLAN_VERSION}")
        _known_keys(d, _PLAN_KEYS, f"{where}:", "top-level")
        prov = Provenance.from_dict(d.get("provenance", {}), where)
        raw = d.get("layers")
        if not isinstance(raw, list):
            raise BadInput(f"{where}: \"layers\" must be a list of layer entries, got {_short(raw)}")
        layers = tuple(_layer_from_dict(ld, n, where) for n, ld in enumerate(raw))
        sites: dict[str, int] = {}
        for n, lp in enumerate(layers):
            if lp.site in sites:
                raise BadInput(f"{where}: layers[{n}] ({lp.site!r}) repeats the site of layers[{sites[lp.site]}]: "
                               "merge their indices into one entry")
            sites[lp.site] = n
        return cls(layers, prov, source=where)

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
        """Check the plan fits ``info``; raise BadInput naming the first problem.

        Also run on plans built in Python (which never went through :meth:`from_dict`),
        so the value checks are repeated here, not only at parse time.
        """
        names = {s.name for s in info.sites}
        seen: set[str] = set()
        src = f"{self.source}: " if self.source else ""
        for n, lp in enumerate(self.layers):
            where = f"{src}plan layer {lp.site!r}" if not src else f"{src}layers[{n}] ({lp.site!r})"
            if lp.site not in names:
                raise BadInput(f"{where}: no Relu node (nor Sigmoid/Tanh) of that name in the model; sites are "
                               f"{', '.join(sorted(names))}")
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
            check_float32(lp, where)
        return self


def float32_problem(value: float) -> str | None:
    """Why ``value`` cannot be a float32 graft constant (NaN, ±inf, overflow), or None.

    Why float32: the rewrite stores ``a``/``b`` as float32 initialisers, and 1e39 is a
    finite JSON number that silently becomes ``inf`` there.
    """
    v = float(value)
    if math.isnan(v):
        return "is NaN"
    if math.isinf(v):
        return "is infinite"
    if abs(v) > F32_MAX:
        return "overflows float32"
    return None


def check_float32(lp: LayerPlan, where: str) -> None:
    """BadInput naming the site, unit and value when some ``a``/``b`` of ``lp`` is not a finite float32."""
    for key, values in (("a", lp.a), ("b", lp.b)):
        for k, v in enumerate(values):
            problem = float32_problem(v)
            if problem:
                unit = f"{lp.granularity} {lp.indices[k]}" if k < len(lp.indices) else f"entry {k}"
                raise BadInput(f"{where} {key}[{k}] ({unit}) = {float(v):g} {problem}: "
                               f"use a finite |{key}| < 3.4e38")


_PLAN_KEYS = ("format", "version", "provenance", "layers")
_LAYER_KEYS = ("site", "granularity", "indices", "a", "b", "fixed")


def _short(value: object) -> str:
    """``value`` for an error message, cut short (a plan may hold thousands of numbers)."""
    text = json.dumps(value) if isinstance(value, (str, bool, int, float, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _known_keys(d: dict[str, Any], known: tuple[str, ...], where: str, what: str) -> None:
    unknown = [k for k in d if k not in known]
    if unknown:
        raise BadInput(f"{where} unknown {what} key {unknown[0]!r}; known keys: {', '.join(known)}")


def _layer_from_dict(ld: object, n: int, where: str) -> LayerPlan:
    """One layer entry, checked field by field; every message carries ``layers[n]`` and the site."""
    if not isinstance(ld, dict):
        raise BadInput(f"{where}: layers[{n}] must be a mapping with site, indices, a, b, got {_short(ld)}")
    site = ld.get("site")
    if not isinstance(site, str) or not site:
        raise BadInput(f"{where}: layers[{n}] \"site\" must be the name of a Relu node, got {_short(site)}")
    at = f"{where}: layers[{n}] ({site!r})"
    _known_keys(ld, _LAYER_KEYS, at, "layer")
    for key in ("indices", "a", "b"):
        if not isinstance(ld.get(key), list):
            raise BadInput(f"{at} {key!r} must be a list, got {_short(ld.get(key))}")
    gran = ld.get("granularity", "neuron")
    if gran not in GRANULARITIES:
        raise BadInput(f"{at} granularity {_short(gran)} must be \"neuron\" or \"channel\"")
    fixed = ld.get("fixed", False)
    if not isinstance(fixed, bool):
        raise BadInput(f"{at} fixed = {_short(fixed)} must be true or false")
    indices = ld["indices"]
    first: dict[int, int] = {}
    for k, i in enumerate(indices):
        if type(i) is not int:
            raise BadInput(f"{at} indices[{k}] = {_short(i)} is not an integer: write whole unit numbers like 3")
        if i < 0:
            raise BadInput(f"{at} indices[{k}] = {i} is negative: units count from 0")
        if i in first:
            raise BadInput(f"{at} indices[{k}] = {i} repeats indices[{first[i]}]: each unit may be grafted once")
        first[i] = k
    for key in ("a", "b"):
        for k, v in enumerate(ld[key]):
            if type(v) not in (int, float):
                raise BadInput(f"{at} {key}[{k}] = {_short(v)} is not a number: write a decimal like 0.5")
        if len(ld[key]) != len(indices):
            raise BadInput(f"{at} has {len(ld[key])} {key} values for {len(indices)} indices: give one per index")
    lp = LayerPlan(site, gran, tuple(indices), tuple(float(v) for v in ld["a"]), tuple(float(v) for v in ld["b"]),
                   fixed)
    check_float32(lp, at)
    return lp
