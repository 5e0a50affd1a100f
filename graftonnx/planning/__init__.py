"""Planning stage: choose which neurons to graft and with which initial lines."""

from .build import make_plan, resolve_layers
from .init import INITS, fit_lines
from .plan import GRANULARITIES, PLAN_GRANULARITIES, GraftPlan, LayerPlan, Provenance
from .select import SCHEDULES, SELECTORS, Criterion, Selection, count_for, lambda_schedule, rank_normalise, select_units
from .settings import GraftSettings, InitSettings

__all__ = ["make_plan", "resolve_layers", "INITS", "fit_lines", "GRANULARITIES", "PLAN_GRANULARITIES", "GraftPlan",
           "LayerPlan", "Provenance", "SCHEDULES", "SELECTORS", "Selection", "count_for", "lambda_schedule",
           "rank_normalise", "select_units", "Criterion", "GraftSettings", "InitSettings"]
