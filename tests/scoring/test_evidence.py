"""Evidence: exact attributions on models whose answer is known, and presence in Neo4j."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch
from torch_geometric.nn import HeteroConv, SAGEConv

from sybilgnn.config import Settings
from sybilgnn.scoring import explain_accounts, score_snapshot
from tests.scoring.world import (
    ACCOUNTS,
    FEATURES,
    FLAGGED_RUN1,
    PAID_WITH,
    SIMILAR,
    USED_IP,
    build_snapshot,
    scores_for,
    tiny_model,
)

ROWS = np.array([ACCOUNTS.index(a) for a in sorted(FLAGGED_RUN1)])


class OwnFeaturesOnly(torch.nn.Module):
    """logit = w . x_account; a graph layer is present but multiplied by zero."""

    def __init__(self, metadata: Any) -> None:
        super().__init__()
        self.conv = HeteroConv({et: SAGEConv((-1, -1), 1) for et in metadata[1]})
        self.lin = torch.nn.Linear(len(FEATURES), 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[2.0, -1.0, 0.5, 0.0]]))

    def forward(self, x_dict: Any, edge_index_dict: Any, edge_weight_dict: Any = None) -> Any:
        graph = self.conv(x_dict, edge_index_dict)["account"]
        return (self.lin(x_dict["account"]) + 0.0 * graph).view(-1)


class IpMessagesOnly(torch.nn.Module):
    """One SAGEConv over ip -> account only: every relation share goes to USED_IP."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = HeteroConv({("ip", "rev_used_ip", "account"): SAGEConv((-1, -1), 1)})

    def forward(self, x_dict: Any, edge_index_dict: Any, edge_weight_dict: Any = None) -> Any:
        return self.conv(x_dict, edge_index_dict)["account"].view(-1)


