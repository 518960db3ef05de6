"""Score bands: one label per scored account (``ScoreLow``, ``ScoreMedium``, ``ScoreHigh``).

Neo4j Browser's style (GraSS, ``sybilgnn/browser/style.grass``) can size a node by label
only, not by a property value, so the scoring job gives each scored account the label of its
band and the style gives each band a diameter. The write-back sets the labels with the
scores when the server has sybilgnn's procedures (``band_index``); otherwise
``apply_score_bands`` sets them afterwards in Cypher, with the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sybilgnn.graph_schema import GraphSchema, NodeType
from sybilgnn.neo4j.cypher import quote

__all__ = ["BAND_LABELS", "ScoreBands", "apply_score_bands", "band_index"]

BAND_LABELS: tuple[str, ...] = ("ScoreLow", "ScoreMedium", "ScoreHigh")


@dataclass(frozen=True)
class ScoreBands:
    """Score limits of the bands: ``score >= high`` is high, ``score >= medium`` medium."""

    medium: float = 0.5
    high: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.medium <= self.high <= 1.0:
            raise ValueError(f"score bands need 0 <= medium <= high <= 1, got {self}")


def band_index(scores: np.ndarray, bands: ScoreBands) -> np.ndarray:
    """Index into ``BAND_LABELS`` of each score (the same rule as ``_band_query``)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.where(scores >= bands.high, 2, np.where(scores >= bands.medium, 1, 0))


def _band_query(label: str, key: str | None = None) -> str:
    """Every scored node of ``label``, or (``key`` given) those whose key is in ``$keys``."""
    match = f"MATCH (a:{label})" if key is None else \
        f"UNWIND $keys AS k MATCH (a:{label} {{{key}: k}})"
    return f"""
{match}
WHERE a.sybil_score IS NOT NULL
CALL (a) {{
  REMOVE a:ScoreLow:ScoreMedium:ScoreHigh
  WITH a
  CALL (a) {{
    WITH a WHERE a.sybil_score >= $high
    SET a:ScoreHigh
  }}
  CALL (a) {{
    WITH a WHERE a.sybil_score >= $medium AND a.sybil_score < $high
    SET a:ScoreMedium
  }}
  CALL (a) {{
    WITH a WHERE a.sybil_score < $medium
    SET a:ScoreLow
  }}
}} IN TRANSACTIONS OF $batch ROWS
"""


def _count_query(label: str) -> str:
    return f"""
MATCH (a:{label})
RETURN count(CASE WHEN a:ScoreLow THEN 1 END) AS low,
       count(CASE WHEN a:ScoreMedium THEN 1 END) AS medium,
       count(CASE WHEN a:ScoreHigh THEN 1 END) AS high
"""


def apply_score_bands(driver: Any, *, bands: ScoreBands | None = None,
                      database: str | None = None, batch_size: int = 10_000,
                      node: NodeType | None = None, keys: list[str] | None = None
                      ) -> dict[str, int]:
    """Give every scored node (or the nodes with these ``keys``) exactly one band label;
    idempotent, batched server-side.

    Call it from the scoring job after scores are written. ``node``: the scored (labelled)
    node type, by default the default schema's accounts. Returns the count per band.
    """
    scored = node or GraphSchema.default().labelled_node
    label = quote(scored.label)
    bands = bands or ScoreBands()
    query = _band_query(label, None if keys is None else quote(scored.key))
    # a band label nobody has yet is expected: no "label does not exist" warnings
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        # CALL ... IN TRANSACTIONS needs an auto-commit transaction.
        session.run(query, medium=bands.medium, high=bands.high, batch=int(batch_size),
                    keys=list(keys or [])).consume()
        record = session.run(_count_query(label)).single()
    assert record is not None
    return {"ScoreLow": record["low"], "ScoreMedium": record["medium"],
            "ScoreHigh": record["high"]}
