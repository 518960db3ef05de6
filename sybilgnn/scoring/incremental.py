"""Incremental scoring: re-score only the accounts a delivery can have moved.

A model whose reach is ``k`` hops (``ScoringModel.reach``: its message-passing layers, or
the tree companion's two-hop aggregates) gives an account a new score only when a node
within ``k`` hops of it is new, has new inputs, or gained or lost a relationship. Every
transactional ingest stamps such nodes with the graph's change counter
(``sybilgnn.ingest.changes``) and every scoring run records the counter it read first, so:

1. **base**: the last finished run, which must have scored with the same model version;
   otherwise a full run is needed (a new champion always triggers one);
2. **seeds**: nodes stamped at or after the base's counter, and accounts with a verdict
   since the base started (a verdict changes the account's own flag);
3. **targets**: accounts within ``k`` hops of a seed (any relation, either direction);
4. **context**: every node within ``k + 1`` hops of a target (``context_hops``: every
   node's degrees are inputs, so a node ``k`` hops out needs all its relationships); the
   subgraph it induces holds each target's whole receptive field, so the model gives the
   targets the scores a full run would (up to float rounding);
5. **fleets** are regrouped over every flagged account of the graph (the stored flags of
   the others, the new ones of the targets), read with each linking node's full degree, so
   they equal a full run's fleets; evidence is computed for flagged targets.

Only targets whose score or flag changed are written; the run is a ``ScoringRun`` of kind
``incremental`` that names its base. What this does not see: changes written to Neo4j by
anything other than ``sybilgnn ingest`` (they carry no stamp); run a full ``sybilgnn score``
after such writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from neo4j import Driver

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.ingest.changes import CHANGE_PROPERTY
from sybilgnn.ingest.writer import quiet_session
from sybilgnn.neo4j.cypher import quote
from sybilgnn.neo4j.plugin import use_procedures

__all__ = ["BaseRun", "ChangedGraph", "FlaggedUniverse", "changed_region", "find_base_run",
           "flagged_universe", "rows_of"]


@dataclass(frozen=True)
class BaseRun:
    """The finished run an incremental run starts from."""

    run_id: str
    model_version: str
    graph_seq: int
    started_at: datetime


@dataclass
class ChangedGraph:
    """Internal node ids, per node type, of what changed and what it reaches."""

    seeds: dict[str, np.ndarray]
    targets: np.ndarray  # labelled-type nodes whose score can have moved
    context: dict[str, np.ndarray] = field(default_factory=dict)  # their receptive field

    @property
    def n_seeds(self) -> int:
        return int(sum(ids.size for ids in self.seeds.values()))


_BASE_QUERY = """
MATCH (r:ScoringRun {status: 'finished'})
RETURN r.run_id AS run_id, r.model_version AS model_version, r.graph_seq AS graph_seq,
       r.started_at AS started_at
