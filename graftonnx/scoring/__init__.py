"""Scoring stage: per-neuron instability and significance, and UNR."""

from .score import instability_counts, labels_for, prepared_model, score_model
from .significance import SIGNIFICANCE, ScoringContext
from .table import ScoreTable, SiteScore

__all__ = ["instability_counts", "labels_for", "prepared_model", "score_model", "SIGNIFICANCE",
           "ScoringContext", "ScoreTable", "SiteScore"]
