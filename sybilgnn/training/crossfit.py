"""Cross-fitted calibration and threshold: the operating point rests on every label.

The time split's validation slice holds a few dozen fakes and a few dozen legitimate
accounts; a threshold chosen there at a 2 % prevalence moves by whole points with one
account, and on a world where the model ranked every fake first it still left most of the
unlabelled fakes unflagged. Here every labelled account is scored by a model that never saw
its label: the labelled accounts are split into ``train.crossfit_folds`` folds (stratified;
with ``train.crossfit_group_fleets`` the members of one labelled fleet stay in one fold, the
conservative choice where new fleets dominate), one model per fold
is trained on the others with the refit's settings and epochs, and its logits are mapped by
quantile onto the selection run's scale. Calibration is then fitted on those out-of-fold
logits of all labelled accounts, reweighted to the population's prevalence, and the
threshold comes from the queue's expected fakes (the prevalence and its interval), the
held-out recall of the labelled fakes and how many accounts it flags
(``calibration.population_threshold``, ``train.operating_rule``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from sybilgnn.training.calibration import (apply_calibrator, choose_threshold, fit_calibrator,
                                           population_threshold, prevalence_weights)
from sybilgnn.training.inputs import AccountLabels
from sybilgnn.training.metrics import evaluate

__all__ = ["CrossFit", "crossfit_folds", "map_by_quantile", "operating_point",
           "out_of_fold_logits", "quantile_knots"]

QUANTILES = 2001

# (labelled account indices to train on) -> logits of every account
FitFold = Callable[[np.ndarray], np.ndarray]


@dataclass
class CrossFit:
    calibrator: dict[str, Any]       # on the selection run's logit scale
    threshold_info: dict[str, Any]
    metrics: dict[str, float]        # out-of-fold, at the population's prevalence
    folds: int
    positives: int
    negatives: int


def quantile_knots(logits: np.ndarray, onto: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the monotone map that moves ``logits`` onto the scale of ``onto`` quantile
    for quantile (same accounts, no labels): two models that rank alike but whose logits
    differ in scale become comparable."""
    grid = np.linspace(0.0, 1.0, QUANTILES)
    x = np.quantile(np.asarray(logits, dtype=np.float64), grid)
    y = np.quantile(np.asarray(onto, dtype=np.float64), grid)
    x, first = np.unique(x, return_index=True)  # np.interp needs increasing x
    return x, y[first]


def map_by_quantile(logits: np.ndarray, onto: np.ndarray) -> np.ndarray:
    """``logits`` on the scale of ``onto`` (``quantile_knots``)."""
    x, y = quantile_knots(logits, onto)
    return np.interp(np.asarray(logits, dtype=np.float64), x, y)


def crossfit_folds(labels: AccountLabels, folds: int, seed: int,
                   group_fleets: bool = False) -> list[np.ndarray] | None:
    """Held-out account indices per fold, or None when the labels cannot fill two folds
    with both classes. With ``group_fleets`` the members of one labelled fleet share a fold
    (its held-out scores are then those of a fleet never seen, not of a known one)."""
    labelled = np.flatnonzero(labels.y >= 0)
    y = labels.y[labelled]
    groups = labelled.copy()  # every account its own group ...
    if group_fleets and labels.fleets is not None:
        fleet = labels.fleets[labelled]
        in_fleet = fleet >= 0
        groups[in_fleet] = -1 - fleet[in_fleet]  # ... except labelled fleet members
    pos_groups = len(np.unique(groups[y == 1]))
    neg_groups = len(np.unique(groups[y == 0]))
    k = min(folds, pos_groups, neg_groups)
    if k < 2:
        return None
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class" when fleets are few
        warnings.simplefilter("ignore", UserWarning)
        return [labelled[held] for _, held in splitter.split(labelled, y, groups)]


def out_of_fold_logits(labels: AccountLabels, fit_fold: FitFold,
                       selection_logits: np.ndarray, *, folds: int, seed: int,
                       group_fleets: bool = False) -> tuple[np.ndarray, int] | None:
    """Every labelled account's logit from a fold model that did not see its label, on the
    selection run's scale (NaN for the other accounts), and the number of folds; None when
    the labels are too few for two folds."""
    held_out = crossfit_folds(labels, folds, seed, group_fleets)
    if held_out is None:
        return None
    labelled = np.flatnonzero(labels.y >= 0)
    out_of_fold = np.full(len(labels.y), np.nan)
    for held in held_out:
        train_on = np.setdiff1d(labelled, held, assume_unique=True)
        out_of_fold[held] = map_by_quantile(fit_fold(train_on), selection_logits)[held]
    return out_of_fold, len(held_out)


def operating_point(labels: AccountLabels, out_of_fold: np.ndarray, folds: int,
                    selection_logits: np.ndarray, *, method: str, target_precision: float,
                    prevalence: float | None, n_boot: int, seed: int,
                    prevalence_interval: tuple[float, float] | None = None,
                    rule: str = "precision") -> CrossFit:
    """Calibration and threshold on the out-of-fold logits, at ``prevalence``; cheap, so
    a caller can choose again once the prevalence is better known."""
    labelled = np.flatnonzero(labels.y >= 0)
    y = labels.y[labelled]
    z = out_of_fold[labelled]
    weights = prevalence_weights(y, prevalence)
    calibrator = fit_calibrator(z, y, method, weights)
    probs = apply_calibrator(calibrator, z)
    if prevalence is None:
        chosen = choose_threshold(y, probs, target_precision, weights)
    else:  # the deployed scores share the selection run's distribution (quantile map)
        undecided = labels.undecided

        def expected(share: float) -> float:
            return max(share * len(labels.y) - labels.known_fakes, 0.0)

        low, high = prevalence_interval or (prevalence, prevalence)
        chosen = population_threshold(
            probs[y == 1], apply_calibrator(calibrator, selection_logits[undecided]),
            expected(prevalence), target_precision,
            expected_interval=(expected(low), expected(high)), rule=rule)
        chosen["queue"] = int(undecided.sum())
    n_pos, n_neg = int(y.sum()), int((y == 0).sum())
    chosen.update({"prevalence": prevalence, "source": f"cross-fitted, {folds} folds",
                   "positives": n_pos, "negatives": n_neg})
    fleets = None if labels.fleets is None else labels.fleets[labelled]
    metrics = evaluate(y, probs, chosen["threshold"], fleets, prevalence=prevalence,
                       n_boot=n_boot, seed=seed)
    return CrossFit(calibrator, chosen, metrics, folds, n_pos, n_neg)

