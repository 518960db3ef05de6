"""Why an account was flagged: its own features, relation types and neighbours that drove it.

Accounts are the labelled node type and relations are named by their Neo4j relationship
types, both read from ``GraphSchema`` (the default schema's when none is given).

One forward and one backward pass explain every flagged account at once, on the k-hop
subgraph around them (exact for a k-layer GNN):

- own features: gradient x input on the normalised features (baseline = the mean account);
- relations and neighbours: gradient of a per-edge mask of ones that PyG's explain hooks
  multiply into every message (``set_hetero_masks``); an edge's value is how much the
  flagged accounts' logits depend on the messages it carries into the account.

For ``sybilgnn.models.SybilGNN`` (whose sage/graph layers aggregate with a CSR product that
has no gradient for edge values) the prepared relations are swapped for a masked twin: the
same CSR product with the mask multiplied into each normalised value, whose backward gives
each edge's mask gradient chunk by chunk (logits unchanged, memory bounded). Its subgraph has
as many hops as the model has layers, with the outermost nodes' degree inputs taken from the
whole graph; at 1M accounts and 10k flagged this is ~6x faster than a gather/scatter twin on
a subgraph one hop larger.

The gradient is that of the sum of the flagged accounts' logits, so a feature or edge of one
flagged account also counts what it does to its flagged neighbours (in a fleet, the same
evidence). Models without per-edge-type message-passing modules fall back to removing each
relation in turn (relation shares only, no neighbours). captum is not needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch_geometric.data import HeteroData
from torch_geometric.explain.algorithm.utils import clear_masks, set_hetero_masks
from torch_geometric.nn import HeteroConv, MessagePassing

from sybilgnn.graph_schema import EdgeType, GraphSchema
from sybilgnn.models.graph import (Aggregation, CsrLayout, RelationGraph, csr_layout,
                                   csr_with_values)

__all__ = ["AccountEvidence", "explain_accounts", "khop_subset"]


@dataclass(frozen=True)
class AccountEvidence:
    features: list[str]
    relations: list[str]
    neighbours: list[str]
    summary: str

    def as_properties(self) -> dict[str, object]:
        return {"features": self.features, "relations": self.relations,
                "neighbours": self.neighbours, "summary": self.summary}


def _count_hops(model: torch.nn.Module) -> int:
    """Layers of per-edge-type message passing (HeteroConv or to_hetero); 2 when unknown."""
    layers = sum(1 for m in model.modules() if isinstance(m, HeteroConv))
    if layers == 0:
        layers = sum(1 for m in model.modules() if isinstance(m, torch.nn.ModuleDict)
                     and len(m) > 0 and all(isinstance(c, MessagePassing) for c in m.values()))
    return layers or 2


class _MaskedSpmm(torch.autograd.Function):
    """``A(values * mask) @ x`` as a CSR product, differentiable in ``x`` and in ``mask``.

    An edge's mask gradient is ``values[e] * <grad_out[dst[e]], x[src[e]]>``, computed over
    chunks of edges, so no ``[edges, channels]`` message tensor is ever held whole (the
    gather/scatter alternative keeps several for the backward pass: gigabytes at 1M accounts).
    """

    @staticmethod
    def forward(ctx: Any, rel: _MaskedRelation, values: torch.Tensor,  # type: ignore[override]
                x_src: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ctx.rel, ctx.values = rel, values
        ctx.save_for_backward(x_src, mask)
        return rel.csr(values * mask, transposed=False) @ x_src

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor  # type: ignore[override]
                 ) -> tuple[None, None, torch.Tensor | None, torch.Tensor | None]:
        x_src, mask = ctx.saved_tensors
        rel, values = ctx.rel, ctx.values
        grad = grad.contiguous()
        grad_x = None
        if ctx.needs_input_grad[2]:
            grad_x = rel.csr(values * mask, transposed=True) @ grad
        grad_mask = None
        if ctx.needs_input_grad[3]:
            src, dst = rel.edge_index[0], rel.edge_index[1]
            grad_mask = torch.empty_like(mask)
            for lo in range(0, src.numel(), _EDGE_CHUNK):
                hi = lo + _EDGE_CHUNK
                grad_mask[lo:hi] = (grad[dst[lo:hi]] * x_src[src[lo:hi]]).sum(dim=1)
            grad_mask *= values
        return None, None, grad_x, grad_mask


_EDGE_CHUNK = 1 << 18


@dataclass
class _MaskedRelation(RelationGraph):
    """A ``RelationGraph`` whose aggregation is differentiable in a per-edge mask."""

    mask: torch.Tensor | None = None
    _layout: dict[bool, CsrLayout] = field(default_factory=dict, repr=False)

    def csr(self, values: torch.Tensor, *, transposed: bool) -> torch.Tensor:
        """CSR of per-edge ``values``: destinations as rows, or sources when ``transposed``.

        The layout is computed once per relation; each call only permutes the values.
        """
        shape = (self.num_src, self.num_dst) if transposed else (self.num_dst, self.num_src)
        if transposed not in self._layout:
            src, dst = self.edge_index[0], self.edge_index[1]
            self._layout[transposed] = (csr_layout(src, dst, shape) if transposed
                                        else csr_layout(dst, src, shape))
        return csr_with_values(self._layout[transposed], values, shape)

    def aggregate(self, x_src: torch.Tensor, how: Aggregation) -> torch.Tensor:
        assert self.mask is not None
        if how == "max":
            src, dst = self.edge_index[0], self.edge_index[1]
            out = x_src.new_zeros(self.num_dst, x_src.size(1))
            messages = x_src[src] * (self.edge_weight * self.mask).unsqueeze(-1)
            index = dst.unsqueeze(-1).expand_as(messages)
            return out.scatter_reduce(0, index, messages, reduce="amax", include_self=False)
        values = self._values(how).detach()
        return _MaskedSpmm.apply(self, values, x_src, self.mask)  # type: ignore[no-any-return]


def _masked_forward(model: torch.nn.Module, data: HeteroData, x_dict: dict[str, torch.Tensor],
                    masks: dict[tuple[str, str, str], torch.Tensor],
                    structural: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Logits with ``masks`` multiplied into every message (prepared-graph models too).

    ``structural`` replaces the subgraph's degree inputs with the whole graph's (sliced to
    the subgraph), which makes a subgraph of as many hops as layers exact.
    """
    prepare = getattr(model, "prepare", None)
    forward_prepared = getattr(model, "forward_prepared", None)
    if prepare is None or forward_prepared is None:
        return _forward(model, data, x_dict)
    weights = {et: data[et].edge_weight for et in data.edge_types if "edge_weight" in data[et]}
    graph = prepare(x_dict, data.edge_index_dict, weights)
    for et, rel in list(graph.relations.items()):
        graph.relations[et] = _MaskedRelation(
            edge_index=rel.edge_index, edge_weight=rel.edge_weight, num_src=rel.num_src,
            num_dst=rel.num_dst, mask=masks[et])
    if structural is not None:
        graph._structural.update(structural)
    return forward_prepared(x_dict, graph).view(-1)


