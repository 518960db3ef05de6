"""Delivery to flag: how long the deliveries a scoring run is the first to see waited.

Each transactional ingest keeps its change value (``change_seq``) and its seconds
(``ingest_s``) on the ledger's ``IngestFile`` nodes. A run that starts from a finished run
with ``graph_seq`` S is the first to score every delivery with a change value of S or more;
their latency runs from the start of the oldest of them to this run's commit, and splits into
their ingest seconds and the run's own stages. Server time on both ends: no clock skew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sybilgnn.ingest.writer import quiet_session

__all__ = ["DeliveryLatency", "delivery_latency", "last_finished_seq"]

_LATENCY = """
MATCH (f:IngestFile) WHERE f.change_seq >= $seq
WITH f.change_seq AS delivery, max(coalesce(f.ingest_s, 0.0)) AS ingest_s,
     min(f.ingested_at.epochMillis) AS done_ms
RETURN count(delivery) AS deliveries, sum(ingest_s) AS ingest_s,
       (datetime().epochMillis - min(done_ms - 1000.0 * ingest_s)) / 1000.0 AS waited_s
"""
_LAST_SEQ = """
MATCH (r:ScoringRun {status: 'finished'})
RETURN r.graph_seq AS seq ORDER BY r.started_at DESC LIMIT 1
"""


@dataclass(frozen=True)
class DeliveryLatency:
    deliveries: int       # transactional deliveries this run is the first to score
    ingest_s: float       # their ingest seconds, summed
    delivery_to_flag_s: float  # from the oldest one's start until now (the run's commit)


def last_finished_seq(tx: Any) -> int:
    """The change value the last finished run started from (0 before any run)."""
    record = tx.run(_LAST_SEQ).single()
    return int(record["seq"]) if record is not None and record["seq"] is not None else 0


def delivery_latency(driver: Any, database: str, since_seq: int) -> DeliveryLatency:
    """The latency of the deliveries with a change value of ``since_seq`` or more."""
    with quiet_session(driver, database) as session:
        record = session.execute_read(lambda tx: tx.run(_LATENCY, seq=int(since_seq)).single())
    if record is None or not record["deliveries"]:
        return DeliveryLatency(0, 0.0, 0.0)
    return DeliveryLatency(int(record["deliveries"]), float(record["ingest_s"] or 0.0),
                           float(record["waited_s"] or 0.0))
