"""Gradient-boosting baselines in the same harness as the GNN (same splits, metrics, threshold).

``hgb_features``: the labelled nodes' (accounts') features alone. ``hgb_neighbours``: plus
neighbour aggregates per relation (degrees, weighted mean and max of neighbours' features,
strongest edge weight) and two hops through shared nodes of other types, e.g. IPs and
payments (mean features and size of the groups an account shares an IP or card with). A
GNN that does not beat these is not done.
"""

from __future__ import annotations

import numpy as np

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.models.trees import gradient_boosting
from sybilgnn.training.calibration import (apply_calibrator, choose_threshold, fit_calibrator,
                                           prevalence_weights)
from sybilgnn.training.inputs import account_labels
from sybilgnn.training.loop import split_metrics
from sybilgnn.training.neighbours import neighbour_features

__all__ = ["run_baselines", "fit_gradient_boosting", "BASELINE_NAMES"]

BASELINE_NAMES = ("hgb_features", "hgb_neighbours")


def fit_gradient_boosting(features: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int
                          ) -> np.ndarray:
    """The baselines' model, fitted on the ``train`` rows: every row's decision value."""
    model = gradient_boosting(seed)
    model.fit(features[train], y[train])
    return np.asarray(model.decision_function(features), dtype=np.float64)


def run_baselines(snapshot: Snapshot, settings: Settings, *, prevalence: float | None = None,
                  keep_probs: dict[str, np.ndarray] | None = None
                  ) -> dict[str, dict[str, dict[str, float]]]:
    """Both baselines: model name -> split -> metrics, calibrated and thresholded on val, at
    the GNN's population prevalence (``prevalence``, else ``train.prevalence``).
    ``keep_probs`` receives each baseline's calibrated probabilities of every row."""
    prevalence = settings.train.prevalence if prevalence is None else prevalence
    schema = GraphSchema.from_settings(settings)
    schema.check_snapshot(snapshot)
    labels = account_labels(snapshot, schema.labelled)
    own = snapshot.data[schema.labelled].x.float().numpy()
    variants = {"hgb_features": own,
                "hgb_neighbours": neighbour_features(snapshot, schema.labelled)[0]}
    results: dict[str, dict[str, dict[str, float]]] = {}
    val = labels.masks["val"]
    for name, features in variants.items():
        logits = fit_gradient_boosting(features, labels.y, labels.masks["train"], settings.train.seed)
        weights = prevalence_weights(labels.y[val], prevalence)
        calibrator = fit_calibrator(logits[val], labels.y[val], settings.train.calibration, weights)
        probs = apply_calibrator(calibrator, logits)
        if keep_probs is not None:
            keep_probs[name] = probs
        chosen = choose_threshold(labels.y[val], probs[val], settings.train.target_precision,
                                  weights)
        results[name] = split_metrics(labels, probs, chosen["threshold"], prevalence=prevalence,
                                      logits=logits,
                                      n_boot=settings.train.bootstrap, seed=settings.train.seed)
    return results


