"""What an ingest reports (per table, per phase), apart so pipeline.py stays short."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

__all__ = ["IngestSummary", "PhaseClock", "TableSummary"]


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
    mode: str = "transactional"  # or "bulk"
    procedures: bool = False  # transactional writes went through the server's procedures
    quarantine_file: Path | None = None
    seconds: float = 0.0
    similarity: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    import_stages: dict[str, float] = field(default_factory=dict)  # admin tool's own (bulk)

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
        out.append(f"features updated for {self.features_updated} accounts in {self.seconds:.1f}s "
                   f"({self.mode} load)")
        if self.import_stages:
            out.append("neo4j-admin import: " + ", ".join(
                f"{stage} {seconds:.1f}s" for stage, seconds in self.import_stages.items()))
        if self.quarantine_file is not None:
            out.append(f"quarantined rows written to {self.quarantine_file}")
        return out


class PhaseClock:
    """Per-phase seconds into ``summary.timings`` plus an optional progress bar."""

    def __init__(self, summary: IngestSummary, steps: int, progress: bool) -> None:
        self.summary = summary
        self.last = time.perf_counter()
        self.bar = tqdm(total=steps, desc="ingest", unit="step", disable=not progress,
                        leave=False)

    def expect(self, steps: int) -> None:
        """Set the bar's length once the delivery's tables (and so its phases) are known."""
        self.bar.total = steps
        self.bar.refresh()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.summary.timings[name] = self.summary.timings.get(name, 0.0) + now - self.last
        self.last = now
        self.bar.set_postfix_str(f"{name} done")
        self.bar.update(1)
