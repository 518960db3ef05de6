"""What changed between two snapshots, and which accounts a change reaches (exact masks)."""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData

from sybilgnn.data.snapshot import RawFeatures, Snapshot
from sybilgnn.replay import changed_nodes, within_reach


def _snapshot(accounts: list[str], ips: list[str], used: list[tuple[str, str, float]],
              prompts: dict[str, float]) -> Snapshot:
    """Accounts with one numeric input, IPs without inputs, account-IP edges both ways."""
    data = HeteroData()
    data["account"].num_nodes = len(accounts)
    data["ip"].num_nodes = len(ips)
    row = {a: i for i, a in enumerate(accounts)}
    col = {p: i for i, p in enumerate(ips)}
    index = torch.tensor([[row[a] for a, _, _ in used], [col[p] for _, p, _ in used]],
                         dtype=torch.long).reshape(2, -1)
    weight = torch.tensor([w for _, _, w in used], dtype=torch.float32)
    data["account", "used_ip", "ip"].edge_index = index
    data["account", "used_ip", "ip"].edge_weight = weight
    data["ip", "rev_used_ip", "account"].edge_index = index.flip(0)
    data["ip", "rev_used_ip", "account"].edge_weight = weight
    raw = {"account": RawFeatures(numeric={"f": np.asarray([prompts[a] for a in accounts])}),
           "ip": RawFeatures()}
    return Snapshot(data=data, id_maps={"account": np.asarray(accounts, dtype=object),
                                        "ip": np.asarray(ips, dtype=object)},
                    feature_names={}, feature_stats={}, content_hash="t", raw=raw)


# a - ip1 - b - ip2 - c      d - ip3 - e
EDGES = [("a", "ip1", 1.0), ("b", "ip1", 1.0), ("b", "ip2", 1.0), ("c", "ip2", 1.0),
         ("d", "ip3", 1.0), ("e", "ip3", 1.0)]
VALUES = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": float("nan")}


def test_nothing_changed_reaches_nobody() -> None:
    before = _snapshot(list("abcde"), ["ip1", "ip2", "ip3"], EDGES, VALUES)
    after = _snapshot(list("edcba"), ["ip3", "ip2", "ip1"], EDGES, VALUES)  # rows reordered
    changed = changed_nodes(before, after)
    assert not changed["account"].any() and not changed["ip"].any()
    assert not within_reach(after, changed, 2).any()


def test_a_new_input_reaches_two_hops_through_the_shared_ip() -> None:
    before = _snapshot(list("abcde"), ["ip1", "ip2", "ip3"], EDGES, VALUES)
    after = _snapshot(list("abcde"), ["ip1", "ip2", "ip3"], EDGES, {**VALUES, "a": 9.0})
    changed = changed_nodes(before, after)
    assert changed["account"].tolist() == [True, False, False, False, False]
    assert not changed["ip"].any()
    # 2 hops: a -> ip1 -> b; 4 hops also reach c through ip2
    assert within_reach(after, changed, 2).tolist() == [True, True, False, False, False]
    assert within_reach(after, changed, 4).tolist() == [True, True, True, False, False]
    assert within_reach(after, changed, 0).tolist() == [True, False, False, False, False]


def test_new_accounts_and_new_or_reweighted_edges_mark_both_ends() -> None:
    before = _snapshot(list("abcde"), ["ip1", "ip2", "ip3"], EDGES, VALUES)
    edges = [e for e in EDGES if e != ("d", "ip3", 1.0)] + [("d", "ip3", 2.0), ("f", "ip2", 1.0)]
    after = _snapshot(list("abcdef"), ["ip1", "ip2", "ip3"], edges, {**VALUES, "f": 0.0})
    changed = changed_nodes(before, after)
    assert changed["account"].tolist() == [False, False, False, True, False, True]
    assert changed["ip"].tolist() == [False, True, True]
    assert within_reach(after, changed, 1).tolist() == [False, True, True, True, True, True]
    assert changed_nodes(None, after)["account"].all()
