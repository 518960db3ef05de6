"""How good the model and its flags are: at the population's prevalence with intervals
(``population``), on every campaign held out in turn (``loco``), and against a simulated
world's ground truth (``truth``, evaluation only).

``loco`` trains models, so it is imported from its module, not here (training imports
``population``)."""

from __future__ import annotations

from sybilgnn.evaluation.truth import TruthReport, read_truth, truth_report

__all__ = ["TruthReport", "read_truth", "truth_report"]
