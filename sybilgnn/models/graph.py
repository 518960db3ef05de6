"""Per-relation sparse adjacency, built once per graph and reused every epoch.

Message passing for ``sage`` and ``graph`` layers is a sparse-dense product with a CSR
matrix (rows = destination nodes). The backward pass multiplies by the transposed CSR,
which is built once too; measured on CPU (100k accounts, 300k edges, 64 channels) this is
about 3x faster than the gather/scatter path and 2x faster than autograd through
``torch.sparse.mm`` (which transposes on every backward). ``max`` falls back to
``scatter_reduce``. Structural inputs (constant + log degrees per relation) are computed
here too, so nodes with few or no features still get an input and the model stays
inductive: nothing in it belongs to a particular node.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

__all__ = ["EdgeType", "RelationGraph", "PreparedGraph", "prepare_graph", "Aggregation"]

EdgeType = tuple[str, str, str]
Aggregation = Literal["weighted_mean", "mean", "sum", "max"]


class _CsrSpmm(torch.autograd.Function):
    """``adj @ x`` whose backward uses a precomputed ``adj.T`` (no per-step transpose)."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj_t = adj_t
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor | None]:  # type: ignore[override]
        if not ctx.needs_input_grad[2]:
            return None, None, None
        return None, None, ctx.adj_t @ grad.contiguous()


CsrLayout = tuple[Tensor, Tensor, Tensor]  # (edge order, crow indices, col indices)


def csr_layout(rows: Tensor, cols: Tensor, shape: tuple[int, int]) -> CsrLayout:
    """The structure of a CSR matrix over edges (``rows[e]``, ``cols[e]``), values aside."""
    order = torch.argsort(rows * max(shape[1], 1) + cols, stable=True)
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
    return order, crow, cols[order]


def csr_with_values(layout: CsrLayout, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """The CSR matrix of ``layout`` holding per-edge ``values`` (given in edge order)."""
    order, crow, col = layout
    with warnings.catch_warnings():  # "CSR support is in beta": it is what we measured fastest
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values[order], size=shape,
                                       check_invariants=False)


def _csr(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    return csr_with_values(csr_layout(rows, cols, shape), values, shape)


@dataclass
class RelationGraph:
    """One edge type: ``edge_index`` (row 0 source, row 1 destination) and weights."""

    edge_index: Tensor
    edge_weight: Tensor
    num_src: int
    num_dst: int
    _csr_cache: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict, repr=False)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.size(1))

    def _values(self, how: str) -> Tensor:
        dst, w = self.edge_index[1], self.edge_weight
        if how == "sum":
            return w
        if how == "weighted_mean":
            denom = torch.zeros(self.num_dst, dtype=w.dtype, device=w.device).index_add_(0, dst, w)
        else:  # mean over edges of weighted messages, as GraphConv(aggr='mean')
            denom = torch.bincount(dst, minlength=self.num_dst).to(w.dtype)
        return w / denom.clamp(min=1e-12)[dst]

    def adjacency(self, how: str) -> tuple[Tensor, Tensor]:
        """CSR ``[num_dst, num_src]`` and its transpose, values normalised for ``how``."""
        if how not in self._csr_cache:
            src, dst = self.edge_index[0], self.edge_index[1]
            values = self._values(how)
            self._csr_cache[how] = (
                _csr(dst, src, values, (self.num_dst, self.num_src)),
                _csr(src, dst, values, (self.num_src, self.num_dst)),
            )
        return self._csr_cache[how]

    def aggregate(self, x_src: Tensor, how: Aggregation) -> Tensor:
        """Aggregate source rows into destination rows, weighted by ``edge_weight``."""
        if how == "max":
            src, dst = self.edge_index[0], self.edge_index[1]
            messages = x_src[src] * self.edge_weight.unsqueeze(-1)
            out = x_src.new_zeros(self.num_dst, x_src.size(1))
            index = dst.unsqueeze(-1).expand_as(messages)
            return out.scatter_reduce(0, index, messages, reduce="amax", include_self=False)
        adj, adj_t = self.adjacency(how)
        return _CsrSpmm.apply(adj, adj_t, x_src)  # type: ignore[no-any-return]

    def degree_features(self) -> Tensor:
        """``[num_dst, 2]``: log1p(edge count), log1p(weighted degree)."""
        dst, w = self.edge_index[1], self.edge_weight
        count = torch.bincount(dst, minlength=self.num_dst).to(w.dtype)
        weighted = torch.zeros(self.num_dst, dtype=w.dtype, device=w.device).index_add_(0, dst, w)
        return torch.stack([count.log1p(), weighted.clamp(min=0).log1p()], dim=1)


@dataclass
class PreparedGraph:
    """Everything structural a forward pass needs, computed once per graph."""

    relations: dict[EdgeType, RelationGraph]
    num_nodes: dict[str, int]
    _structural: dict[str, Tensor] = field(default_factory=dict, repr=False)

    def structural(self, node_type: str, edge_types: list[EdgeType]) -> Tensor:
        """Constant 1 plus two log-degree columns per incoming relation (model's order)."""
        if node_type not in self._structural:
            n = self.num_nodes[node_type]
            device = next(iter(self.relations.values())).edge_weight.device if self.relations \
                else torch.device("cpu")
            cols = [torch.ones(n, 1, device=device)]
            for et in edge_types:
                if et[2] != node_type:
                    continue
                rel = self.relations.get(et)
                cols.append(rel.degree_features() if rel is not None
                            else torch.zeros(n, 2, device=device))
            self._structural[node_type] = torch.cat(cols, dim=1)
        return self._structural[node_type]


def prepare_graph(
    edge_index_dict: dict[EdgeType, Tensor],
    edge_weight_dict: dict[EdgeType, Tensor] | None,
    num_nodes: dict[str, int],
) -> PreparedGraph:
    """Wrap each edge type; missing weights are 1."""
    relations: dict[EdgeType, RelationGraph] = {}
    for et, edge_index in edge_index_dict.items():
        weight = (edge_weight_dict or {}).get(et)
        if weight is None:
            weight = torch.ones(edge_index.size(1), device=edge_index.device)
        relations[et] = RelationGraph(
            edge_index=edge_index.long(), edge_weight=weight.float().view(-1),
            num_src=num_nodes[et[0]], num_dst=num_nodes[et[2]])
    return PreparedGraph(relations=relations, num_nodes=dict(num_nodes))
