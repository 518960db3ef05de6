"""Quarantine CSV: every rejected cell with file, 1-based data row, column and reason."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["QUARANTINE_COLUMNS", "quarantine_path", "write_quarantine"]

QUARANTINE_COLUMNS = ["table", "file", "row", "column", "reason", "value"]


def quarantine_path(configured: str | Path, directory: Path) -> Path:
    """An absolute ``ingest.quarantine_file`` is used as is; a relative one goes under
    ``<directory>/_quarantine/``."""
    path = Path(configured)
    return path if path.is_absolute() else directory / "_quarantine" / path


def write_quarantine(path: Path, records: list[dict[str, object]]) -> Path:
    """Write this run's quarantined rows (header only when none), sorted by file and row.

    Raw IPs and payment tokens are never written (their value shows as ``<redacted>``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(records, key=lambda r: (str(r["file"]), int(r["row"]),  # type: ignore[call-overload]
                                             str(r["column"])))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=QUARANTINE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(ordered)
    return path
