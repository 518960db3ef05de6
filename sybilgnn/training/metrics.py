"""Detection metrics, computed the way the job is judged (DESIGN.md, quality bar).

Accounts with label -1 (unknown) are ignored. Undefined values (one class only, no
fleets) are ``nan`` rather than a made-up number.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = ["evaluate", "expected_calibration_error", "recall_at_fpr", "fleet_recall",
           "METRIC_NAMES"]

METRIC_NAMES = ("auroc", "auprc", "recall_at_1pct_fpr", "precision_at_threshold",
                "recall_at_threshold", "fleet_recall", "ece")


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, max_fpr: float = 0.01) -> float:
    """Highest true-positive rate among thresholds whose false-positive rate <= ``max_fpr``."""
    if y.min(initial=1) == y.max(initial=0):
        return math.nan
    fpr, tpr, _ = roc_curve(y, scores)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Sum over equal-width bins of (bin share) x |mean label - mean probability|."""
    if len(y) == 0:
        return math.nan
    index = np.minimum((np.clip(probs, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(index, weights=y.astype(np.float64), minlength=bins)
                 - np.bincount(index, weights=probs.astype(np.float64), minlength=bins))
    return float(gap.sum() / len(y))


def fleet_recall(flagged: np.ndarray, fleets: np.ndarray) -> tuple[float, int]:
    """Share of fleets (code >= 0) with more than half of their members flagged."""
    members = fleets >= 0
    if not members.any():
        return math.nan, 0
    codes, inverse = np.unique(fleets[members], return_inverse=True)
    size = np.bincount(inverse)
    hit = np.bincount(inverse, weights=flagged[members].astype(np.float64))
    return float(np.mean(hit > 0.5 * size)), int(len(codes))


def evaluate(y_true: np.ndarray, scores: np.ndarray, threshold: float,
             fleets: np.ndarray | None = None, *, prevalence: float | None = None,
             n_boot: int = 0, seed: int = 0) -> dict[str, float]:
    """All report metrics for one split; an account is flagged when ``score >= threshold``.

    ``fleets`` gives each account's fleet code (-1 none); fleet recall counts the labelled
    members of each fleet. With ``prevalence`` the metrics are those of a population with
    that share of fakes, each with a 95% bootstrap interval (``<metric>_lo`` / ``_hi``,
    ``n_boot`` resamples) and NaN where too few accounts make it not measurable
    (``sybilgnn.measures.population``).
    """
    y_all = np.asarray(y_true).astype(np.int64).reshape(-1)
    s_all = np.asarray(scores, dtype=np.float64).reshape(-1)
    known = y_all >= 0
    y, s = y_all[known], s_all[known]
    n_pos = int(y.sum())
    both = 0 < n_pos < len(y)
    flagged = s >= threshold
    tp = int((flagged & (y == 1)).sum())
    n_flagged = int(flagged.sum())
    result: dict[str, float] = {
        "auroc": float(roc_auc_score(y, s)) if both else math.nan,
        "auprc": float(average_precision_score(y, s)) if n_pos else math.nan,
        "recall_at_1pct_fpr": recall_at_fpr(y, s, 0.01) if both else math.nan,
        "precision_at_threshold": tp / n_flagged if n_flagged else 0.0,
        "recall_at_threshold": tp / n_pos if n_pos else math.nan,
        "fleet_recall": math.nan,
        "ece": expected_calibration_error(y, s),
        "n": float(len(y)),
        "n_positive": float(n_pos),
        "n_flagged": float(n_flagged),
        "n_fleets": 0.0,
    }
    if fleets is not None:
        f = np.asarray(fleets).astype(np.int64).reshape(-1)[known]
        value, n_fleets = fleet_recall(flagged, f)
        result["fleet_recall"], result["n_fleets"] = value, float(n_fleets)
    if prevalence is not None or n_boot:
        from sybilgnn.measures.population import population_metrics

        result.update(population_metrics(y, s, threshold, prevalence=prevalence,
                                         n_boot=n_boot, seed=seed))
    return result
