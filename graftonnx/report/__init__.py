"""Report stage: metrics from verification journals (VA, times, UNR, SA, RA), tables and plots."""

from .metrics import DataSource, GraftInfo, ModelMetrics, Report, ReportOptions, build_report, graft_info, group_key
from .plots import PLOT_FILES, plot_cactus, plot_files, plot_layer_unr, plot_times, plot_va, write_plots
from .results import JournalRecord, read_journal, read_journals
from .stats import mcnemar_exact, wilson_interval
from .tables import CSV_COLUMNS, csv_text, markdown_text, write_tables
from .unr import BoxUnr, LayerUnr, unr_on_boxes
from .write import check_report_output, write_report

__all__ = [
    "DataSource", "GraftInfo", "ModelMetrics", "Report", "ReportOptions", "build_report", "graft_info", "group_key",
    "PLOT_FILES", "plot_cactus", "plot_files", "plot_layer_unr", "plot_times", "plot_va", "write_plots",
    "wilson_interval", "mcnemar_exact",
    "JournalRecord", "read_journal", "read_journals",
    "CSV_COLUMNS", "csv_text", "markdown_text", "write_tables",
    "BoxUnr", "LayerUnr", "unr_on_boxes",
    "check_report_output", "write_report",
]