ORDER BY r.started_at DESC LIMIT 1
"""


def find_base_run(driver: Driver, database: str, model_version: str) -> BaseRun | str:
    """The base of an incremental run, or why there is none (a full run is needed)."""
    with quiet_session(driver, database) as session:
        records = session.execute_read(lambda tx: list(tx.run(_BASE_QUERY)))
    if not records:
        return "no finished scoring run yet"
    record = records[0]
    if str(record["model_version"]) != str(model_version):
        return (f"the last finished run scored with model version {record['model_version']}, "
                f"the champion is version {model_version}")
    if record["graph_seq"] is None:
        return f"the last finished run {record['run_id']} recorded no change counter"
    started = record["started_at"]
    return BaseRun(str(record["run_id"]), str(record["model_version"]),
                   int(record["graph_seq"]), started.to_native()
                   if hasattr(started, "to_native") else started)


def _ids(records: Any, name: str = "ids") -> np.ndarray:
    values = records[0][name] if records else []
    return np.unique(np.asarray(values, dtype=np.int64))


def _seeds(tx: Any, schema: GraphSchema, base: BaseRun) -> dict[str, np.ndarray]:
    """Nodes stamped since the base read the graph, and accounts reviewed since it began."""
    seeds: dict[str, np.ndarray] = {}
    for name, node in schema.nodes.items():
        records = list(tx.run(f"MATCH (n:{quote(node.label)}) WHERE n.{CHANGE_PROPERTY} >= $seq "
                              "RETURN collect(id(n)) AS ids", seq=base.graph_seq))
        seeds[name] = _ids(records)
    review_time = schema.labels.review_time
    if review_time:
        label = quote(schema.labelled_node.label)
        records = list(tx.run(f"MATCH (n:{label}) WHERE n.{quote(review_time)} >= $since "
                              "RETURN collect(id(n)) AS ids", since=base.started_at))
        seeds[schema.labelled] = np.union1d(seeds.get(schema.labelled, np.zeros(0, np.int64)),
                                            _ids(records))
    return seeds


def _expand(tx: Any, schema: GraphSchema, start: dict[str, np.ndarray], hops: int, *,
            procedures: bool = False) -> dict[str, np.ndarray]:
    """Every node of the schema within ``hops`` relationships of ``start`` (start
    included), per node type; relationships are followed in both directions. Through the
    ``sybilgnn.graph.expand`` procedure when the server has it (one call, the walk in the
    server's kernel), else one Cypher query per hop; both give the same nodes."""
    if procedures:
        return _expand_on_server(tx, schema, start, hops)
    types = "|".join(quote(rel.type) for rel in schema.relations.values())
    by_label = {node.label: name for name, node in schema.nodes.items()}
    reached = {name: np.asarray(start.get(name, []), dtype=np.int64) for name in schema.nodes}
    frontier = np.unique(np.concatenate(list(reached.values())))
    query = (f"MATCH (n) WHERE id(n) IN $ids MATCH (n)-[:{types}]-(m) "
             "WITH DISTINCT m UNWIND [l IN labels(m) WHERE l IN $labels][0..1] AS label "
             "RETURN label, collect(id(m)) AS ids")
    for _ in range(hops):
        if not frontier.size or not types:
            break
        found = []
        for record in tx.run(query, ids=frontier.tolist(), labels=list(by_label)):
            name = by_label[record["label"]]
            ids = np.asarray(record["ids"], dtype=np.int64)
            new = np.setdiff1d(ids, reached[name])
            reached[name] = np.union1d(reached[name], new)
            found.append(new)
        frontier = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    return reached


def _expand_on_server(tx: Any, schema: GraphSchema, start: dict[str, np.ndarray], hops: int
                      ) -> dict[str, np.ndarray]:
    names = list(schema.nodes)
    starts = [np.asarray(start.get(name, []), dtype=np.int64) for name in names]
    packed = np.concatenate(starts).astype("<i8").tobytes()
    reached = dict(zip(names, starts))
    query = ("CALL sybilgnn.graph.expand($ids, $types, $labels, $hops) YIELD index, ids "
             "RETURN index, ids")
    for record in tx.run(query, ids=packed, hops=hops,
                         types=[rel.type for rel in schema.relations.values()],
                         labels=[schema.nodes[name].label for name in names]):
        name = names[int(record["index"])]
        found = np.frombuffer(record["ids"], dtype="<i8").astype(np.int64)
        reached[name] = np.union1d(reached[name], found)
    return {name: np.unique(ids) for name, ids in reached.items()}


def changed_region(driver: Driver, settings: Settings, base: BaseRun, reach: int,
                   context_hops: int) -> ChangedGraph:
    """Seeds, targets (within ``reach`` of a seed) and context (within ``context_hops`` of
    a target) of an incremental run (see the module docstring)."""
    schema = GraphSchema.from_settings(settings)

    def work(tx: Any) -> ChangedGraph:
        procedures = use_procedures(tx, settings.neo4j.procedures)
        seeds = _seeds(tx, schema, base)
        targets = _expand(tx, schema, seeds, reach, procedures=procedures)[schema.labelled]
        context = (_expand(tx, schema, {schema.labelled: targets}, context_hops,
                           procedures=procedures) if targets.size else {})
        return ChangedGraph(seeds, targets, context)

    with quiet_session(driver, settings.neo4j.database) as session:
        return session.execute_read(work)


_FLAGGED_QUERY = """
MATCH (a:{label}) WHERE a.sybil_flag = true AND NOT id(a) IN $targets
RETURN collect(id(a)) AS ids, collect(a.sybil_score) AS scores
"""


def _hub_members(tx: Any, schema: GraphSchema, flagged: np.ndarray, max_shared: int
                 ) -> dict[str, np.ndarray]:
    """Per fleet hub type: the hubs of flagged accounts that link at most ``max_shared``
    accounts, and every account they link (so the grouping sees each hub's full degree)."""
    out: dict[str, list[np.ndarray]] = {}
    account = quote(schema.labelled_node.label)
    for hub in schema.fleet_hubs():
        rel, label = quote(hub.relation.type), quote(hub.hub.label)
        arrow = (f"-[:{rel}]->", f"<-[:{rel}]-") if hub.labelled_end == 0 else \
            (f"<-[:{rel}]-", f"-[:{rel}]->")
        query = (f"MATCH (a:{account}){arrow[0]}(h:{label}) WHERE id(a) IN $ids "
                 f"WITH DISTINCT h WHERE COUNT {{ (h){arrow[1]}(:{account}) }} <= $cap "
                 f"MATCH (h){arrow[1]}(b:{account}) "
                 "RETURN collect(DISTINCT id(h)) AS hubs, collect(DISTINCT id(b)) AS members")
        records = list(tx.run(query, ids=flagged.tolist(), cap=int(max_shared)))
        out.setdefault(hub.hub.name, []).append(_ids(records, "hubs"))
        out.setdefault(schema.labelled, []).append(_ids(records, "members"))
    return {name: np.unique(np.concatenate(parts)) for name, parts in out.items()}


@dataclass
class FlaggedUniverse:
    """What regrouping the fleets reads: every flagged account outside the targets with
    its stored score, and the node set (flagged accounts, their hubs under the size cap,
    those hubs' accounts) whose subgraph carries all links between flagged accounts."""

    stored_ids: np.ndarray
    stored_scores: np.ndarray
    node_ids: dict[str, np.ndarray]


def flagged_universe(driver: Driver, settings: Settings, targets: np.ndarray,
                     target_flagged: np.ndarray) -> FlaggedUniverse:
    """The accounts and hubs that decide the fleets once the targets' new flags
    (``target_flagged``, internal ids) join the stored flags of everyone else."""
    schema = GraphSchema.from_settings(settings)
    label = quote(schema.labelled_node.label)

    def work(tx: Any) -> FlaggedUniverse:
        record = tx.run(_FLAGGED_QUERY.format(label=label), targets=targets.tolist()).single()
        stored = np.asarray(record["ids"], dtype=np.int64)
        scores = np.asarray(record["scores"], dtype=np.float64)
        flagged = np.union1d(stored, target_flagged)
        nodes = _hub_members(tx, schema, flagged, settings.scoring.fleet_max_shared_accounts)
        nodes[schema.labelled] = np.union1d(nodes.get(schema.labelled, np.zeros(0, np.int64)),
                                            flagged)
        return FlaggedUniverse(stored, scores, nodes)

    with quiet_session(driver, settings.neo4j.database) as session:
        return session.execute_read(work)


def rows_of(snapshot: Snapshot, node_type: str, internal_ids: np.ndarray) -> np.ndarray:
    """Rows of ``snapshot`` holding these internal ids (ids it lacks are skipped)."""
    ids = np.asarray(snapshot.neo4j_ids[node_type], dtype=np.int64)
    return np.flatnonzero(np.isin(ids, internal_ids))
