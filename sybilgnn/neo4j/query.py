"""Run one read-only query for operators and scripts, and format its rows."""

from __future__ import annotations

from typing import Any

import neo4j
from neo4j.exceptions import ClientError

from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.neo4j.connection import open_driver

__all__ = ["run_read_query", "format_table"]


def _plain(value: Any) -> Any:
    if isinstance(value, neo4j.graph.Node):
        return {"labels": sorted(value.labels), **dict(value)}
    if isinstance(value, neo4j.graph.Relationship):
        return {"type": value.type, **dict(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "iso_format"):
        return value.iso_format()
    return value


def run_read_query(settings: Settings, cypher: str,
                   params: dict[str, Any] | None = None) -> tuple[list[str], list[list[Any]]]:
    """Run ``cypher`` in a read transaction; the server refuses writes in it."""

    def work(tx: neo4j.ManagedTransaction) -> tuple[list[str], list[list[Any]]]:
        result = tx.run(cypher, params or {})
        keys = list(result.keys())
        return keys, [[_plain(v) for v in record.values()] for record in result]

    with open_driver(settings) as driver:
        with driver.session(database=settings.neo4j.database,
                            default_access_mode=neo4j.READ_ACCESS) as session:
            try:
                return session.execute_read(work)
            except ClientError as exc:
                raise InputError(f"Neo4j refused the query: {exc.message}") from None


def format_table(keys: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(k) for k in keys]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(keys))] if keys else []
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    if lines:
        lines.insert(1, "-+-".join("-" * w for w in widths))
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
