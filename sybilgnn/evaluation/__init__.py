"""How good the flags are: against a simulated world's ground truth (evaluation only)."""

from __future__ import annotations

from sybilgnn.evaluation.truth import TruthReport, read_truth, truth_report

__all__ = ["TruthReport", "read_truth", "truth_report"]
