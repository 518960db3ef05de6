"""Neighbour aggregates: what gradient boosting reads where the GNN passes messages.

The labelled nodes' own features plus, per relation, degrees and the weighted mean and max
of the neighbours' features, and two hops through shared nodes of other types (the mean
features and size of the groups an account shares an IP or card with). The
``hgb_neighbours`` baseline (``sybilgnn.training.baselines``) and the GNN's tree companion
(``sybilgnn.training.companion``) both read them.
"""

from __future__ import annotations

import numpy as np
import torch

from sybilgnn.data.snapshot import Snapshot
from sybilgnn.models.graph import prepare_graph
from sybilgnn.training.inputs import graph_inputs

__all__ = ["neighbour_features"]


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
        add(rel.degree_features(), f"{name}:deg")
        add(rel.aggregate(torch.ones(num_nodes[src], 1), "max"), f"{name}:maxw")
        if x[src].size(1):
            add(rel.aggregate(x[src], "weighted_mean"), f"{name}:mean")
            add(rel.aggregate(x[src], "max"), f"{name}:max")
        if src == target:
            continue
        forward = next((r for e, r in graph.relations.items() if e[0] == target and e[2] == src),
                       None)
        if forward is None:
            continue
        # per shared node (IP / card): its accounts' mean features and its size, then back
        group = torch.cat([forward.aggregate(x[target], "weighted_mean"),
                           forward.degree_features()], dim=1)
        add(rel.aggregate(group, "weighted_mean"), f"{name}:2hop_mean")
        add(rel.aggregate(group, "max"), f"{name}:2hop_max")
    return torch.cat(cols, dim=1).numpy(), names