def _full_structural(model: torch.nn.Module, data: HeteroData
                     ) -> dict[str, torch.Tensor] | None:
    """Degree inputs of every node on the whole graph, for models built on them."""
    prepare = getattr(model, "prepare", None)
    edge_types = getattr(model, "edge_types", None)
    if prepare is None or edge_types is None or not hasattr(model, "forward_prepared"):
        return None
    weights = {et: data[et].edge_weight for et in data.edge_types if "edge_weight" in data[et]}
    graph = prepare(data.x_dict, data.edge_index_dict, weights)
    return {nt: graph.structural(nt, edge_types) for nt in model.node_types}


def khop_subset(data: HeteroData, rows: torch.Tensor, hops: int,
                target: str | None = None) -> dict[str, torch.Tensor]:
    """Sorted node indices per type within ``hops`` incoming hops of the ``rows`` of the
    ``target`` node type (default: the default schema's labelled type, accounts)."""
    target = GraphSchema.default().labelled if target is None else target
    keep = {t: torch.zeros(int(data[t].num_nodes), dtype=torch.bool) for t in data.node_types}
    keep[target][rows] = True
    for _ in range(hops):
        grown = {t: m.clone() for t, m in keep.items()}
        for (src, _, dst), edge_index in data.edge_index_dict.items():
            hit = keep[dst][edge_index[1]]
            grown[src][edge_index[0][hit]] = True
        keep = grown
    return {t: m.nonzero().view(-1) for t, m in keep.items()}


