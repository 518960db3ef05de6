"""A small account world, built twice: as a Neo4j graph (Cypher) and as the matching Snapshot.

Accounts a00..a19. Links:
- a00,a01 on ip0; a02,a03 on ip1; a01,a02 pay with pm0; a04 also on ip0;
- prompt-similar chain a10-a11-a12-a13-a14;
- a15,a16 on ip2 (a pair: below min_fleet_size 3);
- hub ip5 used by every account (above fleet_max_shared_accounts = 10 in these tests);
- legit accounts a06..a09, a17..a19 on ip3/ip4, a18/a19 pay with pm1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, SAGEConv

from sybilgnn.data.snapshot import Snapshot

ACCOUNTS = [f"a{i:02d}" for i in range(20)]
IPS = [f"ip{i}" for i in range(6)]
PAYMENTS = ["pm0", "pm1"]
USED_IP = ([("a00", "ip0"), ("a01", "ip0"), ("a04", "ip0"), ("a02", "ip1"), ("a03", "ip1"),
            ("a15", "ip2"), ("a16", "ip2"), ("a06", "ip3"), ("a07", "ip3"), ("a08", "ip4"),
            ("a09", "ip4"), ("a17", "ip4")]
           + [(a, "ip5") for a in ACCOUNTS])
PAID_WITH = [("a01", "pm0"), ("a02", "pm0"), ("a18", "pm1"), ("a19", "pm1")]
SIMILAR = [("a10", "a11"), ("a11", "a12"), ("a12", "a13"), ("a13", "a14")]
FEATURES = ["f_interarrival_cv", "f_prompt_len_mean", "f_night_share", "f_ip_count"]

#: Flagged in the first run: fleet {a00..a03}, fleet {a10,a11,a12}, pair a15/a16, lone a05.
FLAGGED_RUN1 = {"a00", "a01", "a02", "a03", "a05", "a10", "a11", "a12", "a15", "a16"}


def scores_for(flagged: set[str]) -> np.ndarray:
    """Distinct known scores: flagged 0.90 + i/1000, others 0.10 + i/1000."""
    return np.array([(0.9 if a in flagged else 0.1) + i / 1000 for i, a in enumerate(ACCOUNTS)])


def build_graph(driver: Any) -> None:
    with driver.session() as session:
        session.run("CREATE CONSTRAINT IF NOT EXISTS FOR (a:Account) "
                    "REQUIRE a.account_id IS UNIQUE").consume()
        session.run("UNWIND $ids AS id CREATE (:Account {account_id: id, country: 'DE'})",
                    ids=ACCOUNTS).consume()
        session.run("UNWIND $ids AS id CREATE (:IP {ip_id: id})", ids=IPS).consume()
        session.run("UNWIND $ids AS id CREATE (:PaymentInstrument {pm_id: id})",
                    ids=PAYMENTS).consume()
        session.run("UNWIND $rows AS r MATCH (a:Account {account_id: r[0]}) "
                    "MATCH (i:IP {ip_id: r[1]}) CREATE (a)-[:USED_IP {n_events: 1}]->(i)",
                    rows=[list(e) for e in USED_IP]).consume()
        session.run("UNWIND $rows AS r MATCH (a:Account {account_id: r[0]}) "
                    "MATCH (p:PaymentInstrument {pm_id: r[1]}) CREATE (a)-[:PAID_WITH]->(p)",
                    rows=[list(e) for e in PAID_WITH]).consume()
        session.run("UNWIND $rows AS r MATCH (a:Account {account_id: r[0]}) "
                    "MATCH (b:Account {account_id: r[1]}) "
                    "CREATE (a)-[:PROMPT_SIMILAR {similarity: 0.9}]->(b)",
                    rows=[list(e) for e in SIMILAR]).consume()


def build_snapshot(content_hash: str = "world-v1") -> Snapshot:
    index = {"account": {a: i for i, a in enumerate(ACCOUNTS)},
             "ip": {v: i for i, v in enumerate(IPS)},
             "payment": {v: i for i, v in enumerate(PAYMENTS)}}
    generator = torch.Generator().manual_seed(0)
    data = HeteroData()
    data["account"].x = torch.randn(len(ACCOUNTS), len(FEATURES), generator=generator)
    data["ip"].x = torch.ones(len(IPS), 1)
    data["payment"].x = torch.ones(len(PAYMENTS), 1)

    def edges(pairs: list[tuple[str, str]], src: str, dst: str) -> torch.Tensor:
        return torch.tensor([[index[src][a] for a, _ in pairs], [index[dst][b] for _, b in pairs]],
                            dtype=torch.long)

    relations = {("account", "used_ip", "ip"): edges(USED_IP, "account", "ip"),
                 ("account", "paid_with", "payment"): edges(PAID_WITH, "account", "payment")}
    for (src, rel, dst), ei in list(relations.items()):
        relations[(dst, f"rev_{rel}", src)] = ei.flip(0)
    sim = edges(SIMILAR, "account", "account")
    relations[("account", "prompt_similar", "account")] = torch.cat([sim, sim.flip(0)], dim=1)
    for edge_type, ei in relations.items():
        data[edge_type].edge_index = ei
        data[edge_type].edge_weight = torch.ones(ei.size(1))
    return Snapshot(
        data=data,
        id_maps={"account": np.array(ACCOUNTS, dtype=object), "ip": np.array(IPS, dtype=object),
                 "payment": np.array(PAYMENTS, dtype=object)},
        feature_names={"account": FEATURES, "ip": ["one"], "payment": ["one"]},
        feature_stats={"account": {"mean": [1.0, 100.0, 0.0, 2.0], "std": [0.5, 10.0, 1.0, 1.0]}},
        content_hash=content_hash,
    )


class TinyHeteroGNN(torch.nn.Module):
    """Two HeteroConv(SAGEConv) layers and a linear head: the forward contract of models/."""

    def __init__(self, metadata: tuple[list[str], list[tuple[str, str, str]]], hidden: int = 8):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            HeteroConv({et: SAGEConv((-1, -1), hidden) for et in metadata[1]}, aggr="sum")
            for _ in range(2))
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x_dict: dict[str, torch.Tensor],
                edge_index_dict: dict[Any, torch.Tensor],
                edge_weight_dict: dict[Any, torch.Tensor] | None = None) -> torch.Tensor:
        for layer in self.layers:
            x_dict = {k: v.relu() for k, v in layer(x_dict, edge_index_dict).items()}
        return self.head(x_dict["account"]).view(-1)


def tiny_model(snapshot: Snapshot, seed: int = 0) -> TinyHeteroGNN:
    torch.manual_seed(seed)
    model = TinyHeteroGNN(snapshot.data.metadata())
    with torch.no_grad():
        model(snapshot.data.x_dict, snapshot.data.edge_index_dict)  # materialise lazy shapes
    return model.eval()


def dump_state(driver: Any, run_id: str) -> dict[str, Any]:
    """Account, Fleet and membership state without timestamps; run ids as 'this'/'other'."""
    records, _, _ = driver.execute_query(
        "MATCH (a:Account) RETURN a.account_id AS id, labels(a) AS labels, "
        "properties(a) AS props ORDER BY id")
    accounts = {}
    for r in records:
        props = {k: v for k, v in r["props"].items() if k != "scored_at"}
        if "run_id" in props:
            props["run_id"] = "this" if props["run_id"] == run_id else "other"
        accounts[r["id"]] = (sorted(r["labels"]), props)
    records, _, _ = driver.execute_query(
        "MATCH (f:Fleet) OPTIONAL MATCH (a:Account)-[:MEMBER_OF]->(f) "
        "RETURN f.fleet_id AS id, properties(f) AS props, collect(a.account_id) AS members")
    fleets = {}
    for r in records:
        props = {k: ("this" if v == run_id else "other") if k.endswith("run_id") else v
                 for k, v in r["props"].items() if k not in ("first_seen", "last_seen")}
        fleets[r["id"]] = (props, sorted(r["members"]))
    return {"accounts": accounts, "fleets": fleets}
