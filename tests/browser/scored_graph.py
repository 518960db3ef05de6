"""A small scored graph, as the scoring job leaves it, for the Browser and report tests.

30 accounts; fleet F-0001 (8 members, seen in both runs), fleet F-0002 (5 members, new in the
latest run), fleet F-0000 (inactive: gone since the previous run); one flagged account
outside any fleet; 16 legitimate accounts, three of them sharing an office IP. Two scoring
runs: run-1 (previous) and run-2 (latest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

RUN1_START = datetime(2025, 1, 1, 2, 0, tzinfo=timezone.utc)
RUN2_START = datetime(2025, 1, 8, 2, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ScoredGraphFacts:
    run_id: str = "run-2"
    previous_run_id: str = "run-1"
    n_accounts: int = 30
    n_flagged: int = 14
    n_fleets: int = 2
    fleet_sizes: tuple[tuple[str, int], ...] = (("F-0001", 8), ("F-0002", 5))
    new_fleets: tuple[str, ...] = ("F-0002",)
    gone_fleets: tuple[str, ...] = ("F-0000",)
    newly_flagged: int = 6     # F-0002's five members and the lone acct-14
    unflagged: int = 1         # acct-15, flagged in run-1 only
    threshold: float = 0.5


FACTS = ScoredGraphFacts()


def _accounts() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(1, 31):
        account_id = f"acct-{i:02d}"
        if i <= 8:
            score, fleet, prev = 0.99 - 0.01 * i, "F-0001", True
        elif i <= 13:
            score, fleet, prev = 0.90 - 0.02 * (i - 9), "F-0002", False
        elif i == 14:
            score, fleet, prev = 0.70, None, False
        else:
            score, fleet, prev = 0.02 * (i - 14), None, i == 15
        flagged = score >= FACTS.threshold
        row: dict[str, Any] = {
            "account_id": account_id, "score": round(score, 4), "flag": flagged,
            "fleet": fleet, "prev": prev,
        }
        if flagged:
            row["summary"] = f"{account_id}: shares IPs and a card with its fleet"
            row["top_features"] = ["f_accounts_per_ip=12.0", "f_prompt_template_share=0.8"]
            row["relations"] = ["USED_IP shared with 7 accounts", "PAID_WITH shared card"]
            row["neighbours"] = ["acct-01", "acct-02"]
        rows.append(row)
    return rows


def build_scored_graph(driver: Any) -> ScoredGraphFacts:
    """Write the graph with parameterised, batched Cypher; returns the facts tests assert."""
    accounts = _accounts()
    fleet_members = {
        "F-0001": [f"acct-{i:02d}" for i in range(1, 9)],
        "F-0002": [f"acct-{i:02d}" for i in range(9, 14)],
    }
    ip_edges = (
        [{"account_id": a, "ip_id": "ip-f1-a"} for a in fleet_members["F-0001"]]
        + [{"account_id": a, "ip_id": "ip-f1-b"} for a in fleet_members["F-0001"][:4]]
        + [{"account_id": a, "ip_id": "ip-f2"} for a in fleet_members["F-0002"]]
        + [{"account_id": f"acct-{i:02d}", "ip_id": "ip-office"} for i in (16, 17, 18)]
        + [{"account_id": f"acct-{i:02d}", "ip_id": f"ip-home-{i:02d}"} for i in range(14, 31)]
    )
    pm_edges = (
        [{"account_id": a, "pm_id": "pm-f1"} for a in fleet_members["F-0001"]]
        + [{"account_id": a, "pm_id": "pm-f2-a"} for a in fleet_members["F-0002"][:3]]
        + [{"account_id": a, "pm_id": "pm-f2-b"} for a in fleet_members["F-0002"][2:]]
        + [{"account_id": f"acct-{i:02d}", "pm_id": f"pm-own-{i:02d}"} for i in range(14, 31)]
    )
    prompt_edges = (
        [{"a": f"acct-{i:02d}", "b": f"acct-{i + 1:02d}", "sim": 0.9} for i in range(1, 8)]
        + [{"a": f"acct-{i:02d}", "b": f"acct-{i + 1:02d}", "sim": 0.8} for i in range(9, 13)]
        + [{"a": "acct-20", "b": "acct-21", "sim": 0.65}]
    )
    fleets = [
        {"fleet_id": "F-0001", "size": 8, "mean_score": 0.945, "n_ips": 2, "n_pms": 1,
         "first_seen": RUN1_START, "last_seen": RUN2_START, "active": True},
        {"fleet_id": "F-0002", "size": 5, "mean_score": 0.86, "n_ips": 1, "n_pms": 2,
         "first_seen": RUN2_START, "last_seen": RUN2_START, "active": True},
        {"fleet_id": "F-0000", "size": 3, "mean_score": 0.7, "n_ips": 1, "n_pms": 0,
         "first_seen": RUN1_START, "last_seen": RUN1_START, "active": False},
    ]
    memberships = [{"account_id": a, "fleet_id": f} for f, ms in fleet_members.items()
                   for a in ms]
    runs = [
        {"run_id": "run-1", "model_version": "2", "threshold": FACTS.threshold,
         "started_at": RUN1_START, "finished_at": RUN1_START, "status": "finished",
         "n_scored": 30, "n_flagged": 9, "n_fleets": 2},
        {"run_id": "run-2", "model_version": "3", "threshold": FACTS.threshold,
         "started_at": RUN2_START, "finished_at": RUN2_START, "status": "finished",
         "n_scored": FACTS.n_accounts, "n_flagged": FACTS.n_flagged,
         "n_fleets": FACTS.n_fleets},
    ]
    with driver.session() as session:
        session.run(
            """UNWIND $rows AS row
            MERGE (a:Account {account_id: row.account_id})
            SET a.sybil_score = row.score, a.sybil_flag = row.flag, a.prev_sybil_flag = row.prev,
                a.scored_at = $scored_at, a.model_version = '3', a.run_id = 'run-2',
                a.evidence_summary = row.summary, a.evidence_top_features = row.top_features,
                a.evidence_relations = row.relations, a.evidence_neighbours = row.neighbours,
                a.created_at = $scored_at, a.country = 'DE', a.plan = 'free'
            FOREACH (_ IN CASE WHEN row.flag THEN [1] ELSE [] END | SET a:Flagged)""",
            rows=accounts, scored_at=RUN2_START,
        ).consume()
        session.run(
            """UNWIND $rows AS row
            MATCH (a:Account {account_id: row.account_id})
            MERGE (ip:IP {ip_id: row.ip_id}) SET ip.asn = 64500, ip.is_datacenter = false
            MERGE (a)-[r:USED_IP]->(ip) SET r.n_events = 3""",
            rows=ip_edges,
        ).consume()
        session.run(
            """UNWIND $rows AS row
            MATCH (a:Account {account_id: row.account_id})
            MERGE (pm:PaymentInstrument {pm_id: row.pm_id}) SET pm.bin = '411111',
                pm.issuer_country = 'US', pm.is_prepaid = true
            MERGE (a)-[r:PAID_WITH]->(pm) SET r.n_charges = 1""",
            rows=pm_edges,
        ).consume()
        session.run(
            """UNWIND $rows AS row
            MATCH (a:Account {account_id: row.a}), (b:Account {account_id: row.b})
            MERGE (a)-[r:PROMPT_SIMILAR]->(b) SET r.similarity = row.sim, r.n_shared = 2""",
            rows=prompt_edges,
        ).consume()
        session.run(
            """UNWIND $rows AS row
            MERGE (f:Fleet {fleet_id: row.fleet_id})
            SET f.size = row.size, f.mean_score = row.mean_score, f.n_shared_ips = row.n_ips,
                f.n_shared_instruments = row.n_pms, f.first_seen = row.first_seen,
                f.last_seen = row.last_seen, f.active = row.active""",
            rows=fleets,
        ).consume()
        session.run(
            """UNWIND $rows AS row
            MATCH (a:Account {account_id: row.account_id}), (f:Fleet {fleet_id: row.fleet_id})
            MERGE (a)-[:MEMBER_OF]->(f)""",
            rows=memberships,
        ).consume()
        session.run(
            """UNWIND $rows AS row
            MERGE (r:ScoringRun {run_id: row.run_id})
            SET r += row""",
            rows=runs,
        ).consume()
    return FACTS
