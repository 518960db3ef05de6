"""Neo4j Browser style (GraSS) and the score-band labels it sizes accounts by.

GraSS styles by label only: it cannot size a node by a property value. The scoring job
therefore gives each scored account one band label (``ScoreLow``, ``ScoreMedium``,
``ScoreHigh``) through :func:`apply_score_bands`, and the style gives each band a diameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from sybilgnn.graph_schema import GraphSchema, NodeType
from sybilgnn.neo4j.export_schema import quote

__all__ = [
    "SCORE_BAND_LABELS",
    "ScoreBands",
    "load_style",
    "parse_grass",
    "apply_score_bands",
]

STYLE_RESOURCE = "style.grass"
SCORE_BAND_LABELS: tuple[str, ...] = ("ScoreLow", "ScoreMedium", "ScoreHigh")


@dataclass(frozen=True)
class ScoreBands:
    """Score limits of the bands: ``score >= high`` is high, ``score >= medium`` medium."""

    medium: float = 0.5
    high: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.medium <= self.high <= 1.0:
            raise ValueError(f"score bands need 0 <= medium <= high <= 1, got {self}")


BAND_LABELS = ("ScoreLow", "ScoreMedium", "ScoreHigh")


def band_index(scores: np.ndarray, bands: ScoreBands) -> np.ndarray:
    """Index into ``BAND_LABELS`` of each score (the same rule as ``_band_query``)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.where(scores >= bands.high, 2, np.where(scores >= bands.medium, 1, 0))


def load_style() -> str:
    """The GraSS text shipped with the package (``sybilgnn/browser/style.grass``)."""
    return resources.files("sybilgnn.browser").joinpath(STYLE_RESOURCE).read_text("utf-8")


def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """Parse GraSS the way Neo4j Browser does: ``selector { key: value; ... }``.

    Used to check the shipped style; Browser ignores what it cannot parse, so a typo would
    otherwise pass silently.
    """
    rules: dict[str, dict[str, str]] = {}
    keyword, body = "", ""
    inside_props = inside_string = False
    for char in text:
        if char == "'":
            inside_string = not inside_string
            continue
        if char == "{" and not inside_string:
            inside_props = True
            continue
        if char == "}" and not inside_string:
            if not inside_props:
                raise ValueError(f"unbalanced '}}' after {keyword!r}")
            inside_props = False
            props: dict[str, str] = {}
            for item in body.split(";"):
                key, sep, value = item.partition(":")
                if sep and key.strip() and value.strip():
                    props[key.strip()] = value.strip()
            rules[keyword] = props
            keyword, body = "", ""
            continue
        if inside_props:
            body += char
        elif not char.isspace():
            keyword += char
    if inside_props or keyword:
        raise ValueError(f"unterminated rule {keyword!r}")
    return rules


def _band_query(label: str) -> str:
    return f"""
MATCH (a:{label})
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
                      node: NodeType | None = None) -> dict[str, int]:
    """Give every scored node exactly one band label; idempotent, batched server-side.

    Call it from the scoring job after scores are written. ``node``: the scored (labelled)
    node type, by default the default schema's accounts. Returns the count per band.
    """
    label = quote((node or GraphSchema.default().labelled_node).label)
    bands = bands or ScoreBands()
    # a band label nobody has yet is expected: no "label does not exist" warnings
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        # CALL ... IN TRANSACTIONS needs an auto-commit transaction.
        session.run(_band_query(label), medium=bands.medium, high=bands.high,
                    batch=int(batch_size)).consume()
        record = session.run(_count_query(label)).single()
    assert record is not None
    return {"ScoreLow": record["low"], "ScoreMedium": record["medium"],
            "ScoreHigh": record["high"]}
