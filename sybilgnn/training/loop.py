"""Full-graph training with early stopping on validation AUPRC, then calibration and threshold.

The sparse adjacency is built once and reused every epoch. Runs are seeded and use
deterministic algorithms, so the same seed on the same machine gives identical scores.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score
from torch import Tensor

from sybilgnn.config import ModelSettings, Settings, TrainSettings
from sybilgnn.data.preprocessing import Preprocessor
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError
from sybilgnn.measures.population import log_loss_interval, recall_at_budget
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.models import PreparedGraph, SybilGNN, build_model
from sybilgnn.models.backends import require_neighbor_sampler
from sybilgnn.training.calibration import (apply_calibrator, choose_threshold, fit_calibrator,
                                           prevalence_weights)
from sybilgnn.training.companion import companion_features, fit_companion
from sybilgnn.training.inputs import (AccountLabels, GraphInputs, account_labels, graph_inputs,
                                      labels_through, resolve_device, resolve_settings)
from sybilgnn.training.metrics import evaluate
from sybilgnn.training.prevalence import objective_prevalence, population_prevalence

__all__ = ["TrainResult", "train", "make_loss", "fleet_weights", "seeded"]

EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """Everything needed to rebuild, score with, and report on a trained model."""

    state_dict: dict[str, Tensor]
    model_config: dict[str, Any]
    calibrator: dict[str, Any]
    threshold: float
    history: list[dict[str, float]]
    best_epoch: int
    epochs_run: int
    metrics: dict[str, dict[str, float]]
    feature_names: dict[str, list[str]]
    feature_stats: dict[str, dict[str, list[float]]]
    snapshot_hash: str
    preprocessor: Preprocessor
    threshold_info: dict[str, Any] = field(default_factory=dict)
    train_settings: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    train_seconds: float = 0.0
    # The latest label time the weights were fitted on (epoch seconds): the gate scores a
    # model only on labels that arrived after it.
    labels_through: float | None = None
    fitted_on: dict[str, str] = field(default_factory=dict)  # what was fitted on which labels
    selection: TrainResult | None = None  # the time-split run a refit took its settings from
    companion: Any = None  # TreeCompanion under model.companion=trees, fused into the logits
    id_map_schema: dict[str, str] = field(default_factory=dict)  # node type -> key property
    # The validation slice's labels and calibrated probabilities: tuning compares trials
    # on the same rows (a paired comparison), which separates what independent intervals
    # cannot.
    val_labels: np.ndarray | None = None
    val_probs: np.ndarray | None = None


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch and switch on deterministic algorithms for the block, then restore."""
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)


