"""Settings declared once: every knob is one dataclass field carrying its help, choices and check.

Why: a knob used to be written five to seven times (API dataclass, click option, default in
the option-to-settings glue, zoo manifest key, its kind and its choice table, provenance)
and the copies drifted.  Now a stage declares a frozen dataclass whose fields are
:func:`knob` s, registers it in :data:`STAGES`, and everything else is derived here:

* :func:`options` — click options (type, default, choices, help) for one or more stages;
* :func:`from_options` — the stage's settings from parsed click keywords;
* :func:`parse` — a stage from a manifest mapping, each value type-checked by its annotation,
  each problem reported by the caller's ``fail(key, message)`` (line numbers live there);
* :func:`to_dict` — the plain JSON record used for provenance, fingerprints and manifests;
* :class:`Settings` — ``__post_init__`` validates every field (choices, check), so the Python
  API rejects the same values as the CLI, with the same message.

A knob with ``runtime=True`` (progress bars, checkpoint paths) changes how a run goes, not
what it computes: it is a CLI option but no manifest key and no part of provenance.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from .errors import BadInput
from .registry import Registry

__all__ = ["Knob", "knob", "at_least", "above", "within", "Settings", "STAGES", "stage", "knobs", "options",
           "from_options", "parse", "to_dict", "fingerprint_dict", "flag_of", "dest_of", "choices_of", "problem",
           "option_list"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
_META = "graftonnx.knob"


@dataclass(frozen=True)
class Knob:
    """What a field means: help text, allowed values, a check, and how it shows on the command line."""

    help: str
    choices: Callable[[], Iterable[str]] | tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = None  # the problem with a value, or None
    flag: str | None = None  # CLI flag; default ``--field-name``
    metavar: str | None = None
    runtime: bool = False  # not a result setting: no manifest key, no provenance
    cli: bool = True
    multiple: bool = False  # a tuple[str, ...] given as a repeatable flag (values may hold commas)
    #: added after runs were first journaled: at its default it is left out of fingerprints
    #: (:func:`fingerprint_dict`), so journals, checkpoints and caches made before it still match
    added: bool = False


def at_least(lo: float) -> Callable[[Any], str | None]:
    """A check: ``value ≥ lo``."""
    return lambda v: None if v >= lo else f"must be at least {lo:g}"


def above(lo: float) -> Callable[[Any], str | None]:
    """A check: ``value > lo``."""
    return lambda v: None if v > lo else f"must be > {lo:g}"


def within(lo: float, hi: float) -> Callable[[Any], str | None]:
    """A check: ``lo ≤ value ≤ hi``."""
    return lambda v: None if lo <= v <= hi else f"is outside [{lo:g}, {hi:g}]"


def knob(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its :class:`Knob` (``kw`` are Knob's fields; ``dataclasses.MISSING``: required)."""
    return dataclasses.field(default=default, metadata={_META: Knob(help, **kw)})


#: Section name → settings class of one pipeline stage (data, score, select, train, export, verify, ...).
STAGES: Registry[type] = Registry("settings section")


def stage(name: str) -> Callable[[type[T]], type[T]]:
    """Register a settings class as the manifest section / stage ``name``."""
    return STAGES.register(name)  # type: ignore[return-value]


def knobs(cls: type, *, runtime: bool = True) -> list[tuple[dataclasses.Field[Any], Knob]]:
    """The knob fields of ``cls`` in declaration order (``runtime=False`` leaves runtime knobs out)."""
    out = [(f, f.metadata[_META]) for f in dataclasses.fields(cls) if _META in f.metadata]
    return [(f, k) for f, k in out if runtime or not k.runtime]


def flag_of(f: dataclasses.Field[Any], k: Knob, prefix: str = "") -> str:
    """The CLI flag of a knob (``--field-name``, or its own ``flag``), after ``--<prefix>`` when given."""
    return k.flag if k.flag and not prefix else "--" + prefix + f.name.replace("_", "-")


def dest_of(f: dataclasses.Field[Any], k: Knob, prefix: str = "") -> str:
    """The click keyword of a knob: its flag's name (``--data-format`` → ``data_format``)."""
    return flag_of(f, k, prefix)[2:].replace("-", "_")


