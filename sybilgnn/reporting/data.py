"""Read what a scoring run left in Neo4j into plain Python values for the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sybilgnn.browser.queries import CHANGES_QUERY, FLEET_SUBGRAPH_QUERY
from sybilgnn.errors import InputError

__all__ = ["FleetGraph", "FleetSummary", "RunChanges", "ReportData", "collect_report_data"]


@dataclass
class FleetGraph:
    """A fleet's subgraph: nodes ``(key, kind)`` and edges ``(key, key, rel_type)``."""

    nodes: list[tuple[str, str]] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class FleetSummary:
    fleet_id: str
    size: int
    mean_score: float | None
    n_shared_ips: int | None
    n_shared_instruments: int | None
    first_seen: str | None
    graph: FleetGraph | None = None


@dataclass
class RunChanges:
    previous_run_id: str | None
    new_fleets: list[str]
    gone_fleets: list[str]
    newly_flagged: int | None   # None: unknown (scoring kept no previous flags)
    unflagged: int | None


@dataclass
class ReportData:
    run: dict[str, Any]
    is_latest: bool
    n_scored: int
    n_flagged: int
    n_fleets: int
    scores: list[float]
    fleets: list[FleetSummary]
    changes: RunChanges
    verdicts: dict[str, int]


def _plain(value: Any) -> Any:
    return value.iso_format() if hasattr(value, "iso_format") else value


_RUN_QUERY = """
MATCH (r:ScoringRun)
WHERE $run_id IS NULL OR r.run_id = $run_id
RETURN r {.*} AS run
ORDER BY r.started_at DESC LIMIT 1
"""

_LATEST_QUERY = "MATCH (r:ScoringRun) RETURN r.run_id AS run_id ORDER BY r.started_at DESC LIMIT 1"

_GRAPH_COUNTS_QUERY = """
MATCH (a:Account {run_id: $run_id})
RETURN count(a) AS scored, count(CASE WHEN a.sybil_flag THEN 1 END) AS flagged
"""

_SCORES_QUERY = """
MATCH (a:Account {run_id: $run_id})
WHERE a.sybil_score IS NOT NULL
RETURN a.sybil_score AS score
"""

# Instants compared as epoch millis: Neo4j orders equal instants in different zone forms
# (offset 'Z' vs named 'UTC') as different values.
_FLEETS_QUERY = """
MATCH (r:ScoringRun {run_id: $run_id})
MATCH (f:Fleet)
WHERE ($is_latest AND f.active = true)
   OR (NOT $is_latest AND f.first_seen.epochMillis <= r.started_at.epochMillis
       AND f.last_seen.epochMillis >= r.started_at.epochMillis)
RETURN f.fleet_id AS fleet_id, f.size AS size, f.mean_score AS mean_score,
       f.n_shared_ips AS n_shared_ips, f.n_shared_instruments AS n_shared_instruments,
       f.first_seen AS first_seen
ORDER BY f.size DESC, f.mean_score DESC, f.fleet_id
"""

_VERDICTS_QUERY = """
MATCH (a:Account) WHERE a.review IS NOT NULL
RETURN a.review AS review, count(*) AS n ORDER BY review
"""

_KINDS = {"Account": "account", "Fleet": "fleet", "IP": "ip", "PaymentInstrument": "payment"}
_KEYS = {"account": "account_id", "fleet": "fleet_id", "ip": "ip_id", "payment": "pm_id"}


def _node_key(node: Any) -> tuple[str, str]:
    kind = next((_KINDS[label] for label in node.labels if label in _KINDS), "other")
    if kind == "account" and "Flagged" in node.labels:
        kind = "flagged"
    key_property = _KEYS.get("account" if kind == "flagged" else kind)
    key = node.get(key_property) if key_property else None
    return str(key if key is not None else node.element_id), kind


def fleet_graph(session: Any, fleet_id: str) -> FleetGraph:
    """The fleet's subgraph, through the same saved query analysts run in the Browser."""
    graph = FleetGraph()
    seen_nodes: dict[str, str] = {}
    seen_edges: set[str] = set()
    for record in session.run(FLEET_SUBGRAPH_QUERY.cypher, fleet_id=fleet_id,
                              max_members=FLEET_SUBGRAPH_QUERY.params["max_members"]):
        path = record["p"]
        for node in path.nodes:
            key, kind = _node_key(node)
            seen_nodes.setdefault(key, kind)
        for rel in path.relationships:
            if rel.element_id in seen_edges:
                continue
            seen_edges.add(rel.element_id)
            start, _ = _node_key(rel.start_node)
            end, _ = _node_key(rel.end_node)
            graph.edges.append((start, end, rel.type))
    graph.nodes = sorted(seen_nodes.items())
    return graph


def collect_report_data(session: Any, run_id: str | None = None, *,
                        top_fleets: int = 10, fleet_pictures: int = 5) -> ReportData:
    """All numbers of one run's report; ``run_id=None`` means the latest run."""
    record = session.run(_RUN_QUERY, run_id=run_id).single()
    if record is None:
        if run_id is None:
            raise InputError("no (:ScoringRun) in the graph: run `sybilgnn score` first")
        raise InputError(f"scoring run {run_id!r} is not in the graph; `sybilgnn neo4j query "
                         "'MATCH (r:ScoringRun) RETURN r.run_id'` lists the runs")
    run = {k: _plain(v) for k, v in record["run"].items()}
    latest = session.run(_LATEST_QUERY).single()
    is_latest = latest is not None and latest["run_id"] == run["run_id"]

    counts = session.run(_GRAPH_COUNTS_QUERY, run_id=run["run_id"]).single()
    scores = [float(r["score"]) for r in session.run(_SCORES_QUERY, run_id=run["run_id"])]
    fleet_rows = list(session.run(_FLEETS_QUERY, is_latest=is_latest, run_id=run["run_id"]))
    fleets = [FleetSummary(fleet_id=r["fleet_id"], size=r["size"], mean_score=r["mean_score"],
                           n_shared_ips=r["n_shared_ips"],
                           n_shared_instruments=r["n_shared_instruments"],
                           first_seen=_plain(r["first_seen"]))
              for r in fleet_rows]
    for fleet in fleets[:fleet_pictures]:
        fleet.graph = fleet_graph(session, fleet.fleet_id)

    change_row = session.run(CHANGES_QUERY.cypher, run_id=run["run_id"]).single()
    assert change_row is not None
    previous = change_row["previous_run_id"]
    flags_known = is_latest and (previous is None or change_row["with_previous_flag"] > 0)
    changes = RunChanges(
        previous_run_id=previous,
        new_fleets=sorted(change_row["new_fleets"]),
        gone_fleets=sorted(change_row["gone_fleets"]),
        newly_flagged=change_row["newly_flagged"] if flags_known else None,
        unflagged=change_row["unflagged"] if flags_known else None,
    )
    verdicts = {r["review"]: r["n"] for r in session.run(_VERDICTS_QUERY)}

    def stored_or(name: str, fallback: int) -> int:
        value = run.get(name)
        return int(value) if value is not None else fallback

    return ReportData(
        run=run, is_latest=is_latest,
        n_scored=stored_or("n_scored", counts["scored"] if counts else 0),
        n_flagged=stored_or("n_flagged", counts["flagged"] if counts else 0),
        n_fleets=stored_or("n_fleets", len(fleets)),
        scores=scores, fleets=fleets[:top_fleets], changes=changes, verdicts=verdicts,
    )
