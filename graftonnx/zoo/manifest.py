"""The zoo manifest: which models to run and with which settings, parsed into frozen dataclasses.

Why YAML composed by hand (not ``safe_load`` into dicts): a batch over many models is
only as good as its error messages, so every key keeps its line number and a typo or a
wrong type is reported as ``manifest.yaml line 12: models[1] ('resnet') key 'eps': ...``
before any model runs.  Per-model entries override top-level ``defaults`` section by
section; relative paths are relative to the manifest's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..bench.settings import ExportSettings
from ..data.dataset import DataSpec
from ..engine import fingerprint
from ..errors import BadInput
from ..planning.settings import GraftSettings
from ..settings import STAGES, fingerprint_dict, knobs, parse, to_dict
from ..train.config import TrainConfig
from ..verify import BACKENDS
from ..verify.backends.lirpa import LirpaOptions
from ..verify.settings import VerifySettings

__all__ = ["ModelEntry", "Manifest", "load_manifest", "manifest_from_folder", "SECTIONS", "TOP_KEYS",
           "extra_sections"]

#: Stages whose knobs are an entry's top-level keys (``ratio``/``count``: ``ratios`` sweeps them).
GRAFT_STAGES = ("score", "select", "init")
#: Entry sections of the built-in stages; every other registered stage is a section under its own name.
SECTIONS: dict[str, type] = {"data": DataSpec, "finetune": TrainConfig, "export": ExportSettings,
                             "verify": VerifySettings}
#: Keys a section may not set: the entry's top level owns them (one ε and one seed per model).
_OWNED = {"data": ("seed", ), "finetune": ("eps", "seed"), "export": (), "verify": ()}
TOP_KEYS = tuple(f.name for f, _ in knobs(GraftSettings, runtime=False) if f.name not in ("ratio", "count"))
_BUILTIN_STAGES = frozenset({*GRAFT_STAGES, "data", "train", "export", "verify"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def extra_sections() -> dict[str, type]:
    """Registered stages beyond the built-in ones (plugins, tests): each is an entry section of its name."""
    return {name: STAGES.get(name) for name in STAGES if name not in _BUILTIN_STAGES}


def _ratios(v: Any) -> str | None:
    ok = isinstance(v, tuple) and v and all(0 < r <= 1 for r in v)
    return None if ok else f"expected ratios in (0, 1], e.g. [0.3, 0.5], got {list(v) if isinstance(v, tuple) else v!r}"


@dataclass(frozen=True)
class ModelEntry:
    """Everything one model's run depends on; its :meth:`fingerprint` keys the journal.

    ``graft`` holds the entry's top-level keys (score, select and init knobs); ``finetune``
    is None when the model is not finetuned; ``extra`` holds the sections of stages
    registered beyond the built-in ones, by name.
    """

    name: str
    path: str
    ratios: tuple[float, ...] = (0.5,)
    graft: GraftSettings = field(default_factory=GraftSettings)
    data: DataSpec = field(default_factory=DataSpec)
    finetune: TrainConfig | None = None
    export: ExportSettings = field(default_factory=ExportSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    backend: Any = field(default_factory=LirpaOptions)  # the verify backend's own options (``Backend.Options``)
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def eps(self) -> float:
        return self.graft.eps

    def data_spec(self) -> DataSpec:
        return replace(self.data, seed=self.graft.seed)

    def train_config(self) -> TrainConfig | None:
        if self.finetune is None:
            return None
        return replace(self.finetune, eps=self.graft.eps, seed=self.graft.seed, progress=False)

    def to_json(self, of: Callable[[Any], dict[str, Any]] = to_dict) -> dict[str, Any]:
        """Every setting of the entry (``of``: how a settings object becomes a dict)."""
        out: dict[str, Any] = {"name": self.name, "path": self.path, "ratios": list(self.ratios)}
        out |= {k: v for k, v in of(self.graft).items() if k in TOP_KEYS}
        for key in SECTIONS:
            section = getattr(self, key)
            out[key] = None if section is None else of(section)
        out["verify"] |= of(self.backend)
        return out | {name: of(s) for name, s in self.extra}

    def fingerprint(self) -> str:
        """A short hash of every setting (not the file's bytes: moving the out folder must not invalidate it);
        knobs added later are left out at their default, so an upgrade keeps earlier journals valid."""
        return fingerprint(self.to_json(fingerprint_dict))


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest: its entries in run order and where it came from."""

    entries: tuple[ModelEntry, ...]
    source: str


class _Where:
    """Builds 'file line N: models[i] ('name') key 'k'' prefixes for errors."""

    def __init__(self, source: str, lines: dict[tuple[Any, ...], int]) -> None:
        self.source, self.lines = source, lines

    def fail(self, path: tuple[Any, ...], what: str) -> BadInput:
        line = next((self.lines[path[:k]] for k in range(len(path), -1, -1) if path[:k] in self.lines), None)
        where = self.source + (f" line {line}" if line else "")
        scope, rest = self._scope(path)
        key = ".".join(str(p) for p in rest)
        return BadInput(f"{where}: {scope}{f' key {key!r}' if key else ''}: {what}")

    @staticmethod
    def _scope(path: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        """Split a path into its scope and the key under it, for every path shape the parser reports.

        Why a separate function: the formatter runs only on error paths, so a shape it does
        not expect (a top-level key, a bare ``models``) used to crash it and lose the message.
        """
        if not path:
            return "top level", ()
        if path[0] == "defaults":
            return "defaults", path[1:]
        if path[0] == "models" and len(path) >= 2:
            return f"models[{path[1]}]", path[2:]
        return "top-level", path  # a top-level key: 'top-level key 'modles''


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


def _section(name: str, cls: type, raw: dict[str, Any], defaults: dict[str, Any], where: _Where,
             path: tuple[Any, ...], base: Any = None, only: frozenset[str] | None = None) -> Any:
    """One section (its keys in ``only``): the defaults' mapping checked at its own lines, then the entry's over it."""
    d, r = defaults.get(name) or {}, raw.get(name) or {}
    for src, m in ((("defaults", name), d), ((*path, name), r)):
        if not isinstance(m, dict):
            raise where.fail(src, f"expected a mapping, got {m!r}")
        owned = [k for k in m if k in _OWNED.get(name, ())]
        if owned:
            raise where.fail((*src, owned[0]), f"set {owned[0]!r} at the entry's top level, not under {name!r}")
    if only is not None:
        d, r = {k: v for k, v in d.items() if k in only}, {k: v for k, v in r.items() if k in only}
    parse(cls, d, lambda k, msg: where.fail(("defaults", name, *((k,) if k else ())), msg), base)

    def fail(key: str | None, msg: str) -> BadInput:
        mine = key is None or key in r
        return where.fail(((*path, name) if mine else ("defaults", name)) + ((key,) if key else ()), msg)

    return parse(cls, {**d, **r}, fail, base)


def _graft(raw: dict[str, Any], defaults: dict[str, Any], where: _Where, path: tuple[Any, ...]) -> GraftSettings:
    merged = {k: raw.get(k, defaults.get(k)) for k in TOP_KEYS if k in raw or k in defaults}

    def fail(key: str | None, msg: str) -> BadInput:
        return where.fail((*path, key) if key is None or key in raw else ("defaults", key), msg)

    return parse(GraftSettings, merged, fail)


def _finetune(raw: dict[str, Any], defaults: dict[str, Any], where: _Where, path: tuple[Any, ...]
              ) -> TrainConfig | None:
    if "finetune" not in raw and "finetune" not in defaults:
        return None
    parts = [src.get("finetune") or {} for src in (defaults, raw)]
    if all(isinstance(x, dict) for x in parts) and {**parts[0], **parts[1]}.get("epochs") == 0:
        return None  # ``epochs: 0`` skips the step (a section that is not a mapping is reported by _section)
    return _section("finetune", TrainConfig, raw, defaults, where, path, TrainConfig(progress=False))


def _verify(raw: dict[str, Any], defaults: dict[str, Any], where: _Where, path: tuple[Any, ...]
            ) -> tuple[VerifySettings, Any]:
    """The verify section: VerifySettings' keys, plus the chosen backend's own options (``Backend.Options``)."""
    own = frozenset(f.name for f, _ in knobs(VerifySettings, runtime=False))
    settings = _section("verify", VerifySettings, raw, defaults, where, path, only=own)
    opts = BACKENDS.get(settings.backend).Options  # type: ignore[attr-defined]
    theirs = frozenset(f.name for f, _ in knobs(opts, runtime=False))
    for src in (("defaults", "verify"), (*path, "verify")):
        section = (defaults if src[0] == "defaults" else raw).get("verify") or {}
        bad = sorted(set(section) - own - theirs)
        if bad:
            raise where.fail((*src, bad[0]), f"unknown key for backend {settings.backend!r}: use one of "
                             f"{', '.join(sorted(own | theirs))}")
    return settings, _section("verify", opts, raw, defaults, where, path, only=theirs)


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
    extra = extra_sections()
    allowed = {"ratios", *TOP_KEYS, *SECTIONS, *extra}
    for key in sorted(set(defaults) | set(raw) - {"name", "path"}):
        if key not in allowed:
            bad = (*path, key) if key in raw else ("defaults", key)
            raise where.fail(bad, f"unknown key: use one of name, path, {', '.join(sorted(allowed))}")
    kw: dict[str, Any] = {"graft": _graft(raw, defaults, where, path),
                          "finetune": _finetune(raw, defaults, where, path)}
    if "ratios" in raw or "ratios" in defaults:
        src = (*path, "ratios") if "ratios" in raw else ("defaults", "ratios")
        v = raw.get("ratios", defaults.get("ratios"))
        try:
            ratios = tuple(float(x) for x in (v if isinstance(v, list) else [v]) if not isinstance(x, bool))
        except (TypeError, ValueError):
            ratios = ()
        if _ratios(ratios) or len(ratios) != len(v if isinstance(v, list) else [v]):
            raise where.fail(src, f"expected ratios in (0, 1], e.g. [0.3, 0.5], got {v!r}")
        kw["ratios"] = ratios
    base = ModelEntry(name, str(model))
    for key in ("data", "export"):
        kw[key] = _section(key, SECTIONS[key], raw, defaults, where, path, getattr(base, key))
    kw["verify"], kw["backend"] = _verify(raw, defaults, where, path)
    kw["extra"] = tuple((n, _section(n, cls, raw, defaults, where, path)) for n, cls in sorted(extra.items()))
    return _resolve_data(replace(base, **kw), root)


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
