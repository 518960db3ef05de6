"""Uniqueness constraints and indexes, created before any load so MERGE is an index lookup."""

from __future__ import annotations

from typing import Any

from sybilgnn.ingest.writer import quiet_session

__all__ = ["CONSTRAINTS", "INDEXES", "NODE_LABELS", "REL_TYPES", "ensure_schema"]

NODE_LABELS = {"Account", "IP", "PaymentInstrument", "Fleet", "ScoringRun",
               "IngestFile", "IngestBatch", "ChangeClock"}
REL_TYPES = {"USED_IP", "PAID_WITH", "PROMPT_SIMILAR"}

# (constraint name, label, key property)
CONSTRAINTS = [
    ("account_id_unique", "Account", "account_id"),
    ("ip_id_unique", "IP", "ip_id"),
    ("pm_id_unique", "PaymentInstrument", "pm_id"),
    ("fleet_id_unique", "Fleet", "fleet_id"),
    ("scoring_run_id_unique", "ScoringRun", "run_id"),
    ("ingest_file_key_unique", "IngestFile", "file_key"),
    ("ingest_batch_key_unique", "IngestBatch", "batch_key"),
    ("change_clock_name_unique", "ChangeClock", "name"),
]
# (index name, label, property): range indexes for the export's time split and analysts' filters
INDEXES = [
    ("account_label_at", "Account", "label_at"),
    ("account_label", "Account", "label"),
    ("account_created_at", "Account", "created_at"),
    ("ip_is_datacenter", "IP", "is_datacenter"),
    # what incremental scoring looks up: the nodes a delivery touched (ingest/changes.py)
    ("account_changed_seq", "Account", "changed_seq"),
    ("ip_changed_seq", "IP", "changed_seq"),
    ("pm_changed_seq", "PaymentInstrument", "changed_seq"),
]


def ensure_schema(driver: Any, database: str) -> None:
    """Create the constraints and indexes when absent (idempotent) and wait for them online.

    One read lists what exists (a constraint's backing index is listed as an index), so a
    delta on a graph that has them all costs two round trips, not one per statement."""
    with quiet_session(driver, database) as session:
        present = {r["name"] for r in session.run(
            "SHOW INDEXES YIELD name, state WHERE state = 'ONLINE' RETURN name")}
        for name, label, prop in CONSTRAINTS:
            assert label in NODE_LABELS and prop.isidentifier()
            if name not in present:
                session.run(f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) "
                            f"REQUIRE n.{prop} IS UNIQUE").consume()
        for name, label, prop in INDEXES:
            assert label in NODE_LABELS and prop.isidentifier()
            if name not in present:
                session.run(f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) "
                            f"ON (n.{prop})").consume()
        if not present.issuperset(n for n, _, _ in CONSTRAINTS + INDEXES):
            session.run("CALL db.awaitIndexes(300)").consume()
