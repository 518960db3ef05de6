"""Read what a scoring run left in Neo4j into plain Python values for the report.

Scored nodes, their fleets' shared-node counts and the fleet drawings follow the graph
schema (``GraphSchema``: the labelled node type and ``export.fleet_relations``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

from sybilgnn.browser.queries import MAX_MEMBERS, changes_query, fleet_subgraph_query
from sybilgnn.config import ScoringSettings
from sybilgnn.errors import InputError
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.neo4j.cypher import quote

__all__ = ["FleetGraph", "FleetSummary", "RunChanges", "InputDrift", "RecentRun", "ReportData",
           "collect_report_data", "input_drift", "recent_runs",
           "SCORE_BANDS"]

#: The recent runs' score distributions are shown as shares of this many equal bands.
SCORE_BANDS = 5
# What the report falls back to for runs that stored no threshold of their own.
_DEFAULT_DRIFT_WARN = float(ScoringSettings.model_fields["drift_warn"].default)


@dataclass
class FleetGraph:
    """A fleet's subgraph: nodes ``(key, kind)`` and edges ``(key, key, rel_type)``."""

    nodes: list[tuple[str, str]] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    labelled_kind: str = "account"  # the node type the model scores, drawn as accounts are


@dataclass
class FleetSummary:
    fleet_id: str
    size: int
    mean_score: float | None
    shared: dict[str, int | None]  # (:Fleet) count property -> shared nodes of that type
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
class InputDrift:
    """A run's population stability index per model input against the training snapshot."""

    recorded: bool                   # False: the run is from before drift was stored
    inputs: list[tuple[str, float]]  # (input, PSI), largest PSI first
    warn_at: float                   # the run's scoring.drift_warn

    def above(self) -> list[str]:
        return [name for name, psi in self.inputs if psi > self.warn_at]


@dataclass
class RecentRun:
    """One finished scoring run as the "Recent runs" section shows it."""

    run_id: str
    started_at: str | None
    model_version: str | None
    n_scored: int | None
    n_flagged: int | None
    n_fleets: int | None
    drift_max: float | None          # None: the run is from before drift was stored
    drift_warn: float
    score_hist: list[int] | None     # counts over equal bins of [0, 1]; None: not stored

    def bin_shares(self) -> list[float] | None:
        """Share of the scored accounts in each stored bin (None: no histogram stored)."""
        hist = self.score_hist
        total = sum(hist) if hist else 0
        return [c / total for c in hist] if hist and total else None

    def band_shares(self, bands: int = SCORE_BANDS) -> list[float] | None:
        """Share of the scored accounts in each of ``bands`` equal score bands."""
        shares = self.bin_shares()
        if shares is None or len(shares) % bands:
            return None
        width = len(shares) // bands
        return [sum(shares[i * width:(i + 1) * width]) for i in range(bands)]


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
    drift: InputDrift = field(default_factory=lambda: InputDrift(False, [], _DEFAULT_DRIFT_WARN))
    recent_runs: list[RecentRun] = field(default_factory=list)
    fleet_counts: list[str] = field(default_factory=list)  # the fleets' shared-node counts


def _plain(value: Any) -> Any:
    return value.iso_format() if hasattr(value, "iso_format") else value


def _utc_minute(value: Any) -> str | None:
    """A Neo4j DateTime as ``YYYY-MM-DD HH:MM UTC``."""
    if value is None or not hasattr(value, "to_native"):
        return None if value is None else str(value)
    native = value.to_native()
    if native.tzinfo is not None:
        native = native.astimezone(timezone.utc)
    return native.strftime("%Y-%m-%d %H:%M UTC")


def _warn_at(value: Any) -> float:
    return float(value) if value is not None else _DEFAULT_DRIFT_WARN


def input_drift(run: dict[str, Any]) -> InputDrift:
    """The drift lists stored on a ``ScoringRun`` (parallel ``drift_inputs``/``drift_psi``)."""
    names, values = run.get("drift_inputs"), run.get("drift_psi")
    warn_at = _warn_at(run.get("drift_warn"))
    if names is None or values is None:
        return InputDrift(False, [], warn_at)
    pairs = sorted(zip((str(n) for n in names), (float(v) for v in values)),
                   key=lambda pair: (-pair[1], pair[0]))
    return InputDrift(True, pairs, warn_at)


_RUN_QUERY = """
MATCH (r:ScoringRun)
WHERE $run_id IS NULL OR r.run_id = $run_id
RETURN r {.*} AS run
ORDER BY r.started_at DESC LIMIT 1
"""

_LATEST_QUERY = "MATCH (r:ScoringRun) RETURN r.run_id AS run_id ORDER BY r.started_at DESC LIMIT 1"

