"""The heterogeneous GNN that scores accounts, and the sparse graph it runs on."""

from __future__ import annotations

from sybilgnn.models.backends import has_neighbor_sampler, sampler_backend
from sybilgnn.models.graph import EdgeType, PreparedGraph, RelationGraph, prepare_graph
from sybilgnn.models.sybil_gnn import TARGET_NODE_TYPE, SybilGNN, build_model

__all__ = [
    "SybilGNN",
    "build_model",
    "TARGET_NODE_TYPE",
    "EdgeType",
    "PreparedGraph",
    "RelationGraph",
    "prepare_graph",
    "has_neighbor_sampler",
    "sampler_backend",
]
