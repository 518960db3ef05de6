"""Metrics as an analyst's queue will see them: at the population's prevalence, with intervals.

Labelled sets hold far more fakes than the population (investigations label fakes, reviews
label a sample of legitimate accounts), so precision and AUPRC measured on them as they are
overstate what the queue holds. Each labelled account is therefore weighted so that fakes
make up ``prevalence`` of the weight (AUROC, recall and recall at a false-positive rate do
not depend on the class mix and are unchanged). Every metric carries a 95% interval from a
stratified bootstrap (fakes and legitimate accounts resampled apart, so every resample keeps
both classes), and a metric resting on too few accounts is NaN with its counts, which the
report prints as "not measurable".
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = ["MIN_POSITIVES", "MIN_NEGATIVES_AT_1PCT_FPR", "INTERVAL_METRICS",
           "population_metrics", "recall_at_budget", "audit_prevalence", "MIN_AUDITED", "estimate_prevalence", "class_weights", "weighted_log_loss",
           "log_loss_interval"]

MIN_POSITIVES = 10             # fewer fakes: precision, recall, AUPRC are not measurable
MIN_NEGATIVES_AT_1PCT_FPR = 100  # fewer legitimate accounts: 1% FPR is below one account
MIN_AUDITED = 200              # a smaller audit leaves the prevalence to train.prevalence
INTERVAL_METRICS = ("auroc", "auprc", "recall_at_1pct_fpr", "precision_at_threshold",
                    "recall_at_threshold", "ece")


def class_weights(y: np.ndarray, prevalence: float | None) -> np.ndarray:
    """Per-account weights giving fakes ``prevalence`` of the total (ones when None)."""
    y = np.asarray(y).astype(np.int64)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if prevalence is None or n_pos == 0 or n_neg == 0:
        return np.ones(len(y), dtype=np.float64)
    return np.where(y == 1, prevalence / n_pos, (1.0 - prevalence) / n_neg) * len(y)


def _recall_at_fpr(y: np.ndarray, s: np.ndarray, max_fpr: float) -> float:
    fpr, tpr, _ = roc_curve(y, s)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def _ece(y: np.ndarray, p: np.ndarray, w: np.ndarray, bins: int = 10) -> float:
    index = np.minimum((np.clip(p, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(index, weights=w * y, minlength=bins)
                 - np.bincount(index, weights=w * p, minlength=bins))
    return float(gap.sum() / w.sum())


def _point(y: np.ndarray, s: np.ndarray, threshold: float, prevalence: float | None
           ) -> dict[str, float]:
    """All metrics of one (re)sample; only recall where one class is missing."""
    w = class_weights(y, prevalence)
    flagged = s >= threshold
    weighted_flags = float(w[flagged].sum())
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_neg == 0:
        return {**{m: math.nan for m in INTERVAL_METRICS},
                "recall_at_threshold": float(flagged.sum()) / n_pos
                if n_pos >= MIN_POSITIVES else math.nan}
    enough_pos = n_pos >= MIN_POSITIVES
    return {
        "auroc": float(roc_auc_score(y, s)) if enough_pos else math.nan,
        "auprc": float(average_precision_score(y, s, sample_weight=w)) if enough_pos
        else math.nan,
        "recall_at_1pct_fpr": _recall_at_fpr(y, s, 0.01)
        if enough_pos and n_neg >= MIN_NEGATIVES_AT_1PCT_FPR else math.nan,
        "precision_at_threshold": (float(w[flagged & (y == 1)].sum()) / weighted_flags
                                   if weighted_flags > 0 else 0.0) if enough_pos else math.nan,
        "recall_at_threshold": float((flagged & (y == 1)).sum()) / n_pos if enough_pos
        else math.nan,
        "ece": _ece(y.astype(np.float64), s, w) if enough_pos else math.nan,
    }


def population_metrics(y: np.ndarray, scores: np.ndarray, threshold: float, *,
                       prevalence: float | None, n_boot: int = 200, seed: int = 0
                       ) -> dict[str, float]:
    """Point values at ``prevalence`` plus ``<metric>_lo`` / ``<metric>_hi`` (95% bootstrap
    interval; NaN when ``n_boot`` is 0 or the metric is not measurable), and the counts."""
    y = np.asarray(y).astype(np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    out: dict[str, float] = {"n": float(len(y)), "n_positive": float(n_pos),
                             "n_negative": float(n_neg),
                             "prevalence": math.nan if prevalence is None else float(prevalence)}
    if n_pos == 0:
        out.update({m: math.nan for m in INTERVAL_METRICS})
        out.update({f"{m}_{e}": math.nan for m in INTERVAL_METRICS for e in ("lo", "hi")})
        return out
    out.update(_point(y, s, threshold, prevalence))
    draws = _bootstrap(y, s, threshold, prevalence, n_boot, seed)
    for metric in INTERVAL_METRICS:
        values = np.asarray([d[metric] for d in draws], dtype=np.float64)
        values = values[~np.isnan(values)]
        ok = values.size > 0 and not math.isnan(out[metric])
        out[f"{metric}_lo"] = float(np.quantile(values, 0.025)) if ok else math.nan
        out[f"{metric}_hi"] = float(np.quantile(values, 0.975)) if ok else math.nan
    return out


def _bootstrap(y: np.ndarray, s: np.ndarray, threshold: float, prevalence: float | None,
               n_boot: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    draws = []
    for _ in range(n_boot):
        rows = np.concatenate([rng.choice(pos, pos.size),
                               rng.choice(neg, neg.size) if neg.size else neg])
        draws.append(_point(y[rows], s[rows], threshold, prevalence))
    return draws


def recall_at_budget(scores: np.ndarray, positives: np.ndarray, candidates: np.ndarray,
                     prevalence: float, *, n_boot: int = 200, seed: int = 0
                     ) -> dict[str, float]:
    """Share of ``positives`` ranked within the top ``ceil(prevalence * candidates)`` of the
    ``candidates``: what a review queue as long as the fakes the population is expected to
    hold would show of them.

    Why beside recall at 1% FPR: that figure counts every labelled legitimate account ranked
    above a fake as a false positive, and about 1% of such labels are fakes the platform
    missed, so a model that finds them is punished (one or two of them fill a 1% budget over
    ~150 labels). No labelled legitimate account enters this figure; a legitimate account
    costs recall only by taking a slot in the queue. Ties at the cut share the remaining
    slots (expected recall under a random tie-break), so a coarse score gains nothing.
    The interval is a bootstrap over the positives; fewer than ``MIN_POSITIVES`` gives NaN.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    cand = np.asarray(candidates, dtype=bool).reshape(-1)
    pos = np.asarray(positives, dtype=bool).reshape(-1) & cand
    n_cand, n_pos = int(cand.sum()), int(pos.sum())
    budget = min(n_cand, max(1, math.ceil(prevalence * n_cand))) if n_cand else 0
    out = {"budget": float(budget), "budget_positives": float(n_pos)}
    if n_pos < MIN_POSITIVES or budget == 0:
        return {**out, "recall_at_budget": math.nan, "recall_at_budget_lo": math.nan,
                "recall_at_budget_hi": math.nan}
    cut = float(np.sort(s[cand])[::-1][budget - 1])
    above = int((s[cand] > cut).sum())
    tied = int((s[cand] == cut).sum())
    share_of_tied = (budget - above) / tied
    per_positive = np.where(s[pos] > cut, 1.0, np.where(s[pos] == cut, share_of_tied, 0.0))
    out["recall_at_budget"] = float(per_positive.mean())
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        draws = per_positive[rng.integers(0, n_pos, size=(n_boot, n_pos))].mean(axis=1)
        out["recall_at_budget_lo"] = float(np.quantile(draws, 0.025))
        out["recall_at_budget_hi"] = float(np.quantile(draws, 0.975))
    else:
        out["recall_at_budget_lo"] = out["recall_at_budget_hi"] = math.nan
    return out


