"""Relation-specific convolutions that take a ``RelationGraph`` as their edge argument.

``sage``: GraphSAGE update, ``lin_neigh(agg) + lin_root(x_dst)``, where ``agg`` with
``aggr=mean`` is the *weighted mean* of neighbours (weights normalised per destination to
sum to 1). PyG's SAGEConv ignores edge weights, so it is not used.
``graph``: GraphConv's formula, ``lin_rel(sum_j w_ij x_j) + lin_root(x_i)`` with raw
weights (``aggr=mean`` divides by the edge count, as GraphConv does), so it stays
sensitive to how many accounts share an IP.
``gat``: PyG ``GATConv`` with the edge weight as a one-dimensional edge feature; attention
is a softmax per destination, so ``aggr`` does not apply to it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv

from sybilgnn.models.graph import Aggregation, RelationGraph

__all__ = ["WeightedRelationConv", "GATRelationConv", "make_relation_conv"]

_SAGE_AGG: dict[str, Aggregation] = {"mean": "weighted_mean", "sum": "sum", "max": "max"}
_GRAPH_AGG: dict[str, Aggregation] = {"mean": "mean", "sum": "sum", "max": "max"}


def _pair(x: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    return x if isinstance(x, tuple) else (x, x)


class WeightedRelationConv(nn.Module):
    """``lin_neigh(aggregate_w(x_src)) + lin_root(x_dst)`` over one relation."""

    def __init__(self, in_src: int, in_dst: int, out: int, how: Aggregation) -> None:
        super().__init__()
        self.how = how
        self.lin_neigh = nn.Linear(in_src, out, bias=True)
        self.lin_root = nn.Linear(in_dst, out, bias=False)

    def forward(self, x: Tensor | tuple[Tensor, Tensor], graph: RelationGraph) -> Tensor:
        x_src, x_dst = _pair(x)
        return self.lin_neigh(graph.aggregate(x_src, self.how)) + self.lin_root(x_dst)


class GATRelationConv(nn.Module):
    """``GATConv`` on a bipartite relation, edge weight as edge feature, no self loops."""

    def __init__(self, in_src: int, in_dst: int, out: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.conv = GATConv((in_src, in_dst), out, heads=heads, concat=False, edge_dim=1,
                            add_self_loops=False, dropout=dropout)

    def forward(self, x: Tensor | tuple[Tensor, Tensor], graph: RelationGraph) -> Tensor:
        out = self.conv(_pair(x), graph.edge_index, edge_attr=graph.edge_weight.unsqueeze(-1))
        assert isinstance(out, torch.Tensor)
        return out


def make_relation_conv(layer_type: str, aggr: str, hidden: int, *, heads: int = 1,
                       dropout: float = 0.0) -> nn.Module:
    """One convolution (hidden -> hidden) of the configured type."""
    if layer_type == "sage":
        return WeightedRelationConv(hidden, hidden, hidden, _SAGE_AGG[aggr])
    if layer_type == "graph":
        return WeightedRelationConv(hidden, hidden, hidden, _GRAPH_AGG[aggr])
    if layer_type == "gat":
        return GATRelationConv(hidden, hidden, hidden, heads, dropout)
    raise ValueError(f"model.layer_type: unknown {layer_type!r}; use sage, gat or graph")
