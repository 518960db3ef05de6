"""``ingest_directory``: event tables -> validated, hashed, aggregated -> Neo4j.

Order: schema, ledger check, accounts, labels, ip_events, payments, prompts (state, then
similarity), pruning over the per-account edge cap, features of every touched account, and
finally the ledger entries. A file whose content was ingested before is skipped; a run that
failed part-way can simply be rerun (committed counter batches carry markers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from sybilgnn.config import Settings
from sybilgnn.features.hashing import load_secret
from sybilgnn.ingest import loaders
from sybilgnn.ingest.derived import prune_similarity, update_features, write_similarity
from sybilgnn.ingest.quarantine import quarantine_path, write_quarantine
from sybilgnn.ingest.schema import ensure_schema
from sybilgnn.ingest.tables import (
    ValidatedTable,
    file_digest,
    find_tables,
    read_table,
    reject_rows,
    validate_table,
)
from sybilgnn.ingest.writer import quiet_session
from sybilgnn.neo4j.connection import open_driver

__all__ = ["IngestSummary", "TableSummary", "ingest_directory"]


@dataclass
class TableSummary:
    table: str
    file: str
    status: str  # 'loaded' or 'skipped' (same content ingested before)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0


@dataclass
class IngestSummary:
    """What one ingest did; ``relationships`` counts relationship rows written per type."""

    directory: Path
    tables: dict[str, TableSummary] = field(default_factory=dict)
    nodes: dict[str, int] = field(default_factory=dict)
    relationships: dict[str, int] = field(default_factory=dict)
    features_updated: int = 0
    quarantine_file: Path | None = None
    seconds: float = 0.0
    similarity: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def rows_quarantined(self) -> int:
        return sum(t.rows_quarantined for t in self.tables.values())

    def lines(self) -> list[str]:
        """Human-readable report, one line per table plus totals."""
        out = []
        for t in self.tables.values():
            if t.status == "skipped":
                out.append(f"{t.table:<10} {t.file}: skipped (already ingested)")
            else:
                out.append(f"{t.table:<10} {t.file}: {t.rows_read} rows, {t.rows_loaded} loaded, "
                           f"{t.rows_quarantined} quarantined")
        out.append("nodes: " + ", ".join(f"{k} {v}" for k, v in self.nodes.items()))
        out.append("relationships: " + ", ".join(f"{k} {v}" for k, v in
                                                 self.relationships.items()))
        out.append(f"features updated for {self.features_updated} accounts in {self.seconds:.1f}s")
        if self.quarantine_file is not None:
            out.append(f"quarantined rows written to {self.quarantine_file}")
        return out


def _already_ingested(driver: Any, database: str, keys: list[str]) -> set[str]:
    with quiet_session(driver, database) as session:
        found = session.run("MATCH (f:IngestFile) WHERE f.file_key IN $keys RETURN f.file_key AS k",
                            keys=keys)
        return {r["k"] for r in found}


def _existing_accounts(driver: Any, database: str, ids: list[str],
                       chunk: int = 50_000) -> set[str]:
    """The subset of ``ids`` already in the graph (looked up in chunks)."""
    found: set[str] = set()
    with quiet_session(driver, database) as session:
        for start in range(0, len(ids), chunk):
            result = session.run("UNWIND $ids AS id MATCH (a:Account {account_id: id}) "
                                 "RETURN a.account_id AS id", ids=ids[start:start + chunk])
            found.update(r["id"] for r in result)
    return found


def _finish_files(driver: Any, database: str, done: list[ValidatedTable]) -> None:
    """Record each file in the ledger and drop its batch markers, in one transaction."""
    rows = [{"key": f"{v.table}:{v.digest}", "table": v.table, "name": v.path.name,
             "rows": v.rows_read, "quarantined": v.rows_quarantined} for v in done]

    def work(tx: Any) -> None:
        tx.run("UNWIND $rows AS row MERGE (f:IngestFile {file_key: row.key}) "
               "SET f.table = row.table, f.name = row.name, f.rows = row.rows, "
               "f.quarantined = row.quarantined, f.ingested_at = datetime()", rows=rows).consume()
        tx.run("MATCH (b:IngestBatch) WHERE any(k IN $keys WHERE b.batch_key STARTS WITH k) "
               "DELETE b", keys=[r["key"] for r in rows]).consume()

    with quiet_session(driver, database) as session:
        session.execute_write(work)


def ingest_directory(settings: Settings, directory: str | Path, *, driver: Any = None,
                     progress: bool = False) -> IngestSummary:
    """Ingest the event tables of ``directory`` into Neo4j (see docs/data-format.md)."""
    if driver is None:
        with open_driver(settings) as own:
            return ingest_directory(settings, directory, driver=own, progress=progress)
    started = time.perf_counter()
    directory = Path(directory)
    db, size = settings.neo4j.database, settings.ingest.batch_size
    files = find_tables(directory)
    summary = IngestSummary(directory=directory)
    ensure_schema(driver, db)
    digests = {f.table: file_digest(f.path) for f in files}
    seen = _already_ingested(driver, db, [f"{t}:{d}" for t, d in digests.items()])
    secret = load_secret(settings.hashing)
    num_perm = settings.similarity.num_perm

    clock = [time.perf_counter()]
    bar = tqdm(total=11, desc="ingest", unit="step", disable=not progress, leave=False)

    def lap(name: str) -> None:
        now = time.perf_counter()
        summary.timings[name] = summary.timings.get(name, 0.0) + now - clock[0]
        clock[0] = now
        bar.set_postfix_str(f"{name} done")
        bar.update(1)

    lap("schema")
    validated: list[ValidatedTable] = []
    for f in files:
        if f"{f.table}:{digests[f.table]}" in seen:
            summary.tables[f.table] = TableSummary(f.table, f.path.name, "skipped")
            continue
        frame = read_table(f.path)
        validated.append(validate_table(f.table, f.path, frame, digest=digests[f.table],
                                        num_perm=num_perm))

    lap("read_validate")
    by_table = {v.table: v for v in validated}
    touched: set[str] = set()
    run_accounts: set[str] = set()
    if "accounts" in by_table:
        acc = by_table["accounts"]
        dup = acc.clean.duplicated("account_id", keep="last").to_numpy()
        reject_rows(acc, dup, "account_id", "duplicate account_id; a later row in the file wins")
        run_accounts = set(acc.clean["account_id"])
        summary.nodes["Account"] = loaders.load_accounts(driver, db, acc.clean, size)
        touched |= run_accounts
    lap("accounts")

    for v in validated:
        if v.table == "accounts":
            continue
        ids = v.clean["account_id"]
        outside = sorted(set(ids.unique()) - run_accounts)
        known = run_accounts | _existing_accounts(driver, db, outside)
        reject_rows(v, ~ids.isin(known).to_numpy(), "account_id",
                    "unknown account_id (not in accounts table nor in the graph)")

    lap("read_validate")
    marker_of = {v.table: f"{v.table}:{v.digest}" for v in validated}
    if "labels" in by_table:
        loaders.load_labels(driver, db, by_table["labels"].clean, size)
        lap("labels")
    if "ip_events" in by_table:
        v = by_table["ip_events"]
        summary.nodes["IP"], summary.relationships["USED_IP"] = loaders.load_ip_events(
            driver, db, v.clean, secret, size, marker_of["ip_events"])
        touched |= set(v.clean["account_id"])
        lap("ip_events")
    if "payments" in by_table:
        v = by_table["payments"]
        summary.nodes["PaymentInstrument"], summary.relationships["PAID_WITH"] = \
            loaders.load_payments(driver, db, v.clean, secret, size, marker_of["payments"])
        touched |= set(v.clean["account_id"])
        lap("payments")
    if "prompts" in by_table:
        v = by_table["prompts"]
        text_len, text_hash, signatures, index = loaders.prompt_signatures(
            v.clean, num_perm, settings.similarity.shingle_size)
        lap("minhash")
        loaders.load_prompt_state(driver, db, v.clean, text_len, text_hash, size,
                                  marker_of["prompts"])
        lap("prompt_state")
        touched |= set(v.clean["account_id"])
        entries = pd.DataFrame({"acct": v.clean["account_id"].to_numpy(), "sig": index})
        entries = entries[entries["sig"] >= 0].drop_duplicates()
        result, written = write_similarity(
            driver, db, entries["acct"].to_numpy(), signatures[entries["sig"].to_numpy()],
            settings.similarity, size, marker_of["prompts"])
        summary.relationships["PROMPT_SIMILAR"] = written
        lap("similarity")
        summary.similarity = {"prompts": result.n_prompts, "candidates": result.n_candidates,
                              "skipped_buckets": result.skipped_buckets,
                              "bands": result.bands, "rows_per_band": result.rows}
        endpoints = set(result.pairs["account_a"]) | set(result.pairs["account_b"])
        touched |= endpoints
        touched |= prune_similarity(driver, db, sorted(endpoints),
                                    settings.similarity.max_edges_per_account, size)
        lap("similarity")

    summary.features_updated = update_features(driver, db, sorted(touched), size)
    lap("features")

    records = [dict(r, table=v.table) for v in validated for r in v.quarantine]
    if validated:
        summary.quarantine_file = write_quarantine(
            quarantine_path(settings.ingest.quarantine_file, directory), records)
    for v in validated:
        summary.tables[v.table] = TableSummary(v.table, v.path.name, "loaded", v.rows_read,
                                               len(v.clean), v.rows_quarantined)
    _finish_files(driver, db, validated)
    lap("ledger")
    bar.close()
    summary.tables = {t: summary.tables[t] for t in sorted(summary.tables,
                                                           key=lambda t: [f.table for f in files].index(t))}
    summary.seconds = time.perf_counter() - started
    return summary
