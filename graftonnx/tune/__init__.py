"""``graftonnx tune``: choose the graft ratio and λ schedule for the user (issue 16).

Settings in :mod:`.settings`, measurements in :mod:`.measure`, the journaled search in
:mod:`.pipeline`, the choice, table and figure in :mod:`.report` / :mod:`.plot`; the entry
point is :func:`tune`.
"""

from .api import tune
from .measure import Measure, Split
from .pipeline import TuneConfig
from .report import DEFAULT_CANDIDATE, TuneSummary, choose, summarise
from .settings import TuneSettings

__all__ = ["tune", "TuneConfig", "TuneSettings", "TuneSummary", "Measure", "Split", "choose", "summarise",
           "DEFAULT_CANDIDATE"]