def choices_of(k: Knob) -> list[str] | None:
    if k.choices is None:
        return None
    return list(k.choices() if callable(k.choices) else k.choices)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _split(tp: Any) -> tuple[Any, bool]:
    """(base type, optional?) of an annotation such as ``float | None``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def _coerce(tp: Any, v: Any, k: Knob) -> Any:
    """``v`` as annotation ``tp`` (manifest values, API values); ValueError says what was expected."""
    base, optional = _split(tp)
    if v is None:
        if optional:
            return None
        raise ValueError("must not be null")
    if base is bool:
        if not isinstance(v, bool):
            raise ValueError(f"expected true or false, got {v!r}")
        return v
    if base in (int, float):
        ok = isinstance(v, int | float) and not isinstance(v, bool) and (base is float or isinstance(v, int))
        if not ok or not math.isfinite(float(v)):
            raise ValueError(f"expected {'an integer' if base is int else 'a finite number'}, got {v!r}")
        return base(v)
    if base is str:
        if isinstance(v, int) and not isinstance(v, bool) and str(v) in (choices_of(k) or ()):
            return str(v)  # ``scale: 255`` reads as a number
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"expected a non-empty string, got {v!r}")
        return v
    if typing.get_origin(base) is tuple:
        return _tuple(base, v)
    raise TypeError(f"settings fields of type {tp!r} are not supported")  # a bug in a declaration


def _tuple(tp: Any, v: Any) -> tuple[Any, ...]:
    args = typing.get_args(tp)
    item = args[0]
    if isinstance(v, str):
        v = [x for x in v.replace(" ", "").split(",") if x]
    items = list(v) if isinstance(v, list | tuple) else [v]
    if item is str:
        if not all(isinstance(x, str | int) and not isinstance(x, bool) for x in items):
            raise ValueError(f"expected a list of names, got {v!r}")
        out: tuple[Any, ...] = tuple(str(x) for x in items)
    else:
        try:
            out = tuple(float(x) for x in items if not isinstance(x, bool))
        except (TypeError, ValueError):
            raise ValueError("is not a comma-separated list of numbers: e.g. 0.5,0.5") from None
        if len(out) != len(items) or not all(math.isfinite(x) for x in out):
            raise ValueError(f"expected finite numbers, got {v!r}")
    if Ellipsis not in args and len(out) != len(args):
        raise ValueError(f"expected {len(args)} values, got {v!r}")
    if not out:
        raise ValueError("expected at least one value")
    return out


def problem(cls: type, name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for field ``name`` of ``cls`` (type, choices, check), or None."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    k: Knob = f.metadata[_META]
    try:
        value = _coerce(_hints(cls)[name], value, k)
    except ValueError as exc:
        return str(exc)
    return _value_problem(k, value)


def _value_problem(k: Knob, value: Any) -> str | None:
    """Choices and check of an already coerced value."""
    if value is None:
        return None
    allowed = choices_of(k)
    if allowed is not None and value not in allowed:
        return f"{value!r} is not one of {', '.join(allowed)}"
    return k.check(value) if k.check is not None else None


class Settings:
    """Mixin for frozen settings dataclasses: every knob is coerced and validated on construction."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f, k in knobs(type(self)):
            v = getattr(self, f.name)
            try:
                value = _coerce(hints[f.name], v, k)
            except ValueError as exc:
                raise BadInput(f"{flag_of(f, k)} {v!r}: {exc}") from None
            object.__setattr__(self, f.name, value)
            bad = _value_problem(k, value)
            if bad:
                raise BadInput(f"{flag_of(f, k)} {v!r}: {bad}")
        self.cross_check()

    def cross_check(self) -> None:
        """Checks spanning several fields (override); raise BadInput."""


def to_dict(obj: Any, *, runtime: bool = False) -> dict[str, Any]:
    """The knob values of a settings object as plain JSON types (tuples become lists)."""
    def plain(v: Any) -> Any:
        return [plain(x) for x in v] if isinstance(v, tuple) else v

    return {f.name: plain(getattr(obj, f.name)) for f, _ in knobs(type(obj), runtime=runtime)}


