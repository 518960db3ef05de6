"""Gradient-boosting baselines in the same harness as the GNN (same splits, metrics, threshold).

``hgb_features``: the labelled nodes' (accounts') features alone. ``hgb_neighbours``: plus
neighbour aggregates per relation (degrees, weighted mean and max of neighbours' features,
strongest edge weight) and two hops through shared nodes of other types, e.g. IPs and
payments (mean features and size of the groups an account shares an IP or card with). A
GNN that does not beat these is not done.
"""

from __future__ import annotations


import numpy as np
import torch

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.models.graph import prepare_graph
from sybilgnn.models.trees import gradient_boosting
from sybilgnn.training.calibration import (apply_calibrator, choose_threshold, fit_calibrator,
                                           prevalence_weights)
from sybilgnn.training.inputs import account_labels, graph_inputs
from sybilgnn.training.loop import split_metrics
from sybilgnn.training.report import report_table

__all__ = ["run_baselines", "neighbour_features", "fit_gradient_boosting", "report_table",
           "BASELINE_NAMES"]

BASELINE_NAMES = ("hgb_features", "hgb_neighbours")


@torch.no_grad()
def neighbour_features(snapshot: Snapshot, node_type: str | None = None
                       ) -> tuple[np.ndarray, list[str]]:
    """Features of the labelled nodes (``node_type``, by default the snapshot's labelled
    type) plus 1- and 2-hop neighbour aggregates, with column names."""
    target = snapshot.labelled_type if node_type is None else node_type
    inputs = graph_inputs(snapshot)
    num_nodes = {nt: int(x.size(0)) for nt, x in inputs.x_dict.items()}
    graph = prepare_graph(inputs.edge_index_dict, inputs.edge_weight_dict, num_nodes)
    x = inputs.x_dict
    cols, names = [x[target]], [f"x{i}" for i in range(x[target].size(1))]

    def add(block: torch.Tensor, prefix: str) -> None:
        cols.append(block)
        names.extend(f"{prefix}_{i}" for i in range(block.size(1)))

    for et, rel in graph.relations.items():
        if et[2] != target:
            continue
        src, name = et[0], et[1]
        add(rel.degree_features(), f"{name}_deg")
        add(rel.aggregate(torch.ones(num_nodes[src], 1), "max"), f"{name}_maxw")
        if x[src].size(1):
            add(rel.aggregate(x[src], "weighted_mean"), f"{name}_mean")
            add(rel.aggregate(x[src], "max"), f"{name}_max")
        if src == target:
            continue
        forward = next((r for e, r in graph.relations.items() if e[0] == target and e[2] == src),
                       None)
        if forward is None:
            continue
        # per shared node (IP / card): its accounts' mean features and its size, then back
        group = torch.cat([forward.aggregate(x[target], "weighted_mean"),
                           forward.degree_features()], dim=1)
        add(rel.aggregate(group, "weighted_mean"), f"{name}_2hop_mean")
        add(rel.aggregate(group, "max"), f"{name}_2hop_max")
    return torch.cat(cols, dim=1).numpy(), names


def fit_gradient_boosting(features: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int
                          ) -> np.ndarray:
    """The baselines' model, fitted on the ``train`` rows: every row's decision value."""
    model = gradient_boosting(seed)
    model.fit(features[train], y[train])
    return np.asarray(model.decision_function(features), dtype=np.float64)


def run_baselines(snapshot: Snapshot, settings: Settings, *, prevalence: float | None = None
                  ) -> dict[str, dict[str, dict[str, float]]]:
    """Both baselines: model name -> split -> metrics, calibrated and thresholded on val, at
    the GNN's population prevalence (``prevalence``, else ``train.prevalence``)."""
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
        chosen = choose_threshold(labels.y[val], probs[val], settings.train.target_precision,
                                  weights)
        results[name] = split_metrics(labels, probs, chosen["threshold"], prevalence=prevalence,
                                      logits=logits,
                                      n_boot=settings.train.bootstrap, seed=settings.train.seed)
    return results


