"""The scoring run report: counts, score distribution, top fleets with pictures, changes."""

from __future__ import annotations

from sybilgnn.reporting.data import ReportData, collect_report_data
from sybilgnn.reporting.report import log_report_to_mlflow, render_report_html, write_report

__all__ = [
    "ReportData",
    "collect_report_data",
    "log_report_to_mlflow",
    "render_report_html",
    "write_report",
]
