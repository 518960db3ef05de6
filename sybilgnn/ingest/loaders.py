"""Per-table loading: aggregate in pandas, then batched ``UNWIND $rows`` writes.

Events are reduced per (account, ip) and (account, instrument) before anything is sent, so the
server sees one row per relationship per file, not one per event. Counters add on top of what
is stored (each file is a delta; the ledger makes re-ingesting a file a no-op).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from neo4j import ManagedTransaction

from sybilgnn.features.account_features import (
    PROMPT_STATE_FIELDS,
    merge_prompt_state,
    prompt_state_from_events,
    text_hashes,
)
from sybilgnn.features.hashing import keyed_hash_many
from sybilgnn.features.prompt_similarity import minhash_signatures, signature_hash
from sybilgnn.ingest.procedures import NodeWrite, RelWrite, column_rows, read_properties
from sybilgnn.ingest.writer import write_batches

__all__ = [
    "records",
    "label_frame",
    "ip_frames",
    "payment_frames",
    "prompt_state_frame",
    "load_accounts",
    "load_labels",
    "load_ip_events",
    "load_payments",
    "prompt_signatures",
    "load_prompt_state",
]

ACCOUNT_QUERY = """
UNWIND $rows AS row
MERGE (a:Account {account_id: row.account_id})
SET a.created_at = datetime({epochMillis: row.created_ms}), a.country = row.country,
    a.plan = row.plan
"""
LABEL_SET = ("a.label = row.label, a.label_source = row.source, "
             "a.label_at = datetime({epochMillis: row.labelled_ms})")
IP_NODE_QUERY = """
UNWIND $rows AS row
MERGE (i:IP {ip_id: row.ip_id})
SET i.asn = row.asn, i.is_datacenter = row.is_datacenter
"""
USED_IP_QUERY = """
UNWIND $rows AS row
MATCH (a:Account {account_id: row.account_id})
MATCH (i:IP {ip_id: row.ip_id})
MERGE (a)-[r:USED_IP]->(i)
ON CREATE SET r.first_seen = datetime({epochMillis: row.first_ms}),
              r.last_seen = datetime({epochMillis: row.last_ms}), r.n_events = row.n
ON MATCH SET r.first_seen = CASE WHEN row.first_ms < r.first_seen.epochMillis
                                 THEN datetime({epochMillis: row.first_ms}) ELSE r.first_seen END,
             r.last_seen = CASE WHEN row.last_ms > r.last_seen.epochMillis
                                THEN datetime({epochMillis: row.last_ms}) ELSE r.last_seen END,
             r.n_events = r.n_events + row.n
"""
PM_NODE_QUERY = """
UNWIND $rows AS row
MERGE (p:PaymentInstrument {pm_id: row.pm_id})
SET p.bin = row.bin, p.issuer_country = row.issuer_country, p.is_prepaid = row.is_prepaid
"""
PAID_WITH_QUERY = """
UNWIND $rows AS row
MATCH (a:Account {account_id: row.account_id})
MATCH (p:PaymentInstrument {pm_id: row.pm_id})
MERGE (a)-[r:PAID_WITH]->(p)
ON CREATE SET r.first_seen = datetime({epochMillis: row.first_ms}), r.n_charges = row.n
ON MATCH SET r.first_seen = CASE WHEN row.first_ms < r.first_seen.epochMillis
                                 THEN datetime({epochMillis: row.first_ms}) ELSE r.first_seen END,
             r.n_charges = r.n_charges + row.n
"""
STATE_READ_QUERY = (
    "UNWIND $ids AS id MATCH (a:Account {account_id: id}) RETURN id, "
    + ", ".join(f"a.{f} AS {f}" for f in PROMPT_STATE_FIELDS)
)
STATE_WRITE_QUERY = """
UNWIND $rows AS row
MATCH (a:Account {account_id: row.account_id})
SET a += row.state
"""


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as plain-Python dicts (no numpy scalars; NaN becomes None) for driver parameters."""
    lists = []
    for col in columns:
        series = frame[col]
        values = series.astype(object).where(series.notna(), None).tolist() \
            if series.dtype == object or series.isna().any() else series.tolist()
        lists.append(values)
    return [dict(zip(columns, vals)) for vals in zip(*lists)]


def _latest_per(frame: pd.DataFrame, key: list[str], time_col: str) -> pd.DataFrame:
    return frame.sort_values([*key, time_col, "_row"], kind="stable").drop_duplicates(key, keep="last")


