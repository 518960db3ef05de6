"""The first load of an empty database: ``neo4j-admin database import`` instead of
transactions, with the same validation, features, similarity pairs and ledger as every
later delivery (``ingest.pipeline``)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from sybilgnn.config import Settings
from sybilgnn.features.hashing import load_secret
from sybilgnn.features.prompt_similarity import similar_account_pairs
from sybilgnn.ingest import bulk, loaders
from sybilgnn.ingest.ledger import (Prevalidated, dedupe_accounts, finish_files,
                                    finish_summary, reject_unknown_accounts)
from sybilgnn.ingest.schema import ensure_schema
from sybilgnn.ingest.summary import IngestSummary, PhaseClock
from sybilgnn.ingest.tables import ValidatedTable, find_tables
from sybilgnn.neo4j.connection import open_driver

__all__ = ["ingest_bulk"]


def ingest_bulk(settings: Settings, directory: Path, progress: bool,
                 prevalidated: Prevalidated) -> IngestSummary:
    """First load of an empty database through ``neo4j-admin database import``."""
    validated, started = prevalidated
    files = find_tables(directory)
    summary = IngestSummary(directory=directory, mode="bulk")
    by_table = {v.table: v for v in validated}
    # read_validate, aggregate, features, csv, import, restart, schema, ledger (+ 2 for prompts)
    clock = PhaseClock(summary, 8 + 2 * ("prompts" in by_table), progress)
    clock.last = started
    run_accounts = dedupe_accounts(by_table)
    reject_unknown_accounts(validated, run_accounts, lambda ids: set())
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
        finish_summary(summary, settings, directory, files, validated)
        finish_files(driver, settings.neo4j.database, validated)
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
    result = similar_account_pairs(entries["acct"].to_numpy(), signatures, settings.similarity,
                                   rows=entries["sig"].to_numpy())
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
