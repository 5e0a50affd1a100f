"""The zoo manifest: which models to run and with which settings, parsed into frozen dataclasses.

Why YAML composed by hand (not ``safe_load`` into dicts): a batch over many models is
only as good as its error messages, so every key keeps its line number and a typo or a
wrong type is reported as ``manifest.yaml line 12: models[1] ('resnet') key 'eps': ...``
before any model runs.  Per-model entries override top-level ``defaults`` section by
section; relative paths are relative to the manifest's folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ..data.dataset import DataSpec
from ..errors import BadInput

__all__ = ["DataConfig", "FinetuneConfig", "ExportConfig", "VerifyConfig", "ModelEntry", "Manifest",
           "load_manifest", "manifest_from_folder", "SECTIONS"]


@dataclass(frozen=True)
class DataConfig:
    """Dataset source plus the DataSpec fields (mean/std are normalisation *outside* the graph)."""

    source: str | None = None
    format: str | None = None
    layout: str = "auto"
    scale: str = "auto"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    n: int | None = None
    input_range: tuple[float, float] = (0.0, 1.0)
    labels: str | None = None

    def spec(self, seed: int) -> DataSpec:
        return DataSpec(self.format, self.layout, self.scale, self.mean, self.std, self.n, self.input_range, seed,
                        self.labels)


@dataclass(frozen=True)
class FinetuneConfig:
    """Adversarial finetuning after grafting; ``epochs: 0`` skips the step."""

    epochs: int = 0
    lr: float = 0.01
    batch_size: int = 64


@dataclass(frozen=True)
class ExportConfig:
    """How many properties to export per model, their timeout and which images to skip."""

    instances: int = 10
    timeout: float = 60.0
    skip: str = "misclassified"


@dataclass(frozen=True)
class VerifyConfig:
    """Verifier backend (a key of BACKENDS), lirpa bound method and per-instance timeout."""

    backend: str = "lirpa"
    method: str = "crown"
    timeout: float = 60.0


@dataclass(frozen=True)
class ModelEntry:
    """Everything one model's run depends on; its :meth:`fingerprint` keys the journal."""

    name: str
    path: str
    data: DataConfig = field(default_factory=DataConfig)
    eps: float = 0.02
    ratios: tuple[float, ...] = (0.5,)
    criterion: str = "combined"
    schedule: str = "target"
    init: str = "fit"
    bound: str = "ibp"
    seed: int = 0
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        """A short hash of every setting (not the file's bytes: moving the out folder must not invalidate it)."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest: its entries in run order and where it came from."""

    entries: tuple[ModelEntry, ...]
    source: str


#: Nested sections of an entry and their dataclasses.
SECTIONS: dict[str, type] = {"data": DataConfig, "finetune": FinetuneConfig, "export": ExportConfig,
                             "verify": VerifyConfig}
