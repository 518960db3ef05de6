"""Derived graph data written after the raw tables: PROMPT_SIMILAR edges and ``f_*`` features."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sybilgnn.features.account_features import (
    ACCOUNT_FEATURES,
    PROMPT_STATE_FIELDS,
    compute_account_features,
)
from sybilgnn.features.prompt_similarity import SimilarityResult
from sybilgnn.ingest.loaders import records
from sybilgnn.ingest.procedures import NodeWrite, RelWrite, column_rows, feature_inputs
from sybilgnn.ingest.writer import batches, quiet_session, write_batches

__all__ = ["write_similarity", "prune_similarity", "update_features"]

SIMILAR_QUERY = """
UNWIND $rows AS row
MATCH (a:Account {account_id: row.account_a})
MATCH (b:Account {account_id: row.account_b})
MERGE (a)-[r:PROMPT_SIMILAR]->(b)
ON CREATE SET r.similarity = row.similarity, r.n_shared = row.n_shared
ON MATCH SET r.similarity = CASE WHEN row.similarity > r.similarity
                                 THEN row.similarity ELSE r.similarity END,
             r.n_shared = r.n_shared + row.n_shared
"""
OVER_CAP_QUERY = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})
WHERE COUNT { (a)-[:PROMPT_SIMILAR]-() } > $cap
MATCH (a)-[r:PROMPT_SIMILAR]-(b:Account)
RETURN a.account_id AS account, b.account_id AS other, r.similarity AS similarity,
       r.n_shared AS n_shared, elementId(r) AS rel
"""
FEATURE_INPUT_QUERY = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})
CALL (a) {
  OPTIONAL MATCH (a)-[r:USED_IP]->(i:IP)
  RETURN count(r) AS n_ips, sum(r.n_events) AS ip_events,
         sum(CASE WHEN i.is_datacenter THEN r.n_events ELSE 0 END) AS dc_events,
         min(r.first_seen).epochMillis AS ip_first_ms, max(r.last_seen).epochMillis AS ip_last_ms
}
CALL (a) {
  OPTIONAL MATCH (a)-[p:PAID_WITH]->(m:PaymentInstrument)
  RETURN count(p) AS n_instruments, sum(p.n_charges) AS n_charges,
         sum(CASE WHEN m.is_prepaid THEN 1 ELSE 0 END) AS prepaid_instruments,
         sum(CASE WHEN m.issuer_country <> a.country THEN 1 ELSE 0 END) AS foreign_instruments,
         min(p.first_seen).epochMillis AS pay_first_ms
}
CALL (a) {
  OPTIONAL MATCH (a)-[s:PROMPT_SIMILAR]-(:Account)
  RETURN count(s) AS n_similar, max(s.similarity) AS max_similarity
}
RETURN a.account_id AS account_id, a.created_at.epochMillis AS created_ms,
       n_ips, ip_events, dc_events, ip_first_ms, ip_last_ms, n_instruments, n_charges,
       prepaid_instruments, foreign_instruments, pay_first_ms, n_similar, max_similarity, 
""" + ", ".join(f"a.{f} AS {f}" for f in PROMPT_STATE_FIELDS)
SIMILAR_WRITE = RelWrite("PROMPT_SIMILAR", ("Account", "account_id"), ("Account", "account_id"),
                         ("similarity", "n_shared"), ("max", "add"))
FEATURE_WRITE = NodeWrite("Account", "account_id", tuple(ACCOUNT_FEATURES))
FEATURE_WRITE_QUERY = """
UNWIND $rows AS row
MATCH (a:Account {account_id: row.account_id})
SET a += row
"""


def write_similarity(driver: Any, database: str, result: SimilarityResult, batch_size: int,
                     marker: str, *, procedures: bool = False) -> int:
    """Merge this load's near-duplicate account pairs into the graph; returns rows written."""
    columns = ["account_a", "account_b", "similarity", "n_shared"]
    if procedures:
        return write_batches(driver, database, column_rows(result.pairs, columns), batch_size,
                             work=SIMILAR_WRITE, marker=f"{marker}:PROMPT_SIMILAR")
    return write_batches(driver, database, records(result.pairs, columns), batch_size,
                         query=SIMILAR_QUERY, marker=f"{marker}:PROMPT_SIMILAR")