def load_accounts(driver: Any, database: str, clean: pd.DataFrame, batch_size: int, *,
                  procedures: bool = False) -> int:
    frame = clean.rename(columns={"created_at": "created_ms"})
    columns = ["account_id", "created_ms", "country", "plan"]
    if procedures:
        work = NodeWrite("Account", "account_id", ("created_at", "country", "plan"),
                         create=True, times=("created_at",))
        return write_batches(driver, database, column_rows(frame, columns), batch_size,
                             work=work)
    return write_batches(driver, database, records(frame, columns), batch_size,
                         query=ACCOUNT_QUERY)


def label_frame(clean: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One label per account (the latest ``labelled_at``); campaign/fleet only when present."""
    latest = _latest_per(clean, ["account_id"], "labelled_at").rename(
        columns={"labelled_at": "labelled_ms"})
    columns = ["account_id", "label", "source", "labelled_ms"]
    columns += [c for c in ("campaign", "fleet") if c in latest]
    return latest, columns


def load_labels(driver: Any, database: str, clean: pd.DataFrame, batch_size: int, *,
                procedures: bool = False) -> int:
    latest, columns = label_frame(clean)
    if procedures:
        work = NodeWrite("Account", "account_id",
                         ("label", "label_source", "label_at", *columns[4:]), times=("label_at",))
        return write_batches(driver, database, column_rows(latest, columns), batch_size,
                             work=work)
    sets = [LABEL_SET] + [f"a.{c} = row.{c}" for c in columns[4:]]
    query = ("UNWIND $rows AS row MATCH (a:Account {account_id: row.account_id}) SET "
             + ", ".join(sets))
    return write_batches(driver, database, records(latest, columns), batch_size, query=query)


def ip_frames(clean: pd.DataFrame, secret: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """IP nodes (hashed id, latest asn/is_datacenter) and USED_IP aggregated per pair."""
    mapping = keyed_hash_many(clean["ip"].unique().tolist(), secret)
    events = clean.assign(ip_id=clean["ip"].map(mapping)).drop(columns=["ip"])
    nodes = _latest_per(events, ["ip_id"], "timestamp")[["ip_id", "asn", "is_datacenter"]]
    rels = (events.groupby(["account_id", "ip_id"], sort=True)["timestamp"]
            .agg(first_ms="min", last_ms="max", n="size").reset_index())
    return nodes, rels


def payment_frames(clean: pd.DataFrame, secret: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PaymentInstrument nodes (hashed id, latest BIN data) and PAID_WITH per pair."""
    mapping = keyed_hash_many(clean["instrument_token"].unique().tolist(), secret)
    events = clean.assign(pm_id=clean["instrument_token"].map(mapping)).drop(
        columns=["instrument_token"])
    nodes = _latest_per(events, ["pm_id"], "timestamp")[
        ["pm_id", "bin", "issuer_country", "is_prepaid"]]
    rels = (events.groupby(["account_id", "pm_id"], sort=True)["timestamp"]
            .agg(first_ms="min", n="size").reset_index())
    return nodes, rels


IP_WRITE = NodeWrite("IP", "ip_id", ("asn", "is_datacenter"), create=True)
USED_IP_WRITE = RelWrite("USED_IP", ("Account", "account_id"), ("IP", "ip_id"),
                         ("first_seen", "last_seen", "n_events"), ("time_min", "time_max", "add"))
PM_WRITE = NodeWrite("PaymentInstrument", "pm_id", ("bin", "issuer_country", "is_prepaid"),
                     create=True)
PAID_WITH_WRITE = RelWrite("PAID_WITH", ("Account", "account_id"), ("PaymentInstrument", "pm_id"),
                           ("first_seen", "n_charges"), ("time_min", "add"))


def load_ip_events(driver: Any, database: str, clean: pd.DataFrame, secret: bytes,
                   batch_size: int, marker: str, *, procedures: bool = False) -> tuple[int, int]:
    """IP nodes and aggregated USED_IP; returns (nodes, rels)."""
    nodes, rels = ip_frames(clean, secret)
    rel_columns = ["account_id", "ip_id", "first_ms", "last_ms", "n"]
    if procedures:
        return (write_batches(driver, database, column_rows(nodes, list(nodes.columns)),
                              batch_size, work=IP_WRITE),
                write_batches(driver, database, column_rows(rels, rel_columns), batch_size,
                              work=USED_IP_WRITE, marker=f"{marker}:USED_IP"))
    n_nodes = write_batches(driver, database, records(nodes, list(nodes.columns)),
                            batch_size, query=IP_NODE_QUERY)
    n_rels = write_batches(driver, database,
                           records(rels, ["account_id", "ip_id", "first_ms", "last_ms", "n"]),
                           batch_size, query=USED_IP_QUERY, marker=f"{marker}:USED_IP")
    return n_nodes, n_rels


def load_payments(driver: Any, database: str, clean: pd.DataFrame, secret: bytes,
                  batch_size: int, marker: str, *, procedures: bool = False) -> tuple[int, int]:
    """PaymentInstrument nodes and aggregated PAID_WITH; returns (nodes, rels)."""
    nodes, rels = payment_frames(clean, secret)
    if procedures:
        return (write_batches(driver, database, column_rows(nodes, list(nodes.columns)),
                              batch_size, work=PM_WRITE),
                write_batches(driver, database,
                              column_rows(rels, ["account_id", "pm_id", "first_ms", "n"]),
                              batch_size, work=PAID_WITH_WRITE, marker=f"{marker}:PAID_WITH"))
    n_nodes = write_batches(driver, database, records(nodes, list(nodes.columns)),
                            batch_size, query=PM_NODE_QUERY)
    n_rels = write_batches(driver, database, records(rels, ["account_id", "pm_id", "first_ms", "n"]),
                           batch_size, query=PAID_WITH_QUERY, marker=f"{marker}:PAID_WITH")
    return n_nodes, n_rels


def prompt_signatures(clean: pd.DataFrame, num_perm: int, shingle_size: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(text_len, text_hash, signatures of distinct prompts, row -> signature index)``.

    Identical texts are signed once (templated traffic repeats a lot); rows whose text has no
    word get index -1 and take no part in similarity.
    """
    if "text" in clean:
        texts = clean["text"].astype(str)
        codes, uniques = pd.factorize(texts)
        sig, has_words = minhash_signatures(list(uniques), num_perm=num_perm,
                                            shingle_size=shingle_size)
        index = np.where(has_words[codes], codes, -1)
        return (texts.str.len().to_numpy(np.float64), text_hashes(list(uniques))[codes],
                sig, index)
    sig_rows = np.array(clean["minhash"].tolist(), dtype=np.uint64).reshape(len(clean), num_perm)
    hashes = (signature_hash(sig_rows) >> np.uint64(1)).astype(np.int64)
    return np.full(len(clean), np.nan), hashes, sig_rows, np.arange(len(clean))


def prompt_state_frame(clean: pd.DataFrame, text_len: np.ndarray,
                       text_hash: np.ndarray) -> pd.DataFrame:
    """This file's per-account prompt state (``agg_*``), before merging with stored state."""
    return prompt_state_from_events(pd.DataFrame({
        "account_id": clean["account_id"].to_numpy(),
        "ts_ms": clean["timestamp"].to_numpy(np.int64),
        "text_len": text_len, "text_hash": text_hash}))


STATE_WRITE = NodeWrite("Account", "account_id", tuple(PROMPT_STATE_FIELDS))


def load_prompt_state(driver: Any, database: str, clean: pd.DataFrame, text_len: np.ndarray,
                      text_hash: np.ndarray, batch_size: int, marker: str, *,
                      procedures: bool = False) -> int:
    """Merge this file's per-account prompt state into the stored ``agg_*`` properties."""
    state = prompt_state_frame(clean, text_len, text_hash)
    rows = records(state, ["account_id", *PROMPT_STATE_FIELDS])

    def work(tx: ManagedTransaction, batch: list[dict[str, Any]]) -> int:
        ids = [b["account_id"] for b in batch]
        stored = (read_properties(tx, "Account", "account_id", ids, PROMPT_STATE_FIELDS)
                  if procedures else {r["id"]: dict(r) for r in tx.run(STATE_READ_QUERY, ids=ids)})
        merged = []
        for row in batch:
            new = {k: row[k] for k in PROMPT_STATE_FIELDS}
            merged.append({"account_id": row["account_id"],
                           "state": merge_prompt_state(stored.get(row["account_id"]), new)})
        if procedures:
            STATE_WRITE.run(tx, [(m["account_id"], *(m["state"].get(f) for f in
                                                     PROMPT_STATE_FIELDS)) for m in merged])
        else:
            tx.run(STATE_WRITE_QUERY, rows=merged).consume()
        return len(batch)

    return write_batches(driver, database, rows, batch_size, work=work,
                         marker=f"{marker}:STATE")
