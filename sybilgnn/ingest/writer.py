"""Batched, parameterised writes: one managed transaction per ``UNWIND $rows`` batch.

A batch either commits whole or not at all (the driver retries transient failures). Writes
that *add* to counters carry a batch marker, created in the same transaction, so a retried run
after a crash skips the batches that already committed instead of counting them twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from neo4j import ManagedTransaction

__all__ = ["batches", "quiet_session", "write_batches", "MarkedWork"]

MarkedWork = Callable[[ManagedTransaction, list[Any]], int]  # rows: maps, or tuples


def quiet_session(driver: Any, database: str) -> Any:
    """A session without server notifications: properties absent on new accounts are expected."""
    return driver.session(database=database, notifications_min_severity="OFF")


def batches(rows: Sequence[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    for index, start in enumerate(range(0, len(rows), size)):
        yield index, list(rows[start:start + size])


def _plain_work(query: str, params: dict[str, Any]) -> MarkedWork:
    def work(tx: ManagedTransaction, rows: list[dict[str, Any]]) -> int:
        tx.run(query, {**params, "rows": rows}).consume()
        return len(rows)
    return work


def write_batches(driver: Any, database: str, rows: Sequence[Any], batch_size: int, *,
                  query: str | None = None, work: MarkedWork | None = None,
                  params: dict[str, Any] | None = None, marker: str | None = None,
                  progress: Callable[[int], None] | None = None) -> int:
    """Write ``rows`` in batches with ``query`` (rows as ``$rows``) or a custom ``work``.

    With ``marker`` set, batch ``i`` is skipped when ``(:IngestBatch {batch_key: marker:i})``
    exists, and the marker is created in the batch's own transaction. Returns rows written.
    """
    if (query is None) == (work is None):
        raise ValueError("give exactly one of query or work")
    run = work if work is not None else _plain_work(query or "", params or {})
    written = 0

    def marked(tx: ManagedTransaction, key: str, batch: list[Any]) -> int:
        if tx.run("MATCH (b:IngestBatch {batch_key: $key}) RETURN count(b) AS n",
                  key=key).single()["n"]:
            return 0
        done = run(tx, batch)
        tx.run("CREATE (:IngestBatch {batch_key: $key, created_at: datetime()})", key=key).consume()
        return done

    with quiet_session(driver, database) as session:
        for index, batch in batches(rows, batch_size):
            if marker is None:
                written += session.execute_write(run, batch)
            else:
                written += session.execute_write(marked, f"{marker}:{index}", batch)
            if progress is not None:
                progress(len(batch))
    return written