OVER_CAP_PROCEDURE = """
CALL sybilgnn.ingest.overCap($ids, $cap) YIELD account, other, similarity, nShared, rel
RETURN account, other, similarity, nShared AS n_shared, rel
"""


def _over_cap(session: Any, ids: list[str], cap: int, procedures: bool) -> pd.DataFrame:
    """The PROMPT_SIMILAR edges of the accounts of ``ids`` over ``cap``, one row each."""
    if not procedures:
        return pd.DataFrame(session.run(OVER_CAP_QUERY, ids=ids, cap=cap).data())
    record = session.run(OVER_CAP_PROCEDURE, ids=ids, cap=cap).single()
    return pd.DataFrame({k: record[k] for k in ("account", "other", "similarity", "n_shared",
                                                  "rel")})


def prune_similarity(driver: Any, database: str, account_ids: list[str], cap: int,
                     batch_size: int, change_seq: int = 0, *, procedures: bool = False
                     ) -> set[str]:
    """Delete the weakest PROMPT_SIMILAR edges of accounts over ``cap`` after an incremental load.

    Each over-cap account keeps its ``cap`` strongest edges (similarity, then n_shared, then the
    other id). Returns the endpoints of deleted edges, whose features need recomputing. The
    deletion stamps both ends with ``change_seq`` in its own transaction: a run killed right
    after it would not find these edges again, and incremental scoring must still see the
    change (``sybilgnn.ingest.changes``).
    """
    doomed: dict[str, tuple[str, str]] = {}
    with quiet_session(driver, database) as session:
        for _, chunk in batches([{"id": i} for i in account_ids], batch_size):
            found = _over_cap(session, [c["id"] for c in chunk], cap, procedures)
            if found.empty:
                continue
            frame = found.sort_values(
                ["account", "similarity", "n_shared", "other"],
                ascending=[True, False, False, True], kind="stable")
            extra = frame[frame.groupby("account").cumcount() >= cap]
            for rel, a, b in zip(extra["rel"], extra["account"], extra["other"]):
                doomed[rel] = (min(a, b), max(a, b))
        if doomed:
            pairs = [{"a": a, "b": b} for a, b in sorted(set(doomed.values()))]
            session.execute_write(lambda tx: tx.run(
                "UNWIND $pairs AS p MATCH (a:Account {account_id: p.a})-[r:PROMPT_SIMILAR]->"
                "(b:Account {account_id: p.b}) DELETE r "
                "SET a.changed_seq = $seq, b.changed_seq = $seq",
                pairs=pairs, seq=int(change_seq)).consume())
    return {x for pair in doomed.values() for x in pair}


def _feature_inputs(tx: Any, ids: list[str], procedures: bool) -> pd.DataFrame:
    if procedures:
        return feature_inputs(tx, ids, PROMPT_STATE_FIELDS)
    return pd.DataFrame(tx.run(FEATURE_INPUT_QUERY, ids=ids).data())


def update_features(driver: Any, database: str, account_ids: list[str], batch_size: int, *,
                    procedures: bool = False) -> int:
    """Recompute ``ACCOUNT_FEATURES`` for ``account_ids`` from stored state and relationships."""
    updated = 0
    columns = ["account_id", *ACCOUNT_FEATURES]
    with quiet_session(driver, database) as session:
        for _, chunk in batches([{"id": i} for i in sorted(account_ids)], batch_size):
            inputs = session.execute_read(_feature_inputs, [c["id"] for c in chunk], procedures)
            if inputs.empty:
                continue
            features = compute_account_features(inputs)
            if procedures:
                session.execute_write(FEATURE_WRITE, column_rows(features, columns))
            else:
                rows = records(features, columns)
                session.execute_write(
                    lambda tx, r: tx.run(FEATURE_WRITE_QUERY, rows=r).consume(), rows)
            updated += len(features)
    return updated
