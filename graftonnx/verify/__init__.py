"""Verify stage: run lirpa / neuralsat / abcrown over a VNN-COMP folder, check every sat, journal results."""

from .backends import BACKENDS, Backend, backend_options, make_backend, option_classes
from .cexcheck import INVALID_CEX, cex_problem, check_result
from .journal import Journal
from .result import VERDICTS, Counterexample, Result, Verdict, is_solved, parse_assignment
from .runner import Instance, RunSummary, read_instances, run_instance, verify_benchmark

__all__ = [
    "BACKENDS", "Backend", "backend_options", "make_backend", "option_classes", "INVALID_CEX", "cex_problem",
    "check_result",
    "Journal", "VERDICTS", "Verdict", "is_solved", "Counterexample", "Result", "parse_assignment", "Instance",
    "RunSummary", "read_instances", "run_instance", "verify_benchmark",
]
