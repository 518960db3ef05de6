"""The share of fakes a model is evaluated and thresholded at: from the random audit (with
the model's own probabilities), else ``train.prevalence``, else an estimate from the
unlabelled accounts; and the one fixed weighting the tuning objective uses for all trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sybilgnn.config import TrainSettings
from sybilgnn.errors import InputError
from sybilgnn.training.calibration import apply_calibrator, fit_calibrator, prevalence_weights
from sybilgnn.training.inputs import AccountLabels

__all__ = ["audit_estimate", "objective_prevalence", "population_prevalence"]


def objective_prevalence(cfg: TrainSettings, labels: AccountLabels, prevalence: float
                         ) -> float:
    """The prevalence the tuning objective weighs validation at: one that no trial's model
    moves, so every trial of a study is scored on the same weighting (the operating point's
    model-assisted estimate differs from trial to trial by noise). The random audit's plain
    share of fakes when it counts and holds one, else ``train.prevalence``, else the model's own
    estimate (``prevalence``)."""
    if _usable_audit(cfg, labels) is not None:
        audited = labels.audit >= 0
        share = float((labels.audit[audited] == 1).mean())
        if share > 0:  # an audit without a fake would weigh every fake at zero
            return share
    return float(cfg.prevalence) if cfg.prevalence is not None else float(prevalence)


def population_prevalence(cfg: TrainSettings, logits: np.ndarray, labels: Any
                          ) -> tuple[float, tuple[float, float], str]:
    """The share of fakes the operating point and the metrics assume, its 95 % interval
    (the point twice where nothing measured it), and where it came from: a random audit in
    the labels (``train.prevalence_from_audit``, at least ``MIN_AUDITED`` audited
    accounts) estimated with this model's predictions; else ``train.prevalence``; else an
    EM estimate from the unlabelled accounts' probabilities."""
    from sybilgnn.measures.population import estimate_prevalence

    val = labels.masks["val"]
    y_val = labels.y[val]
    if _usable_audit(cfg, labels) is not None and y_val.size:
        base = cfg.prevalence if cfg.prevalence is not None else float(y_val.mean())
        predicted = apply_calibrator(fit_calibrator(
            logits[val], y_val, cfg.calibration, prevalence_weights(y_val, base)), logits)
        estimated = audit_estimate(cfg, predicted, labels)
        assert estimated is not None
        return estimated
    if cfg.prevalence is not None:
        return float(cfg.prevalence), (float(cfg.prevalence),) * 2, "train.prevalence"
    unlabelled = labels.y < 0
    if not unlabelled.any() or y_val.size == 0:
        raise InputError("train.prevalence is null and there are no unlabelled accounts to "
                         "estimate it from; set train.prevalence")
    plain = apply_calibrator(fit_calibrator(logits[val], y_val, cfg.calibration),
                             logits[unlabelled])
    estimate = estimate_prevalence(plain, float(y_val.mean()))
    return (estimate, (estimate, estimate),
            f"estimated from {int(unlabelled.sum())} unlabelled accounts")


def audit_estimate(cfg: TrainSettings, probs: np.ndarray, labels: Any, *, by: str = ""
                   ) -> tuple[float, tuple[float, float], str] | None:
    """The random audit's model-assisted prevalence with ``probs`` (every account's
    calibrated probability), its 95 % interval and a description (``by`` names the model);
    None without ``train.prevalence_from_audit`` or ``MIN_AUDITED`` audited accounts. The
    sharper the probabilities on the audited accounts, the narrower the interval."""
    from sybilgnn.measures.population import audit_prevalence

    n_audited = _usable_audit(cfg, labels)
    if n_audited is None:
        return None
    audit = labels.audit
    estimate, lo, hi = audit_prevalence(probs, labels.y, audit)
    return estimate, (lo, hi), (f"audit of {n_audited} accounts ({int((audit == 1).sum())} "
                                f"fake), model-assisted{by}: {estimate:.4f} "
                                f"[{lo:.4f}, {hi:.4f}]")


def _usable_audit(cfg: TrainSettings, labels: AccountLabels) -> int | None:
    """How many accounts the random audit reviewed, or None where the prevalence may not
    rest on it (``train.prevalence_from_audit`` off, or fewer than ``MIN_AUDITED``): the
    one place that decides whether the audit counts."""
    from sybilgnn.measures.population import MIN_AUDITED

    n_audited = int((labels.audit >= 0).sum())
    if not cfg.prevalence_from_audit or n_audited < MIN_AUDITED:
        return None
    return n_audited