def fingerprint_dict(obj: Any) -> dict[str, Any]:
    """:func:`to_dict` without the ``added`` knobs that are at their default (what settings keys hash)."""
    later = {f.name: f.default for f, k in knobs(type(obj), runtime=False) if k.added}
    return {k: v for k, v in to_dict(obj).items() if not (k in later and getattr(obj, k) == later[k])}


def parse(cls: type[T], raw: Mapping[str, Any], fail: Callable[[str | None, str], Exception],
          base: T | None = None) -> T:
    """``cls`` from a manifest mapping (over ``base``'s values); unknown keys and bad values go to ``fail``."""
    names = [f.name for f, _ in knobs(cls, runtime=False)]
    if not isinstance(raw, Mapping):
        raise fail(None, f"expected a mapping of {', '.join(names)}, got {raw!r}")
    for key, v in raw.items():
        if key not in names:
            raise fail(key, f"unknown key: use one of {', '.join(sorted(names))}")
        bad = problem(cls, key, v)
        if bad:
            raise fail(key, bad)
    try:
        return dataclasses.replace(base, **raw) if base is not None else cls(**raw)  # type: ignore[type-var]
    except BadInput as exc:  # a cross-field check
        raise fail(None, exc.message) from None


def _click_type(tp: Any, k: Knob) -> dict[str, Any]:
    base, _ = _split(tp)
    allowed = choices_of(k)
    if allowed is not None:
        return {"type": click.Choice(allowed)}
    if typing.get_origin(base) is tuple:
        args = typing.get_args(base)
        if Ellipsis not in args:
            return {"type": tuple(args), "metavar": k.metavar or " ".join(["X"] * len(args))}
        return {"type": str, "metavar": k.metavar or "LIST"}  # comma-separated, parsed by from_options
    return {"type": base, "metavar": k.metavar}


def option_list(*classes: type, prefix: Mapping[type, str] | None = None,
                defaults: Mapping[str, Any] | None = None, exclude: Sequence[str] = (),
                runtime: bool = True) -> list[click.Option]:
    """Click options for the knobs of ``classes`` (a name shared by several classes becomes one option).

    ``prefix`` puts ``--<prefix>`` before a class's flags (and before its keyword names)
    where two stages of one command use the same field name for different things;
    ``exclude`` names keywords to leave out; ``runtime=False`` leaves runtime knobs out.
    """
    seen: dict[str, click.Option] = {}
    for cls in classes:
        pre = (prefix or {}).get(cls, "")
        hints = _hints(cls)
        for f, k in knobs(cls, runtime=runtime):
            name = dest_of(f, k, pre)
            if name in seen or name in exclude or not k.cli:
                continue
            default = (defaults or {}).get(name, f.default)
            required = default is dataclasses.MISSING  # a knob without a default is a required flag
            default = None if required else default
            if isinstance(default, tuple) and Ellipsis in typing.get_args(_split(hints[f.name])[0]):
                default = ",".join(str(x) for x in default)
            flag = flag_of(f, k, pre)
            if _split(hints[f.name])[0] is bool:
                decl, kw = [f"{flag}/--no-{flag[2:]}", name], {}
            elif k.multiple:
                decl, kw, default = [flag, name], {"multiple": True, "metavar": k.metavar}, None
            else:
                decl, kw = [flag, name], _click_type(hints[f.name], k)
            seen[name] = click.Option(decl, default=default, required=required, show_default=default is not None,
                                      help=k.help, **kw)
    return list(seen.values())


def options(*classes: type, **kw: Any) -> Callable[[F], F]:
    """A decorator adding :func:`option_list` ``(*classes, **kw)`` to a click command, in declaration order."""
    opts = option_list(*classes, **kw)

    def apply(fn: F) -> F:
        params = getattr(fn, "__click_params__", [])
        fn.__click_params__ = params + list(reversed(opts))  # type: ignore[attr-defined]
        return fn

    return apply


def from_options(cls: type[T], kw: Mapping[str, Any], prefix: str = "", **fixed: Any) -> T:
    """``cls`` from parsed click keywords (its own names, after ``prefix``; absent keys keep defaults)."""
    values = {f.name: kw[dest_of(f, k, prefix)] for f, k in knobs(cls)
              if dest_of(f, k, prefix) in kw and not (k.multiple and kw[dest_of(f, k, prefix)] == ())}
    return cls(**(values | fixed))