class ManualPromptSum(torch.nn.Module):
    """No MessagePassing modules: evidence falls back to removing each relation."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, 1.0, 1.0, 1.0]))

    def forward(self, x_dict: Any, edge_index_dict: Any, edge_weight_dict: Any = None) -> Any:
        x = x_dict["account"]
        ei = edge_index_dict[("account", "prompt_similar", "account")]
        agg = torch.zeros_like(x).index_add(0, ei[1], x[ei[0]])
        return ((x + 3.0 * agg) * self.w).sum(dim=1)


def _explain(model: torch.nn.Module, rows: np.ndarray = ROWS) -> Any:
    snapshot = build_snapshot()
    with torch.no_grad():
        model(snapshot.data.x_dict, snapshot.data.edge_index_dict)
    return snapshot, explain_accounts(
        model, snapshot.data, rows, feature_names=FEATURES, id_maps=snapshot.id_maps,
        scores=scores_for(FLAGGED_RUN1), threshold=0.5,
        feature_stats=snapshot.feature_stats["account"], top_k=3)


def test_own_feature_attribution_is_weight_times_input() -> None:
    snapshot, evidence = _explain(OwnFeaturesOnly(build_snapshot().data.metadata()))
    x = snapshot.data["account"].x.numpy()
    weights = np.array([2.0, -1.0, 0.5, 0.0])
    stats = snapshot.feature_stats["account"]
    for row in ROWS:
        contrib = weights * x[row]
        top = np.argsort(-np.abs(contrib), kind="stable")[:3]
        raw = x[row] * np.array(stats["std"]) + np.array(stats["mean"])
        assert evidence[row].features == [
            f"{FEATURES[j]}={raw[j]:.4g} ({contrib[j]:+.2f})" for j in top]
        assert evidence[row].relations == [] and evidence[row].neighbours == []
        assert "own features" in evidence[row].summary


def test_relation_and_neighbours_follow_the_messages() -> None:
    snapshot, evidence = _explain(IpMessagesOnly())
    for row in ROWS:
        account = ACCOUNTS[row]
        ips = {ip for a, ip in USED_IP if a == account}
        assert evidence[row].relations == ["USED_IP:1.00"]
        named = [re.match(r"USED_IP ip:(\S+) \([+-]\d", n) for n in evidence[row].neighbours]
        assert all(named) and {m.group(1) for m in named if m} == ips  # <= 3 IPs each


def test_fallback_ablation_without_message_passing_modules() -> None:
    _, evidence = _explain(ManualPromptSum())
    in_chain = {a for pair in SIMILAR for a in pair}
    for row in ROWS:
        expected = ["PROMPT_SIMILAR:1.00"] if ACCOUNTS[row] in in_chain else []
        assert evidence[row].relations == expected and evidence[row].neighbours == []


def _neighbours_in_graph(account: str) -> set[str]:
    found = {f"USED_IP ip:{ip}" for a, ip in USED_IP if a == account}
    found |= {f"PAID_WITH pm:{pm}" for a, pm in PAID_WITH if a == account}
    for a, b in SIMILAR:
        if account in (a, b):
            found.add(f"PROMPT_SIMILAR account:{b if a == account else a}")
    return found


@pytest.mark.neo4j
def test_every_flagged_account_gets_evidence(world: Any, scoring_settings: Settings) -> None:
    snapshot = build_snapshot()
    summary = score_snapshot(world, scoring_settings, snapshot, scores_for(FLAGGED_RUN1),
                             threshold=0.5, model_version=1, model=tiny_model(snapshot))
    records, _, _ = world.execute_query(
        "MATCH (a:Account) OPTIONAL MATCH (a)-[:MEMBER_OF]->(f:Fleet) "
        "RETURN a.account_id AS id, a.sybil_score AS score, a.evidence_top_features AS features, "
        "a.evidence_relations AS relations, a.evidence_neighbours AS neighbours, "
        "a.evidence_summary AS summary, f.fleet_id AS fleet")
    assert len(records) == 20
    for r in records:
        if r["id"] not in FLAGGED_RUN1:
            assert (r["features"], r["relations"], r["neighbours"], r["summary"]) == (
                None, None, None, None)
            continue
        assert len(r["features"]) == len(FEATURES)
        assert all(re.fullmatch(r"f_\w+=\S+ \([+-]\d+\.\d\d\)", f) for f in r["features"])
        shares = [float(s.split(":")[1]) for s in r["relations"]]
        assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1, abs=0.02)
        assert 1 <= len(r["neighbours"]) <= 5
        named = {n.rsplit(" (", 1)[0] for n in r["neighbours"]}
        assert named <= _neighbours_in_graph(r["id"])
        assert r["summary"].startswith(f"score {r['score']:.3f} >= threshold 0.500")
        if r["fleet"] is not None:
            assert r["summary"].endswith(f"fleet {r['fleet']} ({4 if r['id'] < 'a05' else 3} "
                                         "accounts)")
    assert summary.n_fleets == 2


def test_sybilgnn_masked_forward_and_subgraph_match_the_model() -> None:
    from sybilgnn.config import ModelSettings
    from sybilgnn.models import build_model
    from sybilgnn.scoring.evidence import _masked_forward, khop_subset

    snapshot = build_snapshot()
    data = snapshot.data
    torch.manual_seed(0)
    model = build_model(data.metadata(), {t: int(data[t].x.size(1)) for t in data.node_types},
                        ModelSettings(hidden=8, dropout=0.0, layers=2)).eval()
    weights = {et: data[et].edge_weight for et in data.edge_types}
    with torch.no_grad():
        full = model(data.x_dict, data.edge_index_dict, weights)
        masks = {et: torch.ones(ei.size(1)) for et, ei in data.edge_index_dict.items()}
        assert torch.allclose(_masked_forward(model, data, data.x_dict, masks), full, atol=1e-5)
        subset = khop_subset(data, torch.as_tensor(ROWS[:2]), 3)
        sub = data.subgraph(subset)
        sub_logits = model(sub.x_dict, sub.edge_index_dict,
                           {et: sub[et].edge_weight for et in sub.edge_types})
        local = np.searchsorted(subset["account"].numpy(), ROWS[:2])
        assert torch.allclose(sub_logits[local], full[ROWS[:2]], atol=1e-5)
    _, evidence = _explain(model)
    for row in ROWS:
        assert evidence[row].relations and evidence[row].neighbours
        named = {n.rsplit(" (", 1)[0] for n in evidence[row].neighbours}
        assert named <= _neighbours_in_graph(ACCOUNTS[row])


def test_chunked_evidence_covers_every_row() -> None:
    snapshot = build_snapshot()
    model = OwnFeaturesOnly(snapshot.data.metadata())
    with torch.no_grad():
        model(snapshot.data.x_dict, snapshot.data.edge_index_dict)
    kwargs: dict[str, Any] = dict(feature_names=FEATURES, id_maps=snapshot.id_maps,
                                  scores=scores_for(FLAGGED_RUN1), threshold=0.5, top_k=3)
    whole = explain_accounts(model, snapshot.data, ROWS, **kwargs)
    chunked = explain_accounts(model, snapshot.data, ROWS, chunk_size=3, **kwargs)
    assert sorted(chunked) == sorted(ROWS.tolist()) and chunked == whole


def _gather_scatter_aggregate(rel: Any, x_src: torch.Tensor, how: Any) -> torch.Tensor:
    """The textbook masked aggregation (one message tensor per edge), as the reference."""
    src, dst = rel.edge_index[0], rel.edge_index[1]
    values = rel._values(how) * rel.mask
    return x_src.new_zeros(rel.num_dst, x_src.size(1)).index_add(
        0, dst, x_src[src] * values.unsqueeze(-1))


@pytest.mark.parametrize("layer_type, aggr", [("sage", "mean"), ("sage", "sum"),
                                              ("graph", "mean")])
def test_masked_csr_gradients_equal_gather_scatter(layer_type: str, aggr: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Mask and feature gradients of the chunked CSR backward against autograd's."""
    from sybilgnn.config import ModelSettings
    from sybilgnn.models import build_model
    from sybilgnn.scoring import evidence

    data = build_snapshot().data
    torch.manual_seed(1)
    model = build_model(data.metadata(), {t: int(data[t].x.size(1)) for t in data.node_types},
                        ModelSettings(hidden=8, dropout=0.0, layers=2, layer_type=layer_type,
                                      aggr=aggr)).eval()
    monkeypatch.setattr(evidence, "_EDGE_CHUNK", 5)  # several edge chunks even here

    def grads(aggregate: Any) -> list[torch.Tensor]:
        monkeypatch.setattr(evidence._MaskedRelation, "aggregate", aggregate)
        x_dict = {t: x.clone().requires_grad_(t == "account")
                  for t, x in data.x_dict.items()}
        masks = {et: torch.rand(ei.size(1), generator=torch.Generator().manual_seed(2),
                                ).requires_grad_(True)
                 for et, ei in data.edge_index_dict.items()}
        logits = evidence._masked_forward(model, data, x_dict, masks)
        (logits[torch.as_tensor(ROWS)] * torch.arange(1.0, ROWS.size + 1)).sum().backward()
        return [x_dict["account"].grad, *(masks[et].grad for et in sorted(masks))]

    csr = grads(evidence._MaskedRelation.aggregate)
    reference = grads(_gather_scatter_aggregate)
    assert any(g.abs().sum() > 0 for g in csr[1:])
    for ours, theirs in zip(csr, reference):
        assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_subgraph_of_as_many_hops_as_layers_is_exact_with_whole_graph_degrees() -> None:
    from sybilgnn.config import ModelSettings
    from sybilgnn.models import build_model
    from sybilgnn.scoring.evidence import _full_structural, _masked_forward, khop_subset

    data = build_snapshot().data
    torch.manual_seed(0)
    model = build_model(data.metadata(), {t: int(data[t].x.size(1)) for t in data.node_types},
                        ModelSettings(hidden=8, dropout=0.0, layers=2)).eval()
    rows = torch.as_tensor(ROWS[:2])
    structural = _full_structural(model, data)
    assert structural is not None
    with torch.no_grad():
        full = model(data.x_dict, data.edge_index_dict,
                     {et: data[et].edge_weight for et in data.edge_types})
        subset = khop_subset(data, rows, 2)
        sub = data.subgraph(subset)
        local = np.searchsorted(subset["account"].numpy(), ROWS[:2])
        masks = {et: torch.ones(ei.size(1)) for et, ei in sub.edge_index_dict.items()}
        exact = _masked_forward(model, sub, sub.x_dict, masks,
                                {nt: s[subset[nt]] for nt, s in structural.items()})
        assert torch.allclose(exact[local], full[rows], atol=1e-5)
        # without the whole graph's degrees the two-hop subgraph is not exact here
        cut = _masked_forward(model, sub, sub.x_dict, masks)
        assert not torch.allclose(cut[local], full[rows], atol=1e-5)


@pytest.mark.neo4j
def test_a_flag_names_which_side_of_the_fused_model_ranked_it(world: Any,
                                                               scoring_settings: Settings) -> None:
    snapshot = build_snapshot()
    by_trees = {"a00", "a05", "a16"}
    ranked_by_trees = np.array([a in by_trees for a in ACCOUNTS])
    score_snapshot(world, scoring_settings, snapshot, scores_for(FLAGGED_RUN1), threshold=0.5,
                   model_version=1, ranked_by_trees=ranked_by_trees)
    records, _, _ = world.execute_query(
        "MATCH (a:Account) WHERE a.sybil_flag RETURN a.account_id AS id, "
        "a.evidence_summary AS summary")
    sides = {r["id"]: "tree companion" in r["summary"] for r in records}
    # label conflicts aside, every flag says which model ranked it, and only the marked
    # accounts name the trees
    assert sides and {a for a, trees in sides.items() if trees} == by_trees & set(sides)
    assert all("ranked by the GNN" in r["summary"] for r in records if r["id"] not in by_trees)
