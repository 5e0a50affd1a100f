"""Planning stage: choose which neurons to graft and with which initial lines."""

from .plan import GRANULARITIES, GraftPlan, LayerPlan, Provenance

__all__ = ["GRANULARITIES", "GraftPlan", "LayerPlan", "Provenance"]
