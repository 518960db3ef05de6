"""How good the model and its flags are: on every campaign held out in turn (``loco``) and
against a simulated world's ground truth (``truth``, evaluation only). The metrics both
report at the population's prevalence live below training, in ``sybilgnn.measures``.

``loco`` trains models, so it is imported from its module, not here."""

from __future__ import annotations

from sybilgnn.evaluation.truth import TruthReport, loco_against_truth, read_truth, truth_report

__all__ = ["TruthReport", "loco_against_truth", "read_truth", "truth_report"]