def _graph_counts_query(label: str) -> str:
    return f"""
MATCH (a:{label} {{run_id: $run_id}})
RETURN count(a) AS scored, count(CASE WHEN a.sybil_flag THEN 1 END) AS flagged
"""


def _scores_query(label: str) -> str:
    return f"""
MATCH (a:{label} {{run_id: $run_id}})
WHERE a.sybil_score IS NOT NULL
RETURN a.sybil_score AS score
"""


# Instants compared as epoch millis: Neo4j orders equal instants in different zone forms
# (offset 'Z' vs named 'UTC') as different values. Shared-node counts come as a map.
_FLEETS_QUERY = """
MATCH (r:ScoringRun {run_id: $run_id})
MATCH (f:Fleet)
WHERE ($is_latest AND f.active = true)
   OR (NOT $is_latest AND f.first_seen.epochMillis <= r.started_at.epochMillis
       AND f.last_seen.epochMillis >= r.started_at.epochMillis)
RETURN f.fleet_id AS fleet_id, f.size AS size, f.mean_score AS mean_score,
       f {.*} AS properties, f.first_seen AS first_seen
ORDER BY f.size DESC, f.mean_score DESC, f.fleet_id
"""


def _verdicts_query(label: str, review: str) -> str:
    return f"""
MATCH (a:{label}) WHERE a.{review} IS NOT NULL
RETURN a.{review} AS review, count(*) AS n ORDER BY review
"""

# The finished runs up to the reported one (instants compared as epoch millis, see above).
_RECENT_RUNS_QUERY = """
MATCH (this:ScoringRun {run_id: $run_id})
MATCH (r:ScoringRun {status: 'finished'})
WHERE r.started_at.epochMillis <= this.started_at.epochMillis
RETURN r.run_id AS run_id, r.started_at AS started_at, r.model_version AS model_version,
       r.n_scored AS n_scored, r.n_flagged AS n_flagged, r.n_fleets AS n_fleets,
       r.drift_max AS drift_max, r.drift_warn AS drift_warn, r.score_hist AS score_hist
ORDER BY r.started_at.epochMillis DESC, r.run_id DESC
LIMIT $limit
"""


def recent_runs(session: Any, run_id: str, limit: int = 10) -> list[RecentRun]:
    """The last ``limit`` finished runs up to and including ``run_id``, newest first."""
    def optional_int(value: Any) -> int | None:
        return None if value is None else int(value)

    return [RecentRun(
        run_id=str(r["run_id"]), started_at=_utc_minute(r["started_at"]),
        model_version=None if r["model_version"] is None else str(r["model_version"]),
        n_scored=optional_int(r["n_scored"]), n_flagged=optional_int(r["n_flagged"]),
        n_fleets=optional_int(r["n_fleets"]),
        drift_max=None if r["drift_max"] is None else float(r["drift_max"]),
        drift_warn=_warn_at(r["drift_warn"]),
        score_hist=None if r["score_hist"] is None else [int(c) for c in r["score_hist"]])
        for r in session.run(_RECENT_RUNS_QUERY, run_id=run_id, limit=limit)]


def _node_kinds(schema: GraphSchema) -> dict[str, tuple[str, str]]:
    """Neo4j label -> (kind drawn, key property): node types by name, and fleets."""
    kinds = {node.label: (name, node.key) for name, node in schema.nodes.items()}
    kinds["Fleet"] = ("fleet", "fleet_id")
    return kinds


def _node_key(node: Any, schema: GraphSchema) -> tuple[str, str]:
    kinds = _node_kinds(schema)
    kind, key_property = next((kinds[label] for label in node.labels if label in kinds),
                              ("other", ""))
    if kind == schema.labelled and "Flagged" in node.labels:
        kind = "flagged"
    key = node.get(key_property) if key_property else None
    return str(key if key is not None else node.element_id), kind


def fleet_graph(session: Any, fleet_id: str, schema: GraphSchema | None = None) -> FleetGraph:
    """The fleet's subgraph as the Browser guide draws it (``fleet_subgraph_query``;
    default: the default schema)."""
    schema = GraphSchema.default() if schema is None else schema
    graph = FleetGraph(labelled_kind=schema.labelled)
    seen_nodes: dict[str, str] = {}
    seen_edges: set[str] = set()
    for record in session.run(fleet_subgraph_query(schema).cypher, fleet_id=fleet_id,
                              max_members=MAX_MEMBERS):
        path = record["p"]
        for node in path.nodes:
            key, kind = _node_key(node, schema)
            seen_nodes.setdefault(key, kind)
        for rel in path.relationships:
            if rel.element_id in seen_edges:
                continue
            seen_edges.add(rel.element_id)
            start, _ = _node_key(rel.start_node, schema)
            end, _ = _node_key(rel.end_node, schema)
            graph.edges.append((start, end, rel.type))
    graph.nodes = sorted(seen_nodes.items())
    return graph


