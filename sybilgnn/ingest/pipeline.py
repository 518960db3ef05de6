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
  through ``neo4j-admin database import`` (``first_load.py``, ``bulk.py``), then schema and
  ledger (``ledger.py``: what both ways share).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.features.hashing import keyed_hash_many, load_secret
from sybilgnn.features.prompt_similarity import similar_account_pairs
from sybilgnn.ingest import loaders
from sybilgnn.ingest.changes import next_change_seq, stamp_changes
from sybilgnn.ingest.first_load import ingest_bulk
from sybilgnn.ingest.ledger import (Prevalidated, already_ingested, dedupe_accounts,
                                    existing_accounts, finish_files, finish_summary,
                                    read_new_tables, reject_unknown_accounts)
from sybilgnn.ingest.derived import prune_similarity, update_features, write_similarity
from sybilgnn.ingest.schema import ensure_schema
from sybilgnn.ingest.summary import IngestSummary, PhaseClock, TableSummary
from sybilgnn.ingest.tables import ValidatedTable, file_digest, find_tables
from sybilgnn.ingest.writer import quiet_session
from sybilgnn.neo4j.connection import open_driver
from sybilgnn.neo4j.plugin import use_procedures

__all__ = ["IngestSummary", "TableSummary", "ingest_directory"]


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
        validated = read_new_tables(files, {f.table: file_digest(f.path) for f in files},
                                     set(), settings.similarity.num_perm, IngestSummary(directory))
        rows = sum(len(v.clean) for v in validated)
        if mode == "auto" and rows < settings.ingest.bulk_min_rows:
            return _ingest_transactional(settings, directory, own, progress,
                                         prevalidated=(validated, started))
    return ingest_bulk(settings, directory, progress, prevalidated=(validated, started))


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

    finish_summary(summary, settings, directory, files, validated)
    finish_files(driver, db, validated, change_seq, time.perf_counter() - started)
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
    seen = already_ingested(driver, db, [f"{t}:{d}" for t, d in digests.items()])
    validated = read_new_tables(files, digests, seen, settings.similarity.num_perm, summary)
    clock.lap("read_validate")
    return validated


def _load_accounts(driver: Any, db: str, size: int, validated: list[ValidatedTable],
                   summary: IngestSummary, lap: Callable[[str], None], procedures: bool
                   ) -> set[str]:
    """Load the delivery's accounts, then quarantine event rows of accounts neither in it
    nor in the graph; returns the accounts loaded (their features need updating)."""
    by_table = {v.table: v for v in validated}
    touched: set[str] = set()
    run_accounts = dedupe_accounts(by_table)
    if "accounts" in by_table:
        summary.nodes["Account"] = loaders.load_accounts(driver, db, by_table["accounts"].clean,
                                                         size, procedures=procedures)
        touched |= run_accounts
    lap("accounts")
    reject_unknown_accounts(validated, run_accounts,
                             lambda ids: existing_accounts(driver, db, ids))
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
    result = similar_account_pairs(entries["acct"].to_numpy(), signatures, similarity,
                                   rows=entries["sig"].to_numpy())
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
