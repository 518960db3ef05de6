"""The heterogeneous GNN: per-type input projection, residual HeteroConv stack, a head on
the labelled node type (accounts on the default schema).

No parameter belongs to a node, so the model scores accounts it never saw (inductive):
every node type gets its own features (none, or only those configured for it), a constant
and log-degree inputs. The labelled node type is part of the model's config, so a model
refuses a graph whose labels live elsewhere.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import HeteroConv

from sybilgnn.config import ModelSettings
from sybilgnn.errors import InputError
from sybilgnn.graph_schema import DEFAULT_LABELLED_TYPE
from sybilgnn.models.convs import make_relation_conv
from sybilgnn.models.graph import EdgeType, PreparedGraph, prepare_graph

__all__ = ["SybilGNN", "build_model", "TARGET_NODE_TYPE"]

#: The node type a model scores when its config does not say (models saved before it did).
TARGET_NODE_TYPE = DEFAULT_LABELLED_TYPE


def _norm(kind: str, dim: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    return nn.Identity()


def _read_relations(edge_types: list[tuple[str, ...]], relations: list[str]
                    ) -> list[tuple[str, ...]]:
    """The edge types of ``relations`` (a relation's reverse included); an unknown name is
    an error rather than a model that silently reads less."""
    names = {et[1].removeprefix("rev_") for et in edge_types}
    unknown = sorted(set(relations) - names)
    if unknown:
        raise InputError(f"model.relations: {unknown} are not relations of the graph "
                         f"({sorted(names)})")
    return [et for et in edge_types if et[1].removeprefix("rev_") in relations]


class SybilGNN(nn.Module):
    """Logits of the ``target`` nodes (the labelled type) from a heterogeneous graph."""

    def __init__(self, metadata: tuple[list[str], list[EdgeType]], in_dims: dict[str, int],
                 cfg: ModelSettings, *, target: str = TARGET_NODE_TYPE) -> None:
        super().__init__()
        node_types, edge_types = list(metadata[0]), [tuple(et) for et in metadata[1]]
        if cfg.relations is not None:
            edge_types = _read_relations(edge_types, cfg.relations)
        if target not in node_types:
            raise ValueError(f"metadata has no {target!r} node type to score: {node_types}")
        self.target = target
        self.node_types: list[str] = node_types
        self.edge_types: list[EdgeType] = edge_types  # type: ignore[assignment]
        self.cfg = cfg
        self.in_dims = {nt: int(in_dims.get(nt, 0)) for nt in node_types}
        hidden = cfg.hidden
        self.input_proj = nn.ModuleDict({
            nt: nn.Linear(self.in_dims[nt] + self.structural_dim(nt), hidden) for nt in node_types})
        self.input_norm = nn.ModuleDict({nt: _norm(cfg.norm, hidden) for nt in node_types})
        needed = self._needed_destinations(cfg.layers)
        with warnings.catch_warnings():  # "node types not updated": intended in later layers
            warnings.filterwarnings("ignore", message="There exist node types")
            self.convs = nn.ModuleList(
                HeteroConv({et: make_relation_conv(cfg.layer_type, cfg.aggr, hidden,
                                                   heads=cfg.heads, dropout=cfg.dropout)
                            for et in self.edge_types if et[2] in needed[layer]}, aggr="sum")
                for layer in range(cfg.layers))
        self.norms = nn.ModuleList(
            nn.ModuleDict({nt: _norm(cfg.norm, hidden) for nt in node_types if nt in needed[layer]})
            for layer in range(cfg.layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(hidden, 1))

    def _needed_destinations(self, layers: int) -> list[set[str]]:
        """Node types whose update in layer ``l`` can still reach a target logit.

        The last layer only updates the target type; skipping the rest saves compute and
        leaves no parameter without a gradient.
        """
        needed = [{self.target}]
        for _ in range(layers - 1):
            grown = set(needed[0]) | {et[0] for et in self.edge_types if et[2] in needed[0]}
            needed.insert(0, grown)
        return needed

    def structural_dim(self, node_type: str) -> int:
        return 1 + 2 * sum(1 for et in self.edge_types if et[2] == node_type)

    def prepare(self, x_dict: dict[str, Tensor], edge_index_dict: dict[EdgeType, Tensor],
                edge_weight_dict: dict[EdgeType, Tensor] | None = None) -> PreparedGraph:
        """Build the sparse adjacency once; reuse it across epochs with ``forward_prepared``."""
        num_nodes: dict[str, int] = {}
        for nt in self.node_types:
            if nt in x_dict:
                num_nodes[nt] = int(x_dict[nt].size(0))
            else:
                ends = [int(ei[0 if et[0] == nt else 1].max()) + 1
                        for et, ei in edge_index_dict.items() if nt in (et[0], et[2]) and ei.numel()]
                num_nodes[nt] = max(ends, default=0)
        known = {et: ei for et, ei in edge_index_dict.items() if tuple(et) in self.edge_types}
        return prepare_graph(known, edge_weight_dict, num_nodes)

    def forward(self, x_dict: dict[str, Tensor], edge_index_dict: dict[EdgeType, Tensor],
                edge_weight_dict: dict[EdgeType, Tensor] | None = None) -> Tensor:
        """Target logits ``[N_target]``."""
        return self.forward_prepared(x_dict, self.prepare(x_dict, edge_index_dict, edge_weight_dict))

    def forward_prepared(self, x_dict: dict[str, Tensor], graph: PreparedGraph) -> Tensor:
        h: dict[str, Tensor] = {}
        for nt in self.node_types:
            structural = graph.structural(nt, self.edge_types)
            x = x_dict.get(nt)
            if x is None or x.size(1) == 0:
                x = structural.new_zeros(structural.size(0), self.in_dims[nt])
            elif self.training and nt == self.target and self.cfg.feature_dropout > 0:
                keep = torch.rand(x.size(1), device=x.device) >= self.cfg.feature_dropout
                x = x * keep.to(x.dtype)
            h[nt] = torch.relu(self.input_norm[nt](self.input_proj[nt](
                torch.cat([x.to(structural.dtype), structural], dim=1))))
            h[nt] = self.dropout(h[nt])
        for conv, norms in zip(self.convs, self.norms):
            messages = conv(h, graph.relations)
            updated: dict[str, Tensor] = {}
            for nt, prev in h.items():
                m = messages.get(nt)
                if m is None:
                    updated[nt] = prev
                    continue
                m = self.dropout(torch.relu(norms[nt](m)))
                updated[nt] = prev + m if self.cfg.residual else m
            h = updated
        return self.head(h[self.target]).squeeze(-1)

    def config_dict(self) -> dict[str, Any]:
        """Plain JSON-able description that ``load_model`` rebuilds the module from."""
        return {
            "metadata": [list(self.node_types), [list(et) for et in self.edge_types]],
            "in_dims": dict(self.in_dims),
            "target": self.target,
            "model": self.cfg.model_dump(mode="json"),
        }


def build_model(metadata: tuple[list[str], list[EdgeType]], in_dims: dict[str, int],
                cfg: ModelSettings, *, target: str = TARGET_NODE_TYPE) -> SybilGNN:
    """The SybilGNN for a graph (``HeteroData.metadata()``), feature widths and the node
    type it scores (``GraphSchema.labelled``)."""
    return SybilGNN(metadata, in_dims, cfg, target=target)
