"""From scores to a GraftPlan: restrict layers, select units, attach initial lines.

Sigmoid/Tanh sites always start as their least-squares line over the observed
pre-activations (:func:`graftonnx.planning.init.fit_smooth_lines`, the paper's appendix),
whatever ``--init`` says for Relu sites, except ``zero`` (the pruning baseline).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import BadInput
from ..model.info import ModelInfo
from ..scoring.table import ScoreTable
from .init import INITS, fit_smooth_lines
from .plan import GraftPlan, LayerPlan, Provenance, site_granularity
from .select import select_units
from .settings import GraftSettings

__all__ = ["resolve_layers", "make_plan", "check_count", "needs_activations"]


def needs_activations(info: ModelInfo, settings: GraftSettings) -> bool:
    """Whether the initial lines need observed pre-activations: ``--init fit``, or a smooth site to fit."""
    return settings.line == "fit" or (bool(info.smooth) and settings.line != "zero")


def _smooth_line(z: np.ndarray | None, op: str) -> tuple[np.ndarray, np.ndarray]:
    if z is None:
        raise BadInput("a Sigmoid/Tanh site is grafted as its least-squares line: pass --data to observe it")
    return fit_smooth_lines(z, op)


def resolve_layers(info: ModelInfo, layers: Sequence[str] | None) -> list[str]:
    """Site names from names or indices (as ``inspect`` numbers them); all sites when None."""
    if not layers:
        return [s.name for s in info.sites]
    names = [s.name for s in info.sites]
    out: list[str] = []
    for item in layers:
        item = item.strip()
        if item in names:
            out.append(item)
        elif item.lstrip("-").isdigit() and -len(names) <= int(item) < len(names):
            out.append(names[int(item)])
        else:
            raise BadInput(f"--layers {item!r} is neither a ReLU (or Sigmoid/Tanh) site name nor an index "
                           f"0..{len(names) - 1}; "
                           "see `graftonnx inspect`")
    return list(dict.fromkeys(out))


def _site_units(info: ModelInfo, settings: GraftSettings) -> dict[str, int]:
    """Units (channels or neurons, by granularity) of each chosen site, in site order."""
    out = {}
    for name in resolve_layers(info, settings.layers):
        site = info.site(name)
        gran = site_granularity(settings.granularity, site.shape)
        out[name] = site.channels if gran == "channel" else site.size
    return out


def check_count(info: ModelInfo, settings: GraftSettings) -> None:
    """Refuse a ``--count`` above the units it picks from, before any scoring is done.

    Why an error and not a cap: capping grafted everything while the plan's provenance
    recorded the impossible count, so the run could not be reproduced from its record.
    ``global`` scope picks from all chosen sites together, ``per-layer`` from each site.
    """
    if settings.count is None:
        return
    units = _site_units(info, settings)
    if settings.scope == "per-layer":
        name = min(units, key=lambda n: units[n])
        avail, where = units[name], f"layer {name!r} (--scope per-layer counts per layer)"
    else:
        avail, where = sum(units.values()), "the chosen layers"
    if settings.count > avail:
        raise BadInput(f"--count {settings.count} is more than the {avail} units of {where}: "
                       f"use at most {avail}, or --ratio 1 to graft them all")


def make_plan(table: ScoreTable, info: ModelInfo, settings: GraftSettings,
              activations: dict[str, np.ndarray] | None = None, provenance: Provenance | None = None) -> GraftPlan:
    """Choose units by ``settings`` over its ``layers`` (default all) and give them initial lines.

    ``activations`` (site → (N, size) pre-activations on the data) is needed when the line
    rule is ``fit``.  The selection policy may impose its own line (``prune``: a = b = 0,
    fixed).  ``granularity`` ``auto`` grafts channels of conv feature maps and neurons of
    flat sites; a ``ratio`` is a fraction of neurons whatever the units are.
    """
    init_fn, fixed = INITS.get(settings.line), settings.policy.fixed
    if needs_activations(info, settings) and activations is None:
        what = "--init fit" if settings.line == "fit" else f"the {len(info.smooth)} Sigmoid/Tanh site(s)"
        raise BadInput(f"{what} needs observed pre-activations for the initial lines: pass activations (the "
                       "CLI and graftonnx.plan take them from --data)")
    check_count(info, settings)
    names = resolve_layers(info, settings.layers)
    grans = [site_granularity(settings.granularity, info.site(n).shape) for n in names]
    pairs, weights = [], []
    for name, gran in zip(names, grans, strict=True):
        s, site = table.site(name), info.site(name)
        pairs.append(s.per_channel() if gran == "channel" else (s.instability, s.significance))
        weights.append(np.full(pairs[-1][0].size, site.per_channel if gran == "channel" else 1))
    chosen = select_units([p[0] for p in pairs], [p[1] for p in pairs], settings, weights)
    out = []
    for name, gran, idx in zip(names, grans, chosen, strict=True):
        if idx.size == 0:
            continue
        site = info.site(name)
        units = site.channels if gran == "channel" else site.size
        z = None
        if activations is not None:
            zs = activations[name].reshape(-1, units, site.size // units)
            z = zs[:, idx, :]
        a, b = _smooth_line(z, site.op) if site.smooth and settings.line != "zero" else init_fn(z, idx.size)
        out.append(LayerPlan(name, gran, tuple(int(i) for i in idx), tuple(float(v) for v in a),
                             tuple(float(v) for v in b), fixed=fixed))
    return GraftPlan(tuple(out), provenance or Provenance(settings=settings))
