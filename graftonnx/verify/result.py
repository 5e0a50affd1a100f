"""What a verifier said about one instance, in one frozen record.

Why one record for every backend: the runner, the journal, the counterexample check and
the report all reason about verdicts without knowing which verifier produced them, and a
record that survives a JSON round trip is what makes an interrupted run resumable.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Verdict", "VERDICTS", "is_solved", "Counterexample", "Result", "parse_assignment",
           "sat_with_counterexample"]


class Verdict(str, enum.Enum):
    """``sat``: a (checked) counterexample exists; ``unsat``: the property is verified.

    A ``str`` enum (3.10 has no StrEnum): it equals, hashes, prints and JSON-encodes as its
    value, so journals stay byte-identical and comparisons with plain strings still hold.
    """

    SAT = "sat"
    UNSAT = "unsat"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> Verdict:  # ``Verdict("proved")``: name the valid spellings
        raise ValueError(f"verdict {value!r} is not one of {', '.join(VERDICTS)}")


#: Every verdict in table order (counting tables, summaries).
VERDICTS: tuple[Verdict, ...] = tuple(Verdict)


def is_solved(verdict: str) -> bool:
    """True for the verdicts that settle the property (``sat`` or ``unsat``)."""
    return verdict in (Verdict.SAT, Verdict.UNSAT)


@dataclass(frozen=True)
class Counterexample:
    """An input point (flat, model input order) and the outputs the verifier claims for it."""

    inputs: tuple[float, ...]
    outputs: tuple[float, ...]

    def to_json(self) -> dict[str, list[float]]:
        return {"inputs": list(self.inputs), "outputs": list(self.outputs)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Counterexample:
        return cls(tuple(float(v) for v in obj["inputs"]), tuple(float(v) for v in obj["outputs"]))


@dataclass(frozen=True)
class Result:
    """One finished instance.  ``instance`` is the key the journal resumes on.

    ``late_verdict``: what the verifier answered *after* the timeout (then ``verdict`` is
    ``timeout``, as VNN-COMP counts it).  Kept rather than dropped so a too-tight timeout
    is visible in the journal; None (the usual case) is left out of the JSON line, so
    journals written before the field existed and new ones stay byte-identical.
    """

    instance: str
    model: str
    vnnlib: str
    backend: str
    verdict: Verdict
    seconds: float
    counterexample: Counterexample | None = None
    message: str = ""
    log: str = ""
    late_verdict: Verdict | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        if self.late_verdict is not None:
            object.__setattr__(self, "late_verdict", Verdict(self.late_verdict))

    def replace(self, **changes: Any) -> Result:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["counterexample"] = self.counterexample.to_json() if self.counterexample else None
        d["seconds"] = round(float(self.seconds), 4)
        if self.late_verdict is None:
            del d["late_verdict"]
        return d

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Result:
        cex = obj.get("counterexample")
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in obj.items() if k in fields and k != "counterexample"}
        return cls(**kw, counterexample=Counterexample.from_json(cex) if cex else None)


def parse_assignment(text: str) -> Counterexample | None:
    """Parse the VNN-COMP counterexample text ``((X_0 v) (X_1 v) ... (Y_0 v) ...)``.

    α,β-CROWN and NeuralSAT both write this form (whitespace differs).  Returns None
    when no ``X_i`` is present; raises ValueError on a malformed or gappy assignment,
    so a garbled file can never pass as a counterexample.
    """
    xs: dict[int, float] = {}
    ys: dict[int, float] = {}
    for chunk in text.replace("\n", " ").split("(")[1:]:
        body = chunk.split(")")[0].split()
        if not body:
            continue
        if len(body) != 2 or body[0][:2] not in ("X_", "Y_"):
            raise ValueError(f"unexpected counterexample entry ({' '.join(body)[:60]})")
        name, value = body
        idx, num = int(name[2:]), float(value)
        if not math.isfinite(num):
            raise ValueError(f"non-finite counterexample value for {name}")
        (xs if name[0] == "X" else ys)[idx] = num
    if not xs:
        return None
    for what, d in (("X", xs), ("Y", ys)):
        if d and sorted(d) != list(range(len(d))):
            raise ValueError(f"counterexample {what}_ indices are not 0..{len(d) - 1}")
    return Counterexample(tuple(xs[i] for i in range(len(xs))), tuple(ys[i] for i in range(len(ys))))


def sat_with_counterexample(body: str, who: str, hint: str = "") -> tuple[Verdict, str, Counterexample | None]:
    """``(verdict, message, cex)`` for a verifier that said sat: ``sat`` only with a parsable counterexample.

    Shared by the subprocess backends so a garbled or missing assignment is always an ``error``.
    """
    try:
        cex = parse_assignment(body)
    except ValueError as exc:
        return Verdict.ERROR, f"{who} wrote a malformed counterexample: {exc}", None
    if cex is None:
        return Verdict.ERROR, f"{who} reported sat without a counterexample{hint}", None
    return Verdict.SAT, "", cex
