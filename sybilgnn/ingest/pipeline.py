"""``ingest_directory``: event tables -> validated, hashed, aggregated -> Neo4j.

Two ways in, chosen by ``ingest.mode``:

* transactional (deltas, remote servers): schema, ledger check, accounts, labels, ip_events,
  payments, prompts (state, then similarity), pruning over the per-account edge cap, features
  of every touched account, and finally the ledger entries. A file whose content was ingested
  before is skipped; a run that failed part-way can simply be rerun (committed counter
  batches carry markers). Each batch is written by sybilgnn's server-side procedures when the
  server has them (``neo4j.procedures``; ``procedures.py``), else by ``UNWIND`` Cypher: the
  same graph either way.
* bulk (first load into the managed server's empty database): the same validated frames go
  through ``neo4j-admin database import`` (``bulk.py``), then schema and ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.features.hashing import keyed_hash_many, load_secret
from sybilgnn.features.prompt_similarity import similar_account_pairs
from sybilgnn.ingest import bulk, loaders
from sybilgnn.ingest.changes import finish_change, next_change_seq, stamp_changes
from sybilgnn.ingest.derived import prune_similarity, update_features, write_similarity
from sybilgnn.ingest.quarantine import quarantine_path, write_quarantine
from sybilgnn.ingest.schema import ensure_schema
from sybilgnn.ingest.summary import IngestSummary, PhaseClock, TableSummary
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
from sybilgnn.neo4j.plugin import use_procedures

__all__ = ["IngestSummary", "TableSummary", "ingest_directory"]


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


def _finish_files(driver: Any, database: str, done: list[ValidatedTable],
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


def _read_new_tables(files: list[Any], digests: dict[str, str], seen: set[str],
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


def _dedupe_accounts(by_table: dict[str, ValidatedTable]) -> set[str]:
    """The delivery's account ids; a later duplicate row of the accounts table wins."""
    if "accounts" not in by_table:
        return set()
    acc = by_table["accounts"]
    dup = acc.clean.duplicated("account_id", keep="last").to_numpy()
    reject_rows(acc, dup, "account_id", "duplicate account_id; a later row in the file wins")
    return set(acc.clean["account_id"])


