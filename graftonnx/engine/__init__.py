"""The pipeline engine: named steps with declared inputs, a journal, resume, local / process / Ray executors.

The zoo (:mod:`graftonnx.zoo`), ``graftonnx demo`` (:mod:`graftonnx.demo`) and the Table-1
benchmark (``benchmarks/paper``) are each a pipeline registered in :data:`PIPELINES` plus
a list of configurations run by :func:`run_batch`.
"""

from .batch import check_out_folder, make_jobs, run_batch
from .core import PIPELINES, STOPPED, Ctx, Job, Outcome, Step, StopJob, fingerprint, run_job, sweep_temporaries
from .executors import EXECUTORS, ExecutorConfig, make_executor
from .journal import DONE, FAILED, Journal, StepRecord

__all__ = ["check_out_folder", "make_jobs", "run_batch", "PIPELINES", "Ctx", "Job", "Outcome", "Step",
           "fingerprint", "run_job", "sweep_temporaries", "EXECUTORS", "ExecutorConfig", "make_executor", "DONE",
           "FAILED", "Journal", "StepRecord", "STOPPED", "StopJob"]