def make_loss(cfg: TrainSettings, y_train: Tensor) -> Callable[..., Tensor]:
    """Weighted BCE (pos_weight = negatives / positives) or class-balanced focal loss; the
    returned loss takes optional per-sample weights (``fleet_weights``)."""
    n_pos = float(y_train.sum())
    n_neg = float(len(y_train)) - n_pos
    if cfg.loss == "weighted_bce":
        pos_weight = torch.tensor(n_neg / max(n_pos, 1.0), device=y_train.device)
        return lambda z, y, weight=None: F.binary_cross_entropy_with_logits(
            z, y, weight=weight, pos_weight=pos_weight)
    alpha_pos = n_neg / max(n_pos + n_neg, 1.0)
    gamma = cfg.focal_gamma

    def focal(z: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        bce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        p_true = torch.exp(-bce)
        alpha = y * alpha_pos + (1 - y) * (1 - alpha_pos)
        each = alpha * (1 - p_true) ** gamma * bce
        if weight is not None:
            each = each * weight
        return each.sum() / max(alpha_pos * n_pos * 2, 1.0)

    return focal


def fleet_weights(y: np.ndarray, fleets: np.ndarray | None) -> np.ndarray:
    """Per-sample loss weights under ``train.balance_fleets``: every labelled fleet's fakes
    share one fleet's worth of weight, so a campaign of 140 accounts does not teach seven
    times what one of 20 does; fakes in no fleet and legitimate accounts weigh 1. The fakes'
    weights average 1, so the class balance is unchanged."""
    weight = np.ones(len(y), dtype=np.float64)
    if fleets is None:
        return weight
    fleeted = (y == 1) & (fleets >= 0)
    if not fleeted.any():
        return weight
    ids, inverse, sizes = np.unique(fleets[fleeted], return_inverse=True, return_counts=True)
    weight[fleeted] = (fleeted.sum() / len(ids)) / sizes[inverse]
    fakes = y == 1
    weight[fakes] /= weight[fakes].mean()
    return weight


def _auprc(y: np.ndarray, scores: np.ndarray) -> float:
    if y.sum() == 0:
        return math.nan
    return float(average_precision_score(y, scores))


def _check_labels(masks: dict[str, np.ndarray], y: np.ndarray) -> None:
    for split in ("train", "val"):
        ys = y[masks[split]]
        if ys.size == 0 or ys.min() == ys.max():
            raise InputError(
                f"snapshot: the {split} split needs labelled fake and legit accounts, it has "
                f"{int((ys == 1).sum())} fake and {int((ys == 0).sum())} legit; add labels or "
                "change split.train_fraction / split.val_fraction")


def _copy_state(model: torch.nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


@dataclass
class FullGraphFit:
    """A model, its prepared graph, optimiser and loss over one set of labelled accounts:
    what every full-graph epoch reuses, so the sparse adjacency is built once. ``train``
    and the refit on all labels (and its folds) start their models the same way."""

    model: SybilGNN
    inputs: GraphInputs
    graph: PreparedGraph
    index: Tensor                      # the labelled rows the loss reads
    y: Tensor                          # their labels, as floats
    opt: torch.optim.Optimizer
    loss_fn: Callable[..., Tensor]
    weight: Tensor | None              # per-sample weights under train.balance_fleets

    @classmethod
    def start(cls, inputs: GraphInputs, model_cfg: ModelSettings, cfg: TrainSettings,
              target: str, y_all: np.ndarray, labelled: np.ndarray,
              fleets: np.ndarray | None, device: torch.device) -> FullGraphFit:
        """Build the model (its initial weights come from torch's seed: call inside
        ``seeded``) and the loss on the labels ``y_all`` of the rows ``labelled``."""
        model = build_model(inputs.metadata, inputs.in_dims, model_cfg, target=target).to(device)
        graph = model.prepare(inputs.x_dict, inputs.edge_index_dict, inputs.edge_weight_dict)
        index = torch.from_numpy(labelled).to(device)
        y = torch.from_numpy(y_all).to(device)[index].float()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = make_loss(cfg, y)
        weight = (torch.from_numpy(fleet_weights(
            y_all[labelled], None if fleets is None else fleets[labelled])).float().to(device)
            if cfg.balance_fleets else None)
        return cls(model, inputs, graph, index, y, opt, loss_fn, weight)

    def step(self) -> float:
        """One full-graph epoch; the training loss."""
        self.model.train()
        self.opt.zero_grad()
        logits = self.model.forward_prepared(self.inputs.x_dict, self.graph)
        loss = self.loss_fn(logits[self.index], self.y, self.weight)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def logits(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The model's logits (every target node, or ``rows``) in eval mode, on the CPU."""
        self.model.eval()
        with torch.no_grad():
            logits = self.model.forward_prepared(self.inputs.x_dict, self.graph)
            return (logits if rows is None else logits[rows]).cpu().numpy()


def _sampled_epoch(model: SybilGNN, snapshot: Snapshot, train_idx: Tensor, cfg: TrainSettings,
                   opt: torch.optim.Optimizer, loss_fn: Callable[[Tensor, Tensor], Tensor],
                   device: torch.device) -> float:
    """One epoch over neighbour-sampled mini-batches (needs pyg-lib or torch-sparse)."""
    from torch_geometric.loader import NeighborLoader

    loader = NeighborLoader(snapshot.data, num_neighbors=[cfg.num_neighbors] * len(model.convs),
                            input_nodes=(model.target, train_idx), batch_size=cfg.batch_size,
                            shuffle=True)
    total, seen = 0.0, 0
    for batch in loader:
        inputs = graph_inputs_from(batch, device)
        size = int(batch[model.target].batch_size)
        opt.zero_grad()
        logits = model(*inputs)[:size]
        loss = loss_fn(logits, batch[model.target].y[:size].float().to(device))
        loss.backward()
        opt.step()
        total, seen = total + float(loss.detach()) * size, seen + size
    return total / max(seen, 1)


def graph_inputs_from(batch: Any, device: torch.device) -> tuple[dict[str, Tensor], dict[Any, Tensor],
                                                                 dict[Any, Tensor]]:
    x = {nt: batch[nt].x.float().to(device) if "x" in batch[nt]
         else torch.zeros(batch[nt].num_nodes, 0, device=device) for nt in batch.node_types}
    ei = {et: batch[et].edge_index.to(device) for et in batch.edge_types}
    ew = {et: batch[et].edge_weight.float().to(device) for et in batch.edge_types}
    return x, ei, ew


def train(snapshot: Snapshot, settings: Settings, *, params: dict[str, Any] | None = None,
          trial: Any = None, epoch_callback: EpochCallback | None = None) -> TrainResult:
    """Train, early-stop on validation AUPRC, calibrate on validation, pick the threshold.

    ``trial`` (optuna) gets ``report(val_auprc, epoch)`` each epoch and the run raises
    ``optuna.TrialPruned`` when it says to prune.
    """
    model_cfg, cfg = resolve_settings(settings, params)
    device = resolve_device(cfg.device)
    schema = GraphSchema.from_settings(settings)
    schema.check_snapshot(snapshot)
    # Fitted here, once, and saved with the weights: every later snapshot the model meets is
    # encoded by this object (an export's own matrices already are: then nothing is redone).
    preprocessor = Preprocessor.fit(snapshot)
    snapshot = preprocessor.transform(snapshot)
    labels = account_labels(snapshot, schema.labelled)
    _check_labels(labels.masks, labels.y)
    started = time.perf_counter()
    with seeded(cfg.seed):
        fit = FullGraphFit.start(graph_inputs(snapshot, device), model_cfg, cfg,
                                 schema.labelled, labels.y,
                                 np.flatnonzero(labels.masks["train"]), labels.fleets, device)
        history, best_epoch, best_state = _early_stopped(fit, snapshot, labels, cfg, device,
                                                         trial, epoch_callback)
        logits_all = fit.logits()
    # the companion learns from the same slice as the GNN's weights
    companion, logits_all = fit_companion(
        companion_features(snapshot, model_cfg.companion), logits_all, labels.y,
        np.flatnonzero(labels.masks["train"]), cfg.seed, model_cfg.companion_max_lift)
    chosen, calibrator, probs = _validation_operating_point(cfg, logits_all, labels)
    return TrainResult(
        state_dict=best_state, model_config=fit.model.config_dict(), calibrator=calibrator,
        threshold=float(chosen["threshold"]), history=history, best_epoch=best_epoch,
        epochs_run=len(history), metrics=_held_out_metrics(cfg, labels, probs, logits_all, chosen),
        feature_names=preprocessor.feature_names,
        feature_stats=preprocessor.feature_stats, snapshot_hash=snapshot.content_hash,
        preprocessor=preprocessor, companion=companion,
        threshold_info=chosen, train_settings=cfg.model_dump(mode="json"), device=str(device),
        train_seconds=time.perf_counter() - started,
        labels_through=labels_through(snapshot, labels.masks["train"]),
        id_map_schema=schema.id_map_schema, fitted_on=_fitted_on(labels, companion),
        val_labels=labels.y[labels.masks["val"]].astype(np.int8),
        val_probs=probs[labels.masks["val"]].astype(np.float64))


def _early_stopped(fit: FullGraphFit, snapshot: Snapshot, labels: AccountLabels,
                   cfg: TrainSettings, device: torch.device, trial: Any,
                   epoch_callback: EpochCallback | None
                   ) -> tuple[list[dict[str, float]], int, dict[str, Tensor]]:
    """Epochs until validation AUPRC has not improved for ``train.patience`` epochs (and
    ``train.min_epochs`` have run); the model ends on the best epoch's weights. Returns the
    history, the best epoch and its weights."""
    val_idx = np.flatnonzero(labels.masks["val"])
    y_val = labels.y[val_idx]
    if cfg.sampler == "neighbor":
        require_neighbor_sampler()
    history: list[dict[str, float]] = []
    best_auprc, best_epoch, best_state = -math.inf, 0, _copy_state(fit.model)
    for epoch in range(1, cfg.epochs + 1):
        tick = time.perf_counter()
        if cfg.sampler == "neighbor":
            fit.model.train()
            loss_value = _sampled_epoch(fit.model, snapshot, fit.index.cpu(), cfg, fit.opt,
                                        fit.loss_fn, device)
        else:
            loss_value = fit.step()
        val_auprc = _auprc(y_val, fit.logits(val_idx))
        record = {"epoch": epoch, "loss": loss_value, "val_auprc": val_auprc,
                  "seconds": time.perf_counter() - tick}
        history.append(record)
        _report_epoch(record, epoch_callback, trial)
        if val_auprc > best_auprc + 1e-9:
            best_auprc, best_epoch, best_state = val_auprc, epoch, _copy_state(fit.model)
        elif epoch - best_epoch >= cfg.patience and epoch >= cfg.min_epochs:
            break
    fit.model.load_state_dict(best_state)
    return history, best_epoch, best_state


def _report_epoch(record: dict[str, float], epoch_callback: EpochCallback | None,
                  trial: Any) -> None:
    """Hand an epoch to the caller's callback and to optuna, which may prune the run here
    (``optuna.TrialPruned``)."""
    if epoch_callback is not None:
        epoch_callback(dict(record))
    if trial is not None:
        import optuna

        epoch, val_auprc = record["epoch"], record["val_auprc"]
        trial.report(val_auprc, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} (val AUPRC {val_auprc:.4f})")


def _validation_operating_point(cfg: TrainSettings, logits: np.ndarray, labels: AccountLabels
                                ) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
    """Calibration and threshold on the validation slice, reweighted to the population's
    prevalence (the labelled set holds far more fakes than the population the threshold
    serves). Returns the threshold's description, the calibrator and every account's
    calibrated probability."""
    val_idx = np.flatnonzero(labels.masks["val"])
    y_val = labels.y[val_idx]
    prevalence, prevalence_interval, prevalence_source = population_prevalence(
        cfg, logits, labels)
    weights = prevalence_weights(y_val, prevalence)
    calibrator = fit_calibrator(logits[val_idx], y_val, cfg.calibration, weights)
    probs = apply_calibrator(calibrator, logits)
    chosen = choose_threshold(y_val, probs[val_idx], cfg.target_precision, weights)
    chosen.update({"prevalence": prevalence, "prevalence_source": prevalence_source,
                   "prevalence_lo": prevalence_interval[0],
                   "prevalence_hi": prevalence_interval[1],
                   "val_positives": int(y_val.sum()), "val_negatives": int((y_val == 0).sum())})
    return chosen, calibrator, probs


def _held_out_metrics(cfg: TrainSettings, labels: AccountLabels, probs: np.ndarray,
                      logits: np.ndarray, chosen: dict[str, Any]
                      ) -> dict[str, dict[str, float]]:
    """``split_metrics`` at the operating point, and validation's log loss with its
    interval."""
    prevalence = chosen["prevalence"]
    metrics = split_metrics(labels, probs, chosen["threshold"], prevalence=prevalence,
                            logits=logits, n_boot=cfg.bootstrap, seed=cfg.seed)
    # The tuning objective: a proper scoring rule on validation at the population's
    # prevalence, which keeps separating trials after their ranking is perfect.
    val_idx = np.flatnonzero(labels.masks["val"])
    weighting = objective_prevalence(cfg, labels, prevalence)
    loss, loss_lo, loss_hi = log_loss_interval(labels.y[val_idx], probs[val_idx], weighting,
                                               n_boot=cfg.bootstrap, seed=cfg.seed)
    metrics.setdefault("val", {}).update({"log_loss": loss, "log_loss_lo": loss_lo,
                                          "log_loss_hi": loss_hi,
                                          "log_loss_prevalence": weighting})
    return metrics


def _fitted_on(labels: AccountLabels, companion: Any) -> dict[str, str]:
    """What the time-split run fitted on which labels, for the model's record."""
    return {"weights": f"the time split's train slice ({int(labels.masks['train'].sum())} "
                       "labels)",
            "epochs": "early stopping on the validation slice",
            "calibration_and_threshold": "the validation slice, reweighted to "
                                         "train.prevalence",
            **({} if companion is None else {
                "companion": "trees on the train slice's labels; their scale map onto "
                             f"the GNN's logits over all {len(labels.y)} accounts"})}


def split_metrics(labels: Any, probs: np.ndarray, threshold: float, *,
                  prevalence: float | None = None, n_boot: int = 0, seed: int = 0,
                  logits: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """``evaluate`` on val, test and holdout (splits with no labelled account are left out),
    at ``prevalence`` with ``n_boot`` bootstrap resamples for the intervals. Recall in
    queue ranks by ``logits`` when given: the model's own order, with no calibration's
    plateaus or ties in between."""
    out: dict[str, dict[str, float]] = {}
    # the queue: every account the model did not learn from (train and val excluded)
    unseen = ~(labels.masks["train"] | labels.masks["val"])
    for split in ("val", "test", "holdout"):
        mask = labels.masks[split]
        if not mask.any():
            continue
        fleets = None if labels.fleets is None else labels.fleets[mask]
        out[split] = evaluate(labels.y[mask], probs[mask], threshold, fleets,
                              prevalence=prevalence, n_boot=n_boot, seed=seed)
        if split != "val" and prevalence is not None:
            out[split].update(recall_at_budget(probs if logits is None else logits,
                                               mask & (labels.y == 1), unseen, prevalence,
                                               n_boot=n_boot, seed=seed))
    return out
