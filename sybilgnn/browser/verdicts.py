"""Analyst verdicts on flagged nodes, written where the next export reads them.

The write is the same Cypher the Browser guide offers (``record_verdict_query``), so the
command line and the Browser validate verdicts identically. It follows the graph schema: the
labelled node type's label and key name the node, ``export.labels.review`` and
``review_time`` receive the verdict (``(:Account {account_id})`` and ``review``,
``reviewed_at`` by default).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from sybilgnn.browser.queries import VERDICTS, record_verdict_query
from sybilgnn.errors import InputError
from sybilgnn.graph_schema import GraphSchema

__all__ = ["Verdict", "record_verdict", "default_analyst"]


@dataclass(frozen=True)
class Verdict:
    node_id: str  # the key value of the labelled node (an account_id by default)
    review: str
    reviewed_by: str
    reviewed_at: str
    note: str | None


def default_analyst() -> str:
    """The operating-system user, so every verdict names who gave it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_verdict(driver: Any, node_id: str, verdict: str, analyst: str | None = None,
                   *, schema: GraphSchema, note: str | None = None,
                   database: str | None = None) -> Verdict:
    """Set the verdict, its time, ``reviewed_by`` (and ``review_note``) on the labelled node
    whose key is ``node_id`` (``schema``: ``GraphSchema.from_settings(settings)``).

    Raises ``InputError`` for a verdict other than 'confirmed'/'false_positive' or a key
    that is not in the graph; nothing is written then.
    """
    node = schema.labelled_node
    verdict = verdict.strip().lower() if isinstance(verdict, str) else verdict
    if verdict not in VERDICTS:
        raise InputError(f"verdict {verdict!r} for {node.name} {node_id!r}: expected one of "
                         f"{', '.join(VERDICTS)}")
    if not node_id:
        raise InputError(f"{node.key} is empty: give the {node.key} shown in the Browser")
    query = record_verdict_query(schema)
    params = {node.key: node_id, "verdict": verdict,
              "analyst": analyst or default_analyst(), "note": note}

    def work(tx: Any) -> Any:
        return tx.run(query.cypher, params).single()

    with driver.session(database=database) as session:
        record = session.execute_write(work)
    if record is None or record["outcome"].startswith("unknown "):
        raise InputError(f"{node.name} {node_id!r} is not in the graph (no :{node.label} with "
                         f"{node.key} {node_id!r}); check the id (the evidence query in the "
                         "Browser guide shows it)")
    if record["outcome"] != "recorded":
        raise InputError(f"verdict for {node_id!r} refused: {record['outcome']}")
    reviewed_at = record["reviewed_at"]
    return Verdict(node_id=node_id, review=record["review"],
                   reviewed_by=record["reviewed_by"],
                   reviewed_at=reviewed_at.iso_format() if hasattr(reviewed_at, "iso_format")
                   else str(reviewed_at), note=note)
