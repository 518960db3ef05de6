"""The deployed model learns from every label known when it is trained.

``train`` fits on the time split's oldest labels and measures on the newer ones: that run
chooses the number of epochs (early stopping on validation), the calibration and the
threshold, and its held-out metrics are the honest ones. The model that is registered is
then refitted on *all* labelled accounts (the newest labels included: campaigns change) for
exactly the chosen number of epochs, with the same settings and seed, and carries the
selection run's preprocessing; its calibration and threshold are cross-fitted on every
label (``training.crossfit``), since the validation slice alone is too small to hold an
operating point at the population's prevalence. ``fitted_on`` records what was
fitted on which labels; the selection run travels with the model so the promotion gate can
score labels the registered weights have not seen.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from sybilgnn.config import ModelSettings, Settings, TrainSettings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError
from sybilgnn.training.calibration import apply_calibrator
from sybilgnn.training.companion import CompanionFeatures, companion_features, fit_companion
from sybilgnn.training.crossfit import (CrossFit, operating_point, out_of_fold_logits,
                                        quantile_knots)
from sybilgnn.training.inputs import (AccountLabels, GraphInputs, account_labels, graph_inputs,
                                      labels_through,
                                      resolve_device, resolve_settings)
from sybilgnn.training.loop import FullGraphFit, TrainResult, _copy_state, seeded
from sybilgnn.training.predict import load_model, model_target, predict_logits
from sybilgnn.training.prevalence import audit_estimate

__all__ = ["refit_on_all_labels", "quantile_map"]


def quantile_map(refit_logits: np.ndarray, selection_logits: np.ndarray,
                 calibrator: dict[str, Any]) -> dict[str, Any]:
    """A calibrator for the refit: its logits mapped onto the selection run's by quantile
    over the same accounts, then the selection run's calibration.

    The two models rank the population alike but their logits live on different scales
    (more labels, same epochs), so the selection run's calibration and threshold apply to
    the refit only once the scales are matched. The match uses the population's scores,
    not labels, so nothing the metrics rest on is reused.
    """
    x, y = quantile_knots(refit_logits, selection_logits)
    return {"method": "quantile_map", "x": x.tolist(), "y": y.tolist(), "then": calibrator}


def fit_for_epochs(inputs: GraphInputs, y_all: np.ndarray, model_cfg: ModelSettings,
                   cfg: TrainSettings, labelled: np.ndarray, epochs: int, device: torch.device,
                   target: str, fleets: np.ndarray | None = None
                   ) -> tuple[torch.nn.Module, np.ndarray, list[dict[str, float]]]:
    """Train ``model_cfg`` on the labels ``y_all`` of ``labelled`` (indices of ``target``
    nodes) for exactly ``epochs`` full-graph epochs, seeded; the model, every target node's
    logit, the history. ``inputs`` are built once by the caller and shared by the refit and
    its folds; ``fleets`` (labelled fleet per node) weights the loss under
    ``train.balance_fleets``."""
    history: list[dict[str, float]] = []
    with seeded(cfg.seed):
        fit = FullGraphFit.start(inputs, model_cfg, cfg, target, y_all, labelled, fleets, device)
        for epoch in range(1, epochs + 1):
            tick = time.perf_counter()
            history.append({"epoch": epoch, "loss": fit.step(),
                            "seconds": time.perf_counter() - tick})
        logits = fit.logits()
    return fit.model, logits, history


def refit_on_all_labels(snapshot: Snapshot, settings: Settings, selection: TrainResult, *,
                        params: dict[str, Any] | None = None) -> TrainResult:
    """Train the selection run's configuration on every labelled account for its best
    number of epochs. Calibration and threshold are cross-fitted on every label
    (``train.crossfit_folds``; 0 or too few labels: the selection's validation slice);
    preprocessing and the held-out metrics stay the selection's."""
    model_cfg, cfg = resolve_settings(settings, params)
    if cfg.sampler != "full":
        raise InputError("train.refit_on_all_labels needs train.sampler=full; set "
                         "train.refit_on_all_labels=false for neighbour sampling")
    device = resolve_device(cfg.device)
    snapshot = selection.preprocessor.transform(snapshot)
    target = model_target(selection.model_config)
    labels = account_labels(snapshot, target)
    labelled = _labelled_both_classes(labels)
    epochs = max(1, int(selection.best_epoch))
    started = time.perf_counter()
    inputs = graph_inputs(snapshot, device)
    model, refit_logits, history = fit_for_epochs(inputs, labels.y, model_cfg, cfg, labelled,
                                                  epochs, device, target, labels.fleets)
    # what the trees read depends on the snapshot alone: once for the refit, the selection
    # run and every fold
    features = companion_features(snapshot, model_cfg.companion)
    companion, refit_logits = fit_companion(features, refit_logits, labels.y, labelled,
                                            cfg.seed, model_cfg.companion_max_lift)
    selection_logits = _selection_logits(selection, snapshot, device, features)
    crossfit, calibrator, prevalence = _crossfit(
        features, inputs, model_cfg, cfg, labels, epochs, selection, selection_logits,
        refit_logits, device, target)
    through = labels_through(snapshot)  # every label, so the gate needs newer ones
    fitted_on = _fitted_on(cfg, labels, epochs, through, crossfit, companion is not None)
    threshold, threshold_info, metrics = _operating_point(selection, crossfit, prevalence)
    return replace(selection, state_dict=_copy_state(model), history=history,
                   calibrator=calibrator, threshold=threshold, threshold_info=threshold_info,
                   metrics=metrics, companion=companion,
                   epochs_run=epochs, train_seconds=time.perf_counter() - started,
                   selection=selection, fitted_on=fitted_on, labels_through=through)


def _labelled_both_classes(labels: AccountLabels) -> np.ndarray:
    """Every labelled account's row; refuses labels of one class, which nothing can be
    fitted on."""
    labelled = np.flatnonzero(labels.y >= 0)
    if labelled.size == 0 or labels.y[labelled].min() == labels.y[labelled].max():
        raise InputError("refit on all labels: the snapshot needs labelled fake and legit "
                         "accounts")
    return labelled


def _selection_logits(selection: TrainResult, snapshot: Snapshot, device: torch.device,
                      features: CompanionFeatures | None) -> np.ndarray:
    """The selection run's logits on this snapshot (its companion fused in): the scale its
    calibration and threshold were chosen on, which the refit's logits are mapped onto."""
    logits = predict_logits(load_model(selection.model_config, selection.state_dict),
                            snapshot, str(device))
    if selection.companion is not None:
        logits = selection.companion.fuse(
            logits, companion_features(snapshot) if features is None else features)
    return logits


def _fitted_on(cfg: TrainSettings, labels: AccountLabels, epochs: int, through: float | None,
               crossfit: CrossFit | None, with_companion: bool) -> dict[str, str]:
    """What the refit fitted on which labels, for the model's record."""
    labelled = np.flatnonzero(labels.y >= 0)
    n_accounts = len(labels.y)
    fitted_on = {
        "weights": f"all {labelled.size} labelled accounts "
                   f"({int((labels.y[labelled] == 1).sum())} fake), labels through {through}",
        "epochs": f"{epochs}: the best epoch of the time-split run (early stopping on "
                  f"{int(labels.masks['val'].sum())} validation labels)",
        "calibration_and_threshold": (
            "the time-split run's validation slice" if crossfit is None else
            f"out-of-fold logits of all {crossfit.positives + crossfit.negatives} labelled "
            f"accounts ({crossfit.folds} folds"
            + (", a labelled fleet in one fold)" if cfg.crossfit_group_fleets else ")"))
            + ", reweighted to train.prevalence; the refit's logits are mapped onto the "
              f"time-split run's by quantile over all {n_accounts} accounts (no labels)",
        "metrics": "the time-split run's held-out slices (val, test, holdout)"
                   + ("" if crossfit is None else "; the operating point's: out-of-fold "
                      "(split crossfit)"),
        "preprocessing": "the training snapshot's raw columns (no labels)",
    }
    if with_companion:
        fitted_on["companion"] = (f"trees on all {labelled.size} labelled accounts; their "
                                  "scale map onto the refit's GNN logits over all "
                                  f"{n_accounts} accounts (no labels)")
    return fitted_on


def _operating_point(selection: TrainResult, crossfit: CrossFit | None,
                     prevalence: dict[str, Any]
                     ) -> tuple[float, dict[str, Any], dict[str, dict[str, float]]]:
    """Threshold, its description and the metrics: the cross-fitted ones where there are
    any (the selection's threshold kept for reference), else the selection run's."""
    if crossfit is None:
        return selection.threshold, selection.threshold_info, selection.metrics
    threshold_info = {**crossfit.threshold_info, **prevalence,
                      "validation_threshold": selection.threshold}
    return (float(crossfit.threshold_info["threshold"]), threshold_info,
            {**selection.metrics, "crossfit": crossfit.metrics})


def _crossfit(features: CompanionFeatures | None, inputs: GraphInputs, model_cfg: ModelSettings,
              cfg: TrainSettings, labels: AccountLabels, epochs: int, selection: TrainResult,
              selection_logits: np.ndarray, refit_logits: np.ndarray, device: torch.device,
              target: str) -> tuple[CrossFit | None, dict[str, Any], dict[str, Any]]:
    """The cross-fitted operating point, the refit's calibrator and where the prevalence
    came from. With a random audit the prevalence is estimated again with the registered
    model's own cross-fitted probabilities: sharper on the audited accounts than the
    time-split run's validation calibration, so the interval the operating rule averages
    over narrows (on four development worlds from +-107 expected fakes on average to
    +-69)."""
    info = selection.threshold_info
    prevalence = {key: info.get(key) for key in ("prevalence_source", "prevalence_lo",
                                                 "prevalence_hi")}
    fitted = None
    if cfg.crossfit_folds >= 2:
        def fit_fold(train_on: np.ndarray) -> np.ndarray:
            logits = fit_for_epochs(inputs, labels.y, model_cfg, cfg, train_on, epochs,
                                    device, target, labels.fleets)[1]
            return fit_companion(features, logits, labels.y, train_on, cfg.seed,
                                 model_cfg.companion_max_lift)[1]

        fitted = out_of_fold_logits(labels, fit_fold, selection_logits,
                                    folds=cfg.crossfit_folds, seed=cfg.seed,
                                    group_fleets=cfg.crossfit_group_fleets)
    if fitted is None:
        return None, quantile_map(refit_logits, selection_logits, selection.calibrator), \
            prevalence

    def choose(share: float | None, interval: tuple[float, float] | None) -> CrossFit:
        return operating_point(labels, *fitted, selection_logits, method=cfg.calibration,
                               target_precision=cfg.target_precision, prevalence=share,
                               n_boot=cfg.bootstrap, seed=cfg.seed,
                               prevalence_interval=interval, rule=cfg.operating_rule)

    crossfit = choose(info.get("prevalence"), _interval(info))
    calibrator = quantile_map(refit_logits, selection_logits, crossfit.calibrator)
    again = (audit_estimate(cfg, apply_calibrator(calibrator, refit_logits), labels,
                            by=" with the registered model's cross-fitted probabilities")
             if info.get("prevalence") is not None else None)
    if again is not None:
        share, interval, source = again
        crossfit = choose(share, interval)
        calibrator = quantile_map(refit_logits, selection_logits, crossfit.calibrator)
        prevalence = {"prevalence_source": source, "prevalence_lo": interval[0],
                      "prevalence_hi": interval[1]}
    return crossfit, calibrator, prevalence


def _interval(info: dict[str, Any]) -> tuple[float, float] | None:
    """The selection run's prevalence interval (None for a run saved without one)."""
    if info.get("prevalence_lo") is None or info.get("prevalence_hi") is None:
        return None
    return float(info["prevalence_lo"]), float(info["prevalence_hi"])
