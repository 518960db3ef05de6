"""Ingest event tables into Neo4j: validate, quarantine, hash identifiers, batch-load."""

from __future__ import annotations

from sybilgnn.ingest.pipeline import IngestSummary, TableSummary, ingest_directory
from sybilgnn.ingest.schema import CONSTRAINTS, INDEXES, ensure_schema
from sybilgnn.ingest.tables import REQUIRED_COLUMNS, TABLE_ORDER

__all__ = [
    "CONSTRAINTS",
    "INDEXES",
    "IngestSummary",
    "REQUIRED_COLUMNS",
    "TABLE_ORDER",
    "TableSummary",
    "ensure_schema",
    "ingest_directory",
]
