"""Training, calibration, threshold, metrics and baselines for the account GNN."""

from __future__ import annotations

from sybilgnn.training.calibration import apply_calibrator, choose_threshold, fit_calibrator
from sybilgnn.training.loop import TrainResult, train
from sybilgnn.training.metrics import evaluate
from sybilgnn.training.predict import load_model, predict, predict_logits
from sybilgnn.training.report import evaluate_all, report_table

__all__ = [
    "TrainResult",
    "train",
    "predict",
    "predict_logits",
    "load_model",
    "evaluate",
    "evaluate_all",
    "report_table",
    "fit_calibrator",
    "apply_calibrator",
    "choose_threshold",
]