def _forward(model: torch.nn.Module, data: HeteroData, x_dict: dict[str, torch.Tensor]
             ) -> torch.Tensor:
    weights = {et: data[et].edge_weight for et in data.edge_types
               if "edge_weight" in data[et]}
    out = model(x_dict, data.edge_index_dict, weights)
    return out.view(-1)


def _top_features(contrib: np.ndarray, values: np.ndarray, names: Sequence[str],
                  top_k: int) -> list[list[str]]:
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :top_k]
    return [[f"{names[j]}={values[i, j]:.4g} ({contrib[i, j]:+.2f})" for j in order[i]]
            for i in range(contrib.shape[0])]


def explain_accounts(
    model: torch.nn.Module,
    data: HeteroData,
    rows: np.ndarray | Sequence[int],
    *,
    feature_names: Sequence[str],
    id_maps: Mapping[str, np.ndarray],
    scores: np.ndarray,
    threshold: float,
    feature_stats: Mapping[str, Sequence[float]] | None = None,
    top_k: int = 5,
    num_hops: int | None = None,
    chunk_size: int = 4096,
    schema: GraphSchema | None = None,
) -> dict[int, AccountEvidence]:
    """Evidence for each account row in ``rows`` (typically the flagged ones), by row.

    Accounts are ``schema``'s labelled node type (default: the default schema's). Rows go
    in chunks of ``chunk_size`` (in the given order), which bounds the subgraph and the
    memory of the backward pass on large graphs.
    """
    schema = GraphSchema.default() if schema is None else schema
    rows_np = np.asarray(rows, dtype=np.int64)
    result: dict[int, AccountEvidence] = {}
    structural = _full_structural(model, data) if rows_np.size else None
    for lo in range(0, rows_np.size, chunk_size):
        result.update(_explain_chunk(
            model, data, rows_np[lo:lo + chunk_size], feature_names=feature_names,
            id_maps=id_maps, scores=scores, threshold=threshold, feature_stats=feature_stats,
            top_k=top_k, num_hops=num_hops, structural=structural, schema=schema))
    return result


def _explain_chunk(
    model: torch.nn.Module,
    data: HeteroData,
    rows_np: np.ndarray,
    *,
    feature_names: Sequence[str],
    id_maps: Mapping[str, np.ndarray],
    scores: np.ndarray,
    threshold: float,
    feature_stats: Mapping[str, Sequence[float]] | None,
    top_k: int,
    num_hops: int | None,
    schema: GraphSchema,
    structural: Mapping[str, torch.Tensor] | None = None,
) -> dict[int, AccountEvidence]:
    if rows_np.size == 0:
        return {}
    hops = num_hops if num_hops is not None else _count_hops(model)
    chunk = _chunk_subgraph(data, rows_np, hops, structural, schema.labelled,
                            next(model.parameters()).device)
    with _frozen_eval(model):
        feat, raw, rel_share, neighbours = _attributions(
            model, chunk, id_maps=id_maps, top_k=top_k, schema=schema)
    if feature_stats is not None:
        raw = raw * np.asarray(feature_stats["std"]) + np.asarray(feature_stats["mean"])
    features = _top_features(feat, raw, feature_names, top_k)
    names = list(schema.messages_to_labelled().values())
    return {row: _account_evidence(features[k], rel_share[k],
                                   neighbours[k] if neighbours else [], names,
                                   score=float(scores[row]), threshold=threshold)
            for k, row in enumerate(rows_np.tolist())}