def audit_prevalence(predicted: np.ndarray, y: np.ndarray, audit_y: np.ndarray
                     ) -> tuple[float, float, float]:
    """The population's share of fakes, (estimate, lo, hi), from a random audit.

    ``y`` holds the labels the model may learn from (-1 none), ``audit_y`` the verdicts of
    an audit drawn uniformly from the accounts without such a label (-1 not audited), and
    ``predicted`` the model's probability for every account. Labelled fakes are counted;
    the share among the other accounts is the model's mean prediction there corrected by
    the audit's mean residual (the difference estimator of model-assisted survey sampling,
    Särndal, Swensson and Wretman 1992): unbiased whatever the model, and as tight as the
    model is right on the audited accounts. The audit alone, at 1,000 accounts and 2 %
    fakes, would leave about ±0.9 points; a model that is right on all but a few audited
    accounts narrows that to a fraction of a point. The interval is the normal one of the
    residual mean.
    """
    p = np.asarray(predicted, dtype=np.float64).reshape(-1)
    y = np.asarray(y).reshape(-1)
    audit_y = np.asarray(audit_y).reshape(-1)
    rest = y < 0
    audited = audit_y >= 0
    residual = audit_y[audited] - p[audited]
    share = float(p[rest].mean() + residual.mean())
    half = 1.96 * float(residual.std(ddof=1)) / math.sqrt(residual.size)
    known, n_rest, n = float((y == 1).sum()), float(rest.sum()), float(y.size)

    def total(s: float) -> float:
        return (known + n_rest * min(max(s, 0.0), 1.0)) / n

    return total(share), total(share - half), total(share + half)


def estimate_prevalence(probs: np.ndarray, labelled_prior: float, *, iterations: int = 100,
                        tolerance: float = 1e-6) -> float:
    """The share of fakes in a population, from probabilities calibrated on labelled data
    whose share of fakes was ``labelled_prior`` (EM re-estimation of the class prior,
    Saerens, Latinne and Decaestecker, Neural Computation 2002)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-9, 1 - 1e-9)
    prior0 = min(max(labelled_prior, 1e-6), 1 - 1e-6)
    prior = prior0
    for _ in range(iterations):
        up = p * (prior / prior0)
        down = (1 - p) * ((1 - prior) / (1 - prior0))
        new = float(np.mean(up / (up + down)))
        if abs(new - prior) < tolerance:
            return new
        prior = new
    return prior


def weighted_log_loss(y: np.ndarray, probs: np.ndarray, weights: np.ndarray) -> float:
    """Mean cross-entropy of probabilities, each account weighted (a proper scoring rule:
    it keeps separating models after their ranking is perfect)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y, dtype=np.float64)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float(np.sum(weights * loss) / np.sum(weights))


def log_loss_interval(y: np.ndarray, probs: np.ndarray, prevalence: float | None, *,
                      n_boot: int = 200, seed: int = 0) -> tuple[float, float, float]:
    """Log loss at ``prevalence`` and its 95% stratified-bootstrap interval (NaN without
    both classes)."""
    y = np.asarray(y).astype(np.int64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if pos.size == 0 or neg.size == 0:
        return math.nan, math.nan, math.nan
    value = weighted_log_loss(y, p, class_weights(y, prevalence))
    if n_boot <= 0:
        return value, math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        rows = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        draws.append(weighted_log_loss(y[rows], p[rows], class_weights(y[rows], prevalence)))
    return value, float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))