_TOP = {f.name for f in fields(ModelEntry)} - {"name", "path"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class _Where:
    """Builds 'file line N: models[i] ('name') key 'k'' prefixes for errors."""

    def __init__(self, source: str, lines: dict[tuple[Any, ...], int]) -> None:
        self.source, self.lines = source, lines

    def fail(self, path: tuple[Any, ...], what: str) -> BadInput:
        line = next((self.lines[path[:k]] for k in range(len(path), -1, -1) if path[:k] in self.lines), None)
        where = self.source + (f" line {line}" if line else "")
        scope = ("defaults" if path[0] == "defaults" else f"models[{path[1]}]") if path else "top level"
        key = ".".join(str(p) for p in path[2 if path[:1] == ("models",) else 1:])
        return BadInput(f"{where}: {scope}{f' key {key!r}' if key else ''}: {what}")


def _plain(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    """Python values from a composed YAML node, recording each key's line number under its path."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for k, v in node.value:
            key = str(k.value)
            lines[(*path, key)] = k.start_mark.line + 1
            out[key] = _plain(v, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v, (*path, i), lines) for i, v in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))  # scalars: the usual YAML typing


#: Field → kind: str / str? (may be null) / int0 (>= 0) / int+ / int? / float+ / floats? / range / ratios.
_KINDS = {"source": "str?", "format": "str?", "layout": "str", "scale": "str", "mean": "floats?", "std": "floats?",
          "n": "int?", "input_range": "range", "labels": "str?", "epochs": "int0", "lr": "float+",
          "batch_size": "int+", "instances": "int+", "timeout": "float+", "skip": "str", "backend": "str",
          "method": "str", "eps": "float+", "ratios": "ratios", "criterion": "str", "schedule": "str", "init": "str",
          "bound": "str",
          "seed": "int0"}


def _num(v: Any, kind: type, where: _Where, path: tuple[Any, ...]) -> Any:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and (kind is float or isinstance(v, int))
    if not ok or (kind is float and not math.isfinite(float(v))):
        raise where.fail(path, f"expected {'an integer' if kind is int else 'a finite number'}, got {v!r}")
    return kind(v)


def _convert(cls: type, raw: Any, where: _Where, path: tuple[Any, ...]) -> Any:
    """A dataclass of ``cls`` from a mapping, each value type-checked by :data:`_KINDS`."""
    names = [f.name for f in fields(cls)]
    if not isinstance(raw, dict):
        raise where.fail(path, f"expected a mapping of {', '.join(names)}, got {raw!r}")
    out: dict[str, Any] = {}
    for key, v in raw.items():
        if key not in names:
            raise where.fail((*path, key), f"unknown key: use one of {', '.join(sorted(names))}")
        out[key] = _value(key, v, where, (*path, key))
    return cls(**out)


def _value(key: str, v: Any, where: _Where, path: tuple[Any, ...]) -> Any:
    """Type- and range-check one value by its field's kind."""
    kind = _KINDS[key]
    if v is None and kind.endswith("?"):
        return None
    kind = kind.rstrip("?")
    if kind == "str":
        if key == "scale" and isinstance(v, int) and not isinstance(v, bool):
            v = str(v)  # `scale: 255` reads as a number
        if not isinstance(v, str) or not v.strip():
            raise where.fail(path, f"expected a non-empty string, got {v!r}")
        return v
    if kind in ("floats", "range", "ratios"):
        items = v if isinstance(v, list) else [v]
        vals = tuple(_num(x, float, where, path) for x in items)
        if kind == "range" and (len(vals) != 2 or not vals[0] < vals[1]):
            raise where.fail(path, f"expected two numbers [LO, HI] with LO < HI, got {v!r}")
        if kind == "ratios" and (not vals or any(not 0 < r <= 1 for r in vals)):
            raise where.fail(path, f"expected ratios in (0, 1], e.g. [0.3, 0.5], got {v!r}")
        return vals
    x = _num(v, float if kind == "float+" else int, where, path)
    if (kind == "int0" and x < 0) or (kind != "int0" and x <= 0):
        raise where.fail(path, f"must be {'>= 0' if kind == 'int0' else 'positive'}, got {v!r}")
    return x


_CHOICES = {"criterion": "SELECTORS", "schedule": "SCHEDULES", "init": "INITS", "bound": "BOUND_METHODS",
            "backend": "BACKENDS", "method": "LIRPA_VERIFY_METHODS", "skip": "SKIP_MODES",
            "layout": "MODEL_LAYOUTS", "scale": "SCALES"}


def _choices() -> dict[str, list[str]]:
    """The allowed values of every choice field (imported late: the registries pull in torch)."""
    from ..bench.export import SKIP_MODES
    from ..bounds.base import BOUND_METHODS
    from ..data.layout import MODEL_LAYOUTS, SCALES
    from ..planning import INITS, SCHEDULES
    from ..planning.select import SELECTORS
    from ..verify import BACKENDS
    from ..verify.backends.lirpa import LIRPA_VERIFY_METHODS

    found = {"SELECTORS": SELECTORS, "SCHEDULES": SCHEDULES, "INITS": INITS, "BOUND_METHODS": BOUND_METHODS,
             "BACKENDS": BACKENDS, "LIRPA_VERIFY_METHODS": LIRPA_VERIFY_METHODS, "SKIP_MODES": SKIP_MODES,
             "MODEL_LAYOUTS": MODEL_LAYOUTS, "SCALES": SCALES}
    return {k: sorted(found[v]) for k, v in _CHOICES.items()}


def _check_choices(entry: ModelEntry, where: _Where, path: tuple[Any, ...], raw: dict[str, Any]) -> None:
    allowed = _choices()
    values = {"criterion": entry.criterion, "schedule": entry.schedule, "init": entry.init, "bound": entry.bound,
              "backend": entry.verify.backend, "method": entry.verify.method, "skip": entry.export.skip,
              "layout": entry.data.layout, "scale": entry.data.scale}
    section = {"backend": "verify", "method": "verify", "skip": "export", "layout": "data", "scale": "data"}
    for key, v in values.items():
        if v not in allowed[key]:
            sec = section.get(key)
            mine = (key in raw) if sec is None else isinstance(raw.get(sec), dict) and key in raw[sec]
            loc = (*path, *((sec,) if sec else ()), key) if mine else ("defaults", *((sec,) if sec else ()), key)
            raise where.fail(loc, f"{v!r} is not one of {', '.join(allowed[key])}")


def _entry(raw: dict[str, Any], defaults: dict[str, Any], where: _Where, i: int, root: Path) -> ModelEntry:
    path = ("models", i)
    if not isinstance(raw, dict):
        raise where.fail(path, f"expected a mapping with at least 'path', got {raw!r}")
    if "path" not in raw or not isinstance(raw["path"], str):
        raise where.fail(path, "needs 'path: model.onnx' (relative to the manifest's folder)")
    model = (root / raw["path"]).resolve() if not os.path.isabs(raw["path"]) else Path(raw["path"])
    name = raw.get("name", Path(raw["path"]).stem)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise where.fail((*path, "name"), f"{name!r} is not a usable folder name: letters, digits, . _ - only")
    kw: dict[str, Any] = {}
    for key in sorted(set(defaults) | set(raw) - {"name", "path"}):
        if key not in _TOP:
            bad = (*path, key) if key in raw else ("defaults", key)
            raise where.fail(bad, f"unknown key: use one of name, path, {', '.join(sorted(_TOP))}")
        src = (*path, key) if key in raw else ("defaults", key)
        if key in SECTIONS:
            d, r = defaults.get(key) or {}, raw.get(key) or {}
            _convert(SECTIONS[key], d, where, ("defaults", key))  # report a bad default at its own line
            if not isinstance(r, dict):
                raise where.fail((*path, key), f"expected a mapping, got {r!r}")
            kw[key] = _convert(SECTIONS[key], {**d, **r}, where, src)
        else:
            kw[key] = _value(key, raw.get(key, defaults.get(key)), where, src)
    entry = ModelEntry(name=name, path=str(model), **kw)
    _check_choices(entry, where, path, raw)
    return _resolve_data(entry, root)


def _resolve_data(entry: ModelEntry, root: Path) -> ModelEntry:
    """A data source that exists relative to the manifest folder becomes absolute (built-in names stay)."""
    src = entry.data.source
    if src is None or os.path.isabs(src) or not (root / src).exists():
        return entry
    return replace(entry, data=replace(entry.data, source=str((root / src).resolve())))


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Parse and validate a manifest file (see specs/zoo.md); every problem is a BadInput with a line."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"manifest {p} not found: give a .yaml manifest or a folder of .onnx files")
    try:
        node = yaml.compose(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise BadInput(f"manifest {p}{line} is not valid YAML ({problem}): fix the syntax") from None
    lines: dict[tuple[Any, ...], int] = {}
    raw = _plain(node, (), lines) if node is not None else None
    where = _Where(str(p), lines)
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list) or not raw["models"]:
        raise where.fail((), "a manifest is a mapping with a non-empty 'models:' list (and optional 'defaults:')")
    unknown = set(raw) - {"models", "defaults"}
    if unknown:
        raise where.fail((sorted(unknown)[0],), "unknown top-level key: use 'defaults' and 'models'")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise where.fail(("defaults",), f"expected a mapping, got {defaults!r}")
    entries = tuple(_entry(m, defaults, where, i, p.parent) for i, m in enumerate(raw["models"]))
    _check_names(entries, where)
    return Manifest(entries, str(p))


def _check_names(entries: tuple[ModelEntry, ...], where: _Where) -> None:
    seen: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.name in seen:
            raise where.fail(("models", i, "name"), f"name {e.name!r} is also used by models[{seen[e.name]}]: "
                             "give each model a unique 'name'")
        seen[e.name] = i


def manifest_from_folder(folder: str | os.PathLike[str], template: ModelEntry) -> Manifest:
    """One entry per ``*.onnx`` in ``folder`` (sorted), each with ``template``'s settings."""
    root = Path(folder)
    models = sorted(root.glob("*.onnx"))
    if not models:
        raise BadInput(f"folder {root} holds no .onnx files: give a manifest or a folder of models")
    entries = []
    for m in models:
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", m.stem)[:100] or "model"
        entries.append(replace(template, name=name, path=str(m.resolve())))
    return Manifest(tuple(entries), str(root))
