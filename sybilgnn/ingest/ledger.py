"""What every ingest path shares: which delivery files are new, the accounts they may
refer to, and the ledger entries and summary a finished ingest writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sybilgnn.config import Settings
from sybilgnn.ingest.changes import finish_change
from sybilgnn.ingest.quarantine import quarantine_path, write_quarantine
from sybilgnn.ingest.summary import IngestSummary, TableSummary
from sybilgnn.ingest.tables import ValidatedTable, read_table, reject_rows, validate_table
from sybilgnn.ingest.writer import quiet_session

__all__ = ["Prevalidated", "already_ingested", "dedupe_accounts", "existing_accounts",
           "finish_files", "finish_summary", "read_new_tables", "reject_unknown_accounts"]

Prevalidated = tuple[list[ValidatedTable], float]  # tables and when reading them started


def already_ingested(driver: Any, database: str, keys: list[str]) -> set[str]:
    with quiet_session(driver, database) as session:
        found = session.run("MATCH (f:IngestFile) WHERE f.file_key IN $keys RETURN f.file_key AS k",
                            keys=keys)
        return {r["k"] for r in found}


def existing_accounts(driver: Any, database: str, ids: list[str],
                       chunk: int = 50_000) -> set[str]:
    """The subset of ``ids`` already in the graph (looked up in chunks)."""
    found: set[str] = set()
    with quiet_session(driver, database) as session:
        for start in range(0, len(ids), chunk):
            result = session.run("UNWIND $ids AS id MATCH (a:Account {account_id: id}) "
                                 "RETURN a.account_id AS id", ids=ids[start:start + chunk])
            found.update(r["id"] for r in result)
    return found


def finish_files(driver: Any, database: str, done: list[ValidatedTable],
                  change_seq: int | None = None, seconds: float | None = None) -> None:
    """Record each file in the ledger and drop its batch markers, in one transaction, which
    also ends the ingest's change (``change_seq``) in flight. ``change_seq`` and the
    ingest's ``seconds`` so far, kept on each file, give a scoring run its delivery-to-flag
    latency (``sybilgnn.scoring.latency``)."""
    rows = [{"key": f"{v.table}:{v.digest}", "table": v.table, "name": v.path.name,
             "rows": v.rows_read, "quarantined": v.rows_quarantined} for v in done]

    def work(tx: Any) -> None:
        tx.run("UNWIND $rows AS row MERGE (f:IngestFile {file_key: row.key}) "
               "SET f.table = row.table, f.name = row.name, f.rows = row.rows, "
               "f.quarantined = row.quarantined, f.ingested_at = datetime(), "
               "f.change_seq = $seq, f.ingest_s = $seconds",
               rows=rows, seq=change_seq, seconds=seconds).consume()
        tx.run("MATCH (b:IngestBatch) WHERE any(k IN $keys WHERE b.batch_key STARTS WITH k) "
               "DELETE b", keys=[r["key"] for r in rows]).consume()
        if change_seq is not None:
            finish_change(tx, change_seq)

    with quiet_session(driver, database) as session:
        session.execute_write(work)


def read_new_tables(files: list[Any], digests: dict[str, str], seen: set[str],
                     num_perm: int, summary: IngestSummary) -> list[ValidatedTable]:
    validated: list[ValidatedTable] = []
    for f in files:
        if f"{f.table}:{digests[f.table]}" in seen:
            summary.tables[f.table] = TableSummary(f.table, f.path.name, "skipped")
            continue
        frame = read_table(f.path)
        validated.append(validate_table(f.table, f.path, frame, digest=digests[f.table],
                                        num_perm=num_perm))
    return validated


def dedupe_accounts(by_table: dict[str, ValidatedTable]) -> set[str]:
    """The delivery's account ids; a later duplicate row of the accounts table wins."""
    if "accounts" not in by_table:
        return set()
    acc = by_table["accounts"]
    dup = acc.clean.duplicated("account_id", keep="last").to_numpy()
    reject_rows(acc, dup, "account_id", "duplicate account_id; a later row in the file wins")
    return set(acc.clean["account_id"])


def reject_unknown_accounts(validated: list[ValidatedTable], run_accounts: set[str],
                             stored: Any) -> None:
    """Quarantine event rows whose account is neither in this delivery nor in the graph."""
    for v in validated:
        if v.table == "accounts":
            continue
        ids = v.clean["account_id"]
        outside = sorted(set(ids.unique()) - run_accounts)
        known = run_accounts | (stored(outside) if outside else set())
        reject_rows(v, ~ids.isin(known).to_numpy(), "account_id",
                    "unknown account_id (not in accounts table nor in the graph)")


def finish_summary(summary: IngestSummary, settings: Settings, directory: Path,
                    files: list[Any], validated: list[ValidatedTable]) -> None:
    records = [dict(r, table=v.table) for v in validated for r in v.quarantine]
    if validated:
        summary.quarantine_file = write_quarantine(
            quarantine_path(settings.ingest.quarantine_file, directory), records)
    for v in validated:
        summary.tables[v.table] = TableSummary(v.table, v.path.name, "loaded", v.rows_read,
                                               len(v.clean), v.rows_quarantined)
    order = [f.table for f in files]
    summary.tables = {t: summary.tables[t] for t in sorted(summary.tables, key=order.index)}