@dataclass(frozen=True)
class _Chunk:
    """The subgraph around one chunk of explained accounts, already on the model's device."""

    subset: dict[str, torch.Tensor]
    sub: HeteroData
    structural: dict[str, torch.Tensor] | None
    local: torch.Tensor  # the explained accounts' rows within ``sub``


def _chunk_subgraph(data: HeteroData, rows_np: np.ndarray, hops: int,
                    structural: Mapping[str, torch.Tensor] | None, target: str,
                    device: torch.device) -> _Chunk:
    """The smallest subgraph whose forward pass gives the explained accounts' exact logits.

    As many hops as layers reach every input of the explained logits; the outermost nodes'
    degree inputs come from the whole graph (``structural``). A model without those takes
    one hop more, so the outermost nodes keep all their edges.
    """
    subset = khop_subset(data, torch.as_tensor(rows_np), hops + (structural is None), target)
    sub = data.subgraph(subset).to(device)
    sub_structural = None if structural is None else \
        {nt: s[subset[nt]].to(device) for nt, s in structural.items()}
    local = torch.as_tensor(np.searchsorted(subset[target].numpy(), rows_np), device=device)
    return _Chunk(subset=subset, sub=sub, structural=sub_structural, local=local)


@contextmanager
def _frozen_eval(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode with no parameter gradients (only inputs and masks need them); restored after,
    so explaining never changes the model the caller holds."""
    was_training = model.training
    model.eval()
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)


def _attributions(model: torch.nn.Module, chunk: _Chunk, *, id_maps: Mapping[str, np.ndarray],
                  top_k: int, schema: GraphSchema
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[str]] | None]:
    """One backward pass: gradient x input per own feature, the normalised inputs, relation
    shares and top neighbours (``None`` when the model has no maskable message passing)."""
    target, sub, device = schema.labelled, chunk.sub, chunk.local.device
    x_dict = {t: sub[t].x for t in sub.node_types}
    x_acc = x_dict[target].detach().clone().requires_grad_(True)
    x_dict[target] = x_acc
    masks = {et: torch.ones(ei.size(1), device=device, requires_grad=True)
             for et, ei in sub.edge_index_dict.items()}
    set_hetero_masks(model, masks, sub.edge_index_dict, apply_sigmoid=False)
    try:
        with torch.enable_grad():
            logits = _masked_forward(model, sub, x_dict, masks, chunk.structural)
            logits[chunk.local].sum().backward()
    finally:
        clear_masks(model)
    feat = (x_acc.grad * x_acc).detach()[chunk.local].cpu().numpy()
    raw = x_acc.detach()[chunk.local].cpu().numpy().astype(np.float64)
    edge_grads = {et: m.grad for et, m in masks.items() if m.grad is not None}
    if not edge_grads:
        rel_share = _ablation_evidence(model, sub, x_dict, chunk.local,
                                       schema.messages_to_labelled())
        return feat, raw, rel_share, None
    rel_share, neighbours = _edge_evidence(sub, chunk.subset, chunk.local.cpu().numpy(),
                                           edge_grads, id_maps, top_k, schema)
    return feat, raw, rel_share, neighbours


def _account_evidence(features: list[str], share: np.ndarray, neighbours: list[str],
                      names: Sequence[str], *, score: float, threshold: float
                      ) -> AccountEvidence:
    """One account's evidence, with the one-line summary an analyst reads first."""
    order = [j for j in np.argsort(-share, kind="stable") if share[j] > 0]
    relations = [f"{names[j]}:{share[j]:.2f}" for j in order]
    top_rel = ", ".join(f"{names[j]} {share[j]:.0%}" for j in order[:2]) or "own features"
    top_feat = ", ".join(f.split(" (")[0] for f in features[:3])
    summary = (f"score {score:.3f} >= threshold {threshold:.3f}; "
               f"driven by {top_rel}; top features: {top_feat}")
    return AccountEvidence(features=features, relations=relations, neighbours=neighbours,
                           summary=summary)


def _edge_evidence(sub: HeteroData, subset: Mapping[str, torch.Tensor], local: np.ndarray,
                   edge_grads: Mapping[EdgeType, torch.Tensor],
                   id_maps: Mapping[str, np.ndarray], top_k: int, schema: GraphSchema
                   ) -> tuple[np.ndarray, list[list[str]]]:
    """Per explained account: relation shares (|gradient| summed) and its top neighbours."""
    relations = schema.messages_to_labelled()
    position = np.full(int(sub[schema.labelled].num_nodes), -1, dtype=np.int64)
    position[local] = np.arange(local.size)
    totals = np.zeros((local.size, len(relations)))
    cand_pos, cand_val, cand_label = [], [], []
    for r, (edge_type, relation) in enumerate(relations.items()):
        if edge_type not in edge_grads:
            continue
        ei = sub[edge_type].edge_index.cpu().numpy()
        grad = edge_grads[edge_type].detach().cpu().numpy().astype(np.float64)
        pos = position[ei[1]]
        inside = pos >= 0
        inside &= grad != 0  # a message the logits do not depend on is no evidence
        pos, src, grad = pos[inside], ei[0][inside], grad[inside]
        np.add.at(totals[:, r], pos, np.abs(grad))
        keys = id_maps[edge_type[0]][subset[edge_type[0]].numpy()[src]]
        prefix = schema.nodes[edge_type[0]].id_prefix
        cand_pos.append(pos)
        cand_val.append(grad)
        cand_label.append(np.asarray([f"{relation} {prefix}:{key}" for key in keys], dtype=object))
    sums = totals.sum(axis=1, keepdims=True)
    shares = np.divide(totals, sums, out=np.zeros_like(totals), where=sums > 0)
    neighbours: list[list[str]] = [[] for _ in range(local.size)]
    if cand_pos:
        pos = np.concatenate(cand_pos)
        val = np.concatenate(cand_val)
        label = np.concatenate(cand_label)
        order = np.lexsort((-np.abs(val), pos))
        pos, val, label = pos[order], val[order], label[order]
        starts = np.r_[0, np.flatnonzero(np.diff(pos)) + 1] if pos.size else np.zeros(0, int)
        rank = np.arange(pos.size) - np.repeat(starts, np.diff(np.r_[starts, pos.size]))
        for i in np.flatnonzero(rank < top_k):
            neighbours[pos[i]].append(f"{label[i]} ({val[i]:+.3f})")
    return shares, neighbours


def _ablation_evidence(model: torch.nn.Module, sub: HeteroData,
                       x_dict: dict[str, torch.Tensor], local: torch.Tensor,
                       relations: Mapping[EdgeType, str]) -> np.ndarray:
    """Relation shares from how much each account's logit drops without that relation."""
    with torch.no_grad():
        x_plain = {t: x.detach() for t, x in x_dict.items()}
        base = _forward(model, sub, x_plain)[local]
        drops = []
        for edge_type in relations:
            reduced = sub.clone()
            for et in list(reduced.edge_types):
                if et == edge_type or et[1] == edge_type[1].removeprefix("rev_") or \
                        et[1] == "rev_" + edge_type[1].removeprefix("rev_"):
                    reduced[et].edge_index = reduced[et].edge_index[:, :0]
                    if "edge_weight" in reduced[et]:
                        reduced[et].edge_weight = reduced[et].edge_weight[:0]
            drops.append((base - _forward(model, reduced, x_plain)[local]).abs())
    totals = torch.stack(drops, dim=1).cpu().numpy().astype(np.float64)
    sums = totals.sum(axis=1, keepdims=True)
    return np.divide(totals, sums, out=np.zeros_like(totals), where=sums > 0)