def collect_report_data(session: Any, run_id: str | None = None, *,
                        top_fleets: int = 10, fleet_pictures: int = 5,
                        history: int = 10, schema: GraphSchema | None = None) -> ReportData:
    """All numbers of one run's report; ``run_id=None`` means the latest run.

    ``history``: how many finished runs (up to this one) the "Recent runs" section lists.
    ``schema``: the graph schema of the scored nodes and fleets (default: the default one).
    """
    schema = GraphSchema.default() if schema is None else schema
    label = quote(schema.labelled_node.label)
    run, is_latest = _read_run(session, run_id)
    counts = session.run(_graph_counts_query(label), run_id=run["run_id"]).single()
    scores = [float(r["score"]) for r in session.run(_scores_query(label), run_id=run["run_id"])]
    fleets, counted = _read_fleets(session, schema, run["run_id"], is_latest, fleet_pictures)
    changes = _read_changes(session, schema, run["run_id"], is_latest)
    verdicts = {r["review"]: r["n"] for r in session.run(
        _verdicts_query(label, quote(schema.labels.review)))}

    def stored_or(name: str, fallback: int) -> int:
        value = run.get(name)
        return int(value) if value is not None else fallback

    return ReportData(
        run=run, is_latest=is_latest,
        n_scored=stored_or("n_scored", counts["scored"] if counts else 0),
        n_flagged=stored_or("n_flagged", counts["flagged"] if counts else 0),
        n_fleets=stored_or("n_fleets", len(fleets)),
        scores=scores, fleets=fleets[:top_fleets], changes=changes, verdicts=verdicts,
        drift=input_drift(run), recent_runs=recent_runs(session, run["run_id"], history),
        fleet_counts=counted,
    )


def _read_run(session: Any, run_id: str | None) -> tuple[dict[str, Any], bool]:
    """The run's stored properties (``None``: the latest run) and whether it is the latest,
    which decides whether the graph still shows its flags."""
    record = session.run(_RUN_QUERY, run_id=run_id).single()
    if record is None:
        if run_id is None:
            raise InputError("no (:ScoringRun) in the graph: run `sybilgnn score` first")
        raise InputError(f"scoring run {run_id!r} is not in the graph; `sybilgnn neo4j query "
                         "'MATCH (r:ScoringRun) RETURN r.run_id'` lists the runs")
    run = {k: _plain(v) for k, v in record["run"].items()}
    latest = session.run(_LATEST_QUERY).single()
    return run, latest is not None and latest["run_id"] == run["run_id"]


def _read_fleets(session: Any, schema: GraphSchema, run_id: str, is_latest: bool,
                 fleet_pictures: int) -> tuple[list[FleetSummary], list[str]]:
    """The run's fleets, largest first, the first ``fleet_pictures`` with their graph; and
    the shared-node counts each fleet carries (one per fleet hub of the schema)."""
    fleet_rows = list(session.run(_FLEETS_QUERY, is_latest=is_latest, run_id=run_id))
    counted = [hub.hub.fleet_count for hub in schema.fleet_hubs()]
    fleets = [FleetSummary(fleet_id=r["fleet_id"], size=r["size"], mean_score=r["mean_score"],
                           shared={name: r["properties"].get(name) for name in counted},
                           first_seen=_plain(r["first_seen"]))
              for r in fleet_rows]
    for fleet in fleets[:fleet_pictures]:
        fleet.graph = fleet_graph(session, fleet.fleet_id, schema)
    return fleets, counted


def _read_changes(session: Any, schema: GraphSchema, run_id: str, is_latest: bool
                  ) -> RunChanges:
    """What changed since the previous run; flag counts only where the graph still holds
    both runs' flags (this run is the latest and the previous one left flags to compare)."""
    change_row = session.run(changes_query(schema).cypher, run_id=run_id).single()
    assert change_row is not None
    previous = change_row["previous_run_id"]
    flags_known = is_latest and (previous is None or change_row["with_previous_flag"] > 0)
    return RunChanges(
        previous_run_id=previous,
        new_fleets=sorted(change_row["new_fleets"]),
        gone_fleets=sorted(change_row["gone_fleets"]),
        newly_flagged=change_row["newly_flagged"] if flags_known else None,
        unflagged=change_row["unflagged"] if flags_known else None,
    )