def _reject_unknown_accounts(validated: list[ValidatedTable], run_accounts: set[str],
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


def _finish_summary(summary: IngestSummary, settings: Settings, directory: Path,
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


def _bulk_applies(settings: Settings, driver: Any) -> str | None:
    """None when a bulk import may replace the database, else the reason it may not."""
    if not settings.neo4j.managed:
        return "the server is remote (neo4j.managed=false); bulk import needs the local one"
    with quiet_session(driver, settings.neo4j.database) as session:
        nodes = session.run("MATCH (n) RETURN count(n) AS n").single()["n"]
    if nodes:
        return f"the database already holds {nodes} nodes; bulk import only fills an empty one"
    return None


def ingest_directory(settings: Settings, directory: str | Path, *, driver: Any = None,
                     progress: bool = False) -> IngestSummary:
    """Ingest the event tables of ``directory`` into Neo4j (see docs/data-format.md).

    With ``driver`` given the load is transactional on that connection (a bulk import
    restarts the server, which would break the caller's connections).
    """
    mode, directory = settings.ingest.mode, Path(directory)
    if driver is not None:
        if mode == "bulk":
            raise InputError("ingest.mode=bulk restarts the managed server, so it cannot run "
                             "on a caller's driver; call without one or use mode=auto")
        return _ingest_transactional(settings, directory, driver, progress)
    with open_driver(settings) as own:
        reason = _bulk_applies(settings, own) if mode != "transactional" else "mode"
        if reason is not None:
            if mode == "bulk":
                raise InputError(f"ingest.mode=bulk is not possible: {reason}. "
                                 "Use --set ingest.mode=transactional (or auto).")
            return _ingest_transactional(settings, directory, own, progress)
        # empty database: every file is new, so read and validate once for either path
        started = time.perf_counter()
        files = find_tables(directory)
        validated = _read_new_tables(files, {f.table: file_digest(f.path) for f in files},
                                     set(), settings.similarity.num_perm, IngestSummary(directory))
        rows = sum(len(v.clean) for v in validated)
        if mode == "auto" and rows < settings.ingest.bulk_min_rows:
            return _ingest_transactional(settings, directory, own, progress,
                                         prevalidated=(validated, started))
    return _ingest_bulk(settings, directory, progress, prevalidated=(validated, started))


Prevalidated = tuple[list[ValidatedTable], float]  # tables and when reading them started


def _ingest_bulk(settings: Settings, directory: Path, progress: bool,
                 prevalidated: Prevalidated) -> IngestSummary:
    """First load of an empty database through ``neo4j-admin database import``."""
    validated, started = prevalidated
    files = find_tables(directory)
    summary = IngestSummary(directory=directory, mode="bulk")
    by_table = {v.table: v for v in validated}
    # read_validate, aggregate, features, csv, import, restart, schema, ledger (+ 2 for prompts)
    clock = PhaseClock(summary, 8 + 2 * ("prompts" in by_table), progress)
    clock.last = started
    run_accounts = _dedupe_accounts(by_table)
    _reject_unknown_accounts(validated, run_accounts, lambda ids: set())
    clock.lap("read_validate")
    table, frames = _bulk_tables(settings, by_table, summary, clock)
    workdir = bulk.import_workdir(settings)
    try:
        file_args, multiline = bulk.write_import_csvs(workdir, table, frames)
        clock.lap("csv")
        rows = len(table) + sum(len(f) for f in (frames.ip_nodes, frames.pm_nodes,
                                                 frames.used_ip, frames.paid_with, frames.similar))
        summary.import_stages = bulk.run_import(settings, workdir, file_args,
                                                multiline=multiline, rows=rows,
                                                on_phase=clock.lap)
    finally:
        bulk.remove_workdir(workdir)
    _count_bulk(summary, table, frames, by_table)
    with open_driver(settings) as driver:
        ensure_schema(driver, settings.neo4j.database)
        clock.lap("schema")
        _finish_summary(summary, settings, directory, files, validated)
        _finish_files(driver, settings.neo4j.database, validated)
    clock.lap("ledger")
    clock.bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _bulk_tables(settings: Settings, by_table: dict[str, ValidatedTable],
                 summary: IngestSummary, clock: PhaseClock
                 ) -> tuple[pd.DataFrame, bulk.BulkFrames]:
    """The account table (features included) and the relationship frames the import writes."""
    secret = load_secret(settings.hashing)
    accounts = by_table["accounts"].clean.rename(columns={"created_at": "created_ms"})
    frames = bulk.BulkFrames(accounts=accounts)
    labels, label_columns = (loaders.label_frame(by_table["labels"].clean)
                             if "labels" in by_table else (None, []))
    if "ip_events" in by_table:
        frames.ip_nodes, frames.used_ip = loaders.ip_frames(by_table["ip_events"].clean, secret)
    if "payments" in by_table:
        frames.pm_nodes, frames.paid_with = loaders.payment_frames(by_table["payments"].clean,
                                                                   secret)
    clock.lap("aggregate")
    state = None
    if "prompts" in by_table:
        state, frames.similar = _bulk_prompts(settings, by_table["prompts"], summary, clock)
    table = bulk.account_table(frames, labels, label_columns, state)
    clock.lap("features")
    return table, frames


def _bulk_prompts(settings: Settings, v: ValidatedTable, summary: IngestSummary,
                  clock: PhaseClock) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prompt state per account and the similar-account pairs, from MinHash signatures."""
    text_len, text_hash, signatures, index = loaders.prompt_signatures(
        v.clean, settings.similarity.num_perm, settings.similarity.shingle_size)
    state = loaders.prompt_state_frame(v.clean, text_len, text_hash)
    clock.lap("minhash")
    entries = pd.DataFrame({"acct": v.clean["account_id"].to_numpy(), "sig": index})
    entries = entries[entries["sig"] >= 0].drop_duplicates()
    result = similar_account_pairs(entries["acct"].to_numpy(),
                                   signatures[entries["sig"].to_numpy()], settings.similarity)
    summary.similarity = {"prompts": result.n_prompts, "candidates": result.n_candidates,
                          "skipped_buckets": result.skipped_buckets,
                          "bands": result.bands, "rows_per_band": result.rows}
    clock.lap("similarity")
    return state, result.pairs


def _count_bulk(summary: IngestSummary, table: pd.DataFrame, frames: bulk.BulkFrames,
                by_table: dict[str, ValidatedTable]) -> None:
    """Node and relationship counts of a bulk load, per table it had."""
    summary.nodes = {"Account": len(table)}
    if "ip_events" in by_table:
        summary.nodes["IP"] = len(frames.ip_nodes)
        summary.relationships["USED_IP"] = len(frames.used_ip)
    if "payments" in by_table:
        summary.nodes["PaymentInstrument"] = len(frames.pm_nodes)
        summary.relationships["PAID_WITH"] = len(frames.paid_with)
    if "prompts" in by_table:
        summary.relationships["PROMPT_SIMILAR"] = len(frames.similar)
    summary.features_updated = len(table)


def _ingest_transactional(settings: Settings, directory: Path, driver: Any, progress: bool,
                          prevalidated: Prevalidated | None = None) -> IngestSummary:
    """A later delivery, through batched transactions that stamp what they change."""
    started = time.perf_counter() if prevalidated is None else prevalidated[1]
    db, size = settings.neo4j.database, settings.ingest.batch_size
    files = find_tables(directory)
    summary = IngestSummary(directory=directory)
    clock = PhaseClock(summary, 13, progress)
    validated = _schema_and_new_tables(settings, driver, files, summary, clock, prevalidated)
    secret = load_secret(settings.hashing)
    by_table = {v.table: v for v in validated}
    # read_validate twice, schema, accounts, features, ledger; one per event table; prompts 5
    clock.expect(6 + sum(t in by_table for t in ("labels", "ip_events", "payments"))
                 + 5 * ("prompts" in by_table))
    marker_of = {v.table: f"{v.table}:{v.digest}" for v in validated}
    # a delivery ingested before changes nothing: no change value, nothing stamped
    change_seq = (next_change_seq(driver, db, ",".join(sorted(marker_of.values())))
                  if validated else None)
    with quiet_session(driver, db) as session:  # the server's procedures, else Cypher
        procs = use_procedures(session, settings.neo4j.procedures)
    summary.procedures = procs
    touched = _load_tables(settings, driver, validated, marker_of, summary, clock,
                           change_seq or 0, procs)
    summary.features_updated = update_features(driver, db, sorted(touched), size,
                                               procedures=procs)
    if change_seq is not None:
        stamp_changes(driver, db, change_seq, _touched_nodes(by_table, touched, secret), size,
                      procedures=procs)
    clock.lap("features")

    _finish_summary(summary, settings, directory, files, validated)
    _finish_files(driver, db, validated, change_seq, time.perf_counter() - started)
    clock.lap("ledger")
    clock.bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _load_tables(settings: Settings, driver: Any, validated: list[ValidatedTable],
                 marker_of: dict[str, str], summary: IngestSummary, clock: PhaseClock,
                 change_seq: int, procs: bool) -> set[str]:
    """Write each new table of a delivery; the accounts whose inputs it touched."""
    db, size = settings.neo4j.database, settings.ingest.batch_size
    secret = load_secret(settings.hashing)
    by_table = {v.table: v for v in validated}
    touched = _load_accounts(driver, db, size, validated, summary, clock.lap, procs)
    if "labels" in by_table:
        loaders.load_labels(driver, db, by_table["labels"].clean, size, procedures=procs)
        clock.lap("labels")
    if "ip_events" in by_table:
        v = by_table["ip_events"]
        summary.nodes["IP"], summary.relationships["USED_IP"] = loaders.load_ip_events(
            driver, db, v.clean, secret, size, marker_of["ip_events"], procedures=procs)
        touched |= set(v.clean["account_id"])
        clock.lap("ip_events")
    if "payments" in by_table:
        v = by_table["payments"]
        summary.nodes["PaymentInstrument"], summary.relationships["PAID_WITH"] = \
            loaders.load_payments(driver, db, v.clean, secret, size, marker_of["payments"],
                                  procedures=procs)
        touched |= set(v.clean["account_id"])
        clock.lap("payments")
    if "prompts" in by_table:
        touched |= _load_prompts(settings, driver, by_table["prompts"], marker_of["prompts"],
                                 summary, clock.lap, change_seq, procs)
    return touched


def _hashed(raw: pd.Series, secret: bytes) -> set[str]:
    """The node keys of these raw IPs or tokens (the loaders' keyed hash, without their
    per-pair aggregation)."""
    return set(keyed_hash_many(raw.unique().tolist(), secret).values())


def _touched_nodes(by_table: dict[str, ValidatedTable], accounts: set[str], secret: bytes
                   ) -> dict[str, set[str]]:
    """Every node the delivery wrote, by label: the accounts whose features were updated,
    the labelled accounts, and the (hashed) IPs and instruments of its events."""
    touched = {"Account": set(accounts)}
    if "labels" in by_table:
        touched["Account"] |= set(by_table["labels"].clean["account_id"])
    if "ip_events" in by_table:
        touched["IP"] = _hashed(by_table["ip_events"].clean["ip"], secret)
    if "payments" in by_table:
        touched["PaymentInstrument"] = _hashed(by_table["payments"].clean["instrument_token"],
                                               secret)
    return touched


def _schema_and_new_tables(settings: Settings, driver: Any, files: list[Any],
                           summary: IngestSummary, clock: PhaseClock,
                           prevalidated: Prevalidated | None) -> list[ValidatedTable]:
    """Schema first, then the delivery's tables: those read already (``prevalidated``), or
    the files whose content the ledger has not seen (the rest are marked skipped)."""
    db = settings.neo4j.database
    if prevalidated is not None:
        clock.last = prevalidated[1]
        clock.lap("read_validate")
    ensure_schema(driver, db)
    clock.lap("schema")
    if prevalidated is not None:
        return prevalidated[0]
    digests = {f.table: file_digest(f.path) for f in files}
    seen = _already_ingested(driver, db, [f"{t}:{d}" for t, d in digests.items()])
    validated = _read_new_tables(files, digests, seen, settings.similarity.num_perm, summary)
    clock.lap("read_validate")
    return validated


def _load_accounts(driver: Any, db: str, size: int, validated: list[ValidatedTable],
                   summary: IngestSummary, lap: Callable[[str], None], procedures: bool
                   ) -> set[str]:
    """Load the delivery's accounts, then quarantine event rows of accounts neither in it
    nor in the graph; returns the accounts loaded (their features need updating)."""
    by_table = {v.table: v for v in validated}
    touched: set[str] = set()
    run_accounts = _dedupe_accounts(by_table)
    if "accounts" in by_table:
        summary.nodes["Account"] = loaders.load_accounts(driver, db, by_table["accounts"].clean,
                                                         size, procedures=procedures)
        touched |= run_accounts
    lap("accounts")
    _reject_unknown_accounts(validated, run_accounts,
                             lambda ids: _existing_accounts(driver, db, ids))
    lap("read_validate")
    return touched


def _load_prompts(settings: Settings, driver: Any, v: ValidatedTable, marker: str,
                  summary: IngestSummary, lap: Callable[[str], None], change_seq: int,
                  procedures: bool) -> set[str]:
    """Prompt state, then similarity edges, pruned to the per-account cap; returns the
    accounts whose features need updating (senders, pair ends, pruned accounts)."""
    db, size = settings.neo4j.database, settings.ingest.batch_size
    similarity = settings.similarity
    text_len, text_hash, signatures, index = loaders.prompt_signatures(
        v.clean, similarity.num_perm, similarity.shingle_size)
    lap("minhash")
    loaders.load_prompt_state(driver, db, v.clean, text_len, text_hash, size, marker,
                              procedures=procedures)
    lap("prompt_state")
    touched = set(v.clean["account_id"])
    entries = pd.DataFrame({"acct": v.clean["account_id"].to_numpy(), "sig": index})
    entries = entries[entries["sig"] >= 0].drop_duplicates()
    result = similar_account_pairs(entries["acct"].to_numpy(),
                                   signatures[entries["sig"].to_numpy()], similarity)
    lap("similarity")
    summary.relationships["PROMPT_SIMILAR"] = write_similarity(driver, db, result, size, marker,
                                                               procedures=procedures)
    lap("similarity_write")
    summary.similarity = {"prompts": result.n_prompts, "candidates": result.n_candidates,
                          "skipped_buckets": result.skipped_buckets,
                          "bands": result.bands, "rows_per_band": result.rows}
    endpoints = set(result.pairs["account_a"]) | set(result.pairs["account_b"])
    touched |= endpoints
    touched |= prune_similarity(driver, db, sorted(endpoints),
                                similarity.max_edges_per_account, size, change_seq,
                                procedures=procedures)
    lap("similarity_prune")
    return touched
