"""``score_changed``: one incremental scoring run, from the changed region to the commit.

The region, the exactness argument and what an incremental run cannot see are in
``sybilgnn.scoring.incremental``. The order of work is the full run's: everything that
decides what to write first (scores, flags, fleets, evidence), then the account batches,
then flags that went stale among the targets, then fleets and ``status = 'finished'`` in
one transaction. A killed incremental run needs no resume: the next one starts from the
same finished base, so its targets include everything the killed one meant to write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from neo4j import Driver

from sybilgnn.config import Settings
from sybilgnn.errors import SybilgnnError
from sybilgnn.graph_schema import GraphSchema, NodeType
from sybilgnn.ingest.writer import quiet_session
from sybilgnn.neo4j.cypher import quote
from sybilgnn.neo4j.plugin import use_procedures
from sybilgnn.scoring.bands import ScoreBands, apply_score_bands
from sybilgnn.scoring.fleets import Fleet, build_fleets, read_active_fleets, write_fleets
from sybilgnn.scoring.incremental import (BaseRun, ChangedGraph, changed_region,
                                          find_base_run, flagged_universe, rows_of)
from sybilgnn.scoring.inference import Inference, ScoringModel, load_scoring_model
from sybilgnn.scoring.job import (SCORE_BINS, ScoringSummary, evidence_properties,
                                  fleet_links, fleet_split, new_run_id, queue_flags)
from sybilgnn.scoring.latency import delivery_latency
from sybilgnn.scoring.writeback import (ensure_scoring_schema, finish_run, start_run,
                                        write_scores)

__all__ = ["FullRunNeeded", "score_changed"]


class FullRunNeeded(SybilgnnError):
    """No finished run of this model to start from: score the whole graph instead."""


@dataclass
class _Targets:
    """The targets' rows in the subgraph snapshot and what the run decided for them."""

    rows: np.ndarray
    keys: np.ndarray        # account keys
    internal: np.ndarray    # Neo4j internal ids
    scores: np.ndarray
    flagged: np.ndarray
    contradicts: np.ndarray


def _stored_state(driver: Driver, database: str, internal: np.ndarray) -> dict[int, tuple]:
    """(score, flag, label conflict) as stored, per internal id (score None: never scored).

    One row of columns, not a row per account: tens of thousands of Bolt records cost
    seconds of client time where four lists cost a fraction of one."""
    query = ("MATCH (a) WHERE id(a) IN $ids "
             "RETURN collect(id(a)) AS ids, collect(coalesce(a.sybil_score, -1.0)) AS scores, "
             "collect(coalesce(a.sybil_flag, false)) AS flags, "
             "collect(coalesce(a.label_conflict, false)) AS conflicts")
    with quiet_session(driver, database) as session:
        record = session.execute_read(lambda tx: tx.run(query, ids=internal.tolist()).single())
    if record is None:
        return {}
    return {int(node): (None if score < 0 else score, bool(flag), bool(conflict))
            for node, score, flag, conflict in zip(record["ids"], record["scores"],
                                                   record["flags"], record["conflicts"])}


#: A target whose score moved less than this, with the same flag, is not rewritten: the
#: subgraph sums a node's messages in another order than the whole graph does, which moves
#: scores by float rounding (about 1e-7) where nothing changed.
SCORE_TOLERANCE = 1e-6


def _changed(stored: dict[int, tuple], targets: _Targets) -> np.ndarray:
    """Targets whose score (beyond ``SCORE_TOLERANCE``), flag or label conflict differ
    from what Neo4j holds."""
    out = np.ones(targets.rows.size, dtype=bool)
    for i, node in enumerate(targets.internal.tolist()):
        old = stored.get(int(node))
        if old is not None and old[0] is not None:
            out[i] = (abs(float(old[0]) - float(targets.scores[i])) > SCORE_TOLERANCE
                      or old[1] != bool(targets.flagged[i])
                      or old[2] != bool(targets.contradicts[i]))
    return out


def _regroup_fleets(driver: Driver, settings: Settings, schema: GraphSchema,
                    targets: _Targets) -> tuple[list[Fleet], set[str], list[str]]:
    """Fleets over every flagged account (stored flags elsewhere, new ones here), the
    previous active fleet ids, and the keys of every flagged account."""
    from sybilgnn.export import export_subgraph

    cfg = settings.scoring
    universe = flagged_universe(driver, settings, targets.internal,
                                targets.internal[targets.flagged])
    snapshot = export_subgraph(settings, driver, universe.node_ids)
    internal = np.asarray(snapshot.neo4j_ids[schema.labelled], dtype=np.int64)
    score_of = dict(zip(universe.stored_ids.tolist(), universe.stored_scores.tolist()))
    score_of.update(zip(targets.internal.tolist(), targets.scores.tolist()))
    flagged_ids = np.union1d(universe.stored_ids, targets.internal[targets.flagged])
    flagged = np.isin(internal, flagged_ids)
    scores = np.array([score_of.get(i, 0.0) for i in internal.tolist()], dtype=np.float64)
    previous = read_active_fleets(driver, schema.labelled_node, settings.neo4j.database)
    keys = np.asarray(snapshot.id_maps[schema.labelled], dtype=object)
    fleets = build_fleets(flagged, scores, keys, fleet_links(snapshot, schema), previous,
                          min_size=cfg.min_fleet_size,
                          max_shared_accounts=cfg.fleet_max_shared_accounts,
                          stability_jaccard=cfg.fleet_stability_jaccard,
                          split=fleet_split(settings))
    return fleets, set(previous), [str(k) for k in keys[flagged]]


def _evidence(scoring: ScoringModel, settings: Settings, schema: GraphSchema,
              inference: Inference, targets: _Targets, fleets: list[Fleet]
              ) -> dict[str, dict[str, Any]]:
    from sybilgnn.scoring.evidence import explain_accounts

    encoded, cfg = inference.encoded, settings.scoring
    rows = targets.rows[targets.flagged]
    found = explain_accounts(
        scoring.network, encoded.data, rows, feature_names=encoded.feature_names[schema.labelled],
        id_maps=encoded.id_maps, scores=inference.scores, threshold=scoring.threshold,
        feature_stats=encoded.feature_stats.get(schema.labelled), top_k=cfg.evidence_top_k,
        schema=schema) if rows.size else {}
    ids = np.asarray(encoded.id_maps[schema.labelled], dtype=object)
    return evidence_properties(rows, ids, inference.scores, scoring.threshold, found, fleets,
                               inference.ranked_by_trees)


def _clear_flags_and_conflicts(driver: Driver, database: str, node: NodeType,
                               targets: _Targets, write: np.ndarray) -> None:
    """Among the written targets: drop ``:Flagged`` and evidence where the flag went, and
    set ``label_conflict`` exactly where the score contradicts a label."""
    label = quote(node.label)
    rows = [{"id": int(i), "conflict": bool(c)}
            for i, c in zip(targets.internal[write], targets.contradicts[write])]
    query = (f"UNWIND $rows AS row MATCH (a:{label}) WHERE id(a) = row.id "
             "FOREACH (_ IN CASE WHEN a.sybil_flag = false AND a:Flagged THEN [1] ELSE [] END | "
             "  REMOVE a:Flagged, a.evidence_top_features, a.evidence_relations, "
             "         a.evidence_neighbours, a.evidence_summary) "
             "SET a.label_conflict = CASE WHEN row.conflict THEN true ELSE null END")
    with quiet_session(driver, database) as session:
        session.execute_write(lambda tx: tx.run(query, rows=rows).consume())


def _score_targets(scoring: ScoringModel, settings: Settings, schema: GraphSchema,
                   driver: Driver, region: ChangedGraph, timings: dict[str, float]
                   ) -> tuple[Inference, _Targets]:
    """Export the targets' receptive field, run the model on it, keep the targets' rows."""
    from sybilgnn.export import export_subgraph

    start = time.perf_counter()
    snapshot = export_subgraph(settings, driver, region.context)
    timings["export_s"] = time.perf_counter() - start
    start = time.perf_counter()
    inference = scoring.infer(snapshot, settings, drift=False)
    timings["inference_s"] = time.perf_counter() - start
    encoded = inference.encoded
    rows = rows_of(encoded, schema.labelled, region.targets)
    flagged, contradicts = queue_flags(encoded, inference.scores, scoring.threshold,
                                       schema.labelled)
    return inference, _Targets(
        rows=rows, keys=np.asarray(encoded.id_maps[schema.labelled], dtype=object)[rows],
        internal=np.asarray(encoded.neo4j_ids[schema.labelled], dtype=np.int64)[rows],
        scores=inference.scores[rows], flagged=flagged[rows], contradicts=contradicts[rows])


def score_changed(settings: Settings, *, model_version: str | int | None = None,
                  driver: Driver | None = None) -> ScoringSummary:
    """Score what changed since the last finished run of the same model; raises
    ``FullRunNeeded`` (with the reason) when there is no such run."""
    from sybilgnn.ingest.changes import first_unseen_seq
    from sybilgnn.neo4j.connection import open_driver

    scoring = load_scoring_model(settings, model_version)
    schema, database = GraphSchema.from_settings(settings), settings.neo4j.database
    active = open_driver(settings) if driver is None else driver
    try:
        base = find_base_run(active, database, scoring.version)
        if isinstance(base, str):
            raise FullRunNeeded(f"incremental scoring needs a full run first: {base}; "
                                "run `sybilgnn score` without --changed")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        with quiet_session(active, database) as session:
            graph_seq = session.execute_read(first_unseen_seq)
        region = changed_region(active, settings, base, scoring.reach, scoring.context_hops)
        timings["reach_s"] = time.perf_counter() - start
        return _run(active, settings, schema, scoring, base, region, graph_seq, timings)
    finally:
        if driver is None:
            active.close()


def _run(driver: Driver, settings: Settings, schema: GraphSchema, scoring: ScoringModel,
         base: BaseRun, region: ChangedGraph, graph_seq: int, timings: dict[str, float]
         ) -> ScoringSummary:
    database, node = settings.neo4j.database, schema.labelled_node
    ensure_scoring_schema(driver, database, node=node)
    timings.update(export_s=0.0, inference_s=0.0)
    if region.targets.size:
        inference, targets = _score_targets(scoring, settings, schema, driver, region, timings)
        content_hash = inference.encoded.content_hash
    else:
        inference, content_hash = None, ""
        empty = np.zeros(0, dtype=np.int64)
        targets = _Targets(empty, np.zeros(0, dtype=object), empty, np.zeros(0),
                           np.zeros(0, bool), np.zeros(0, bool))
    start = time.perf_counter()
    fleets, previous, flagged_keys = _regroup_fleets(driver, settings, schema, targets)
    timings["fleets_s"] = time.perf_counter() - start
    start = time.perf_counter()
    evidence = (_evidence(scoring, settings, schema, inference, targets, fleets)
                if inference is not None else {})
    timings["evidence_s"] = time.perf_counter() - start

    start = time.perf_counter()
    state, write = _write_targets(driver, settings, scoring, node, targets, evidence,
                                  content_hash)
    summary = ScoringSummary(
        run_id=state.run_id, model_version=scoring.version, threshold=scoring.threshold,
        n_scored=int(targets.rows.size), n_flagged=len(flagged_keys), n_fleets=len(fleets),
        resumed=False, export_s=timings["export_s"], inference_s=timings["inference_s"],
        evidence_s=timings["evidence_s"], fleets_s=timings["fleets_s"], write_s=0.0,
        fleet_ids=[f.fleet_id for f in fleets],
        n_label_conflicts=int(targets.contradicts.sum()), kind="incremental",
        base_run_id=base.run_id, n_seeds=region.n_seeds, n_written=int(write.sum()),
        reach_s=timings["reach_s"])
    summary.write_s = time.perf_counter() - start
    summary.set_latency(delivery_latency(driver, database, base.graph_seq))
    stats = _incremental_stats(summary, region, graph_seq, targets.scores,
                               settings.scoring.drift_warn)
    with driver.session(database=database) as session:
        session.execute_write(_commit, state.run_id, fleets, previous, state.started_at,
                              stats, node, flagged_keys)
    summary.write_s = time.perf_counter() - start
    return summary


def _write_targets(driver: Driver, settings: Settings, scoring: ScoringModel, node: NodeType,
                   targets: _Targets, evidence: dict[str, dict[str, Any]], content_hash: str
                   ) -> tuple[Any, np.ndarray]:
    """Start the run and write the targets whose score, flag or conflict changed; returns
    the run's state and which targets were written."""
    database = settings.neo4j.database
    write = _changed(_stored_state(driver, database, targets.internal), targets)
    state = start_run(driver, run_id=new_run_id(), model_version=scoring.version,
                      model_run_id=scoring.loaded.run_id, threshold=scoring.threshold,
                      snapshot_hash=content_hash, n_accounts=int(write.sum()),
                      batch_size=settings.scoring.batch_size, database=database)
    bands = _bands(driver, settings)
    write_scores(driver, state.run_id, targets.keys[write], targets.scores[write],
                 scoring.threshold, scoring.version, node=node, batch_size=state.batch_size,
                 scored_at=state.started_at, evidence=evidence, database=database,
                 flags=targets.flagged[write], bands=bands, node_ids=targets.internal[write])
    _clear_flags_and_conflicts(driver, database, node, targets, write)
    if bands is None:  # the Cypher write leaves the band labels to a pass of their own
        apply_score_bands(driver, database=database, batch_size=state.batch_size, node=node,
                          keys=[str(k) for k in targets.keys[write]])
    return state, write


def _bands(driver: Driver, settings: Settings) -> ScoreBands | None:
    """Score bands set in the write itself when the server has sybilgnn's procedures."""
    with driver.session(database=settings.neo4j.database) as session:
        return ScoreBands() if use_procedures(session, settings.neo4j.procedures) else None


def _incremental_stats(summary: ScoringSummary, region: ChangedGraph, graph_seq: int,
                       scores: np.ndarray, drift_warn: float) -> dict[str, Any]:
    """What the run's ``ScoringRun`` stores; the histogram covers the scored targets, and
    drift is measured by full runs only (a neighbourhood is not the population)."""
    hist = np.histogram(np.clip(scores, 0.0, 1.0), bins=SCORE_BINS, range=(0.0, 1.0))[0]
    return {"kind": "incremental", "base_run_id": summary.base_run_id,
            "graph_seq": int(graph_seq), "n_seeds": summary.n_seeds,
            "n_scored": summary.n_scored, "n_written": summary.n_written,
            "n_context": int(sum(ids.size for ids in region.context.values())),
            "n_flagged": summary.n_flagged, "n_fleets": summary.n_fleets,
            "n_label_conflicts": summary.n_label_conflicts, "reach_s": summary.reach_s,
            "export_s": summary.export_s, "inference_s": summary.inference_s,
            "evidence_s": summary.evidence_s, "fleets_s": summary.fleets_s,
            "write_s": summary.write_s, "score_hist": [int(c) for c in hist],
            "deliveries": summary.deliveries, "ingest_s": summary.ingest_s,
            "delivery_to_flag_s": summary.delivery_to_flag_s,
            "drift_inputs": [], "drift_psi": [], "drift_max": 0.0,
            "drift_warn": float(drift_warn)}


def _commit(tx: Any, run_id: str, fleets: list[Fleet], previous: set[str], seen_at: Any,
            stats: dict[str, Any], node: NodeType, flagged_keys: list[str]) -> None:
    """Fleets, the fleet named in every flagged account's evidence summary, and the run's
    ``finished`` status, in one transaction."""
    write_fleets(tx, run_id, fleets, previous, seen_at, node=node)
    _refresh_fleet_mentions(tx, fleets, flagged_keys, node)
    finish_run(tx, run_id, stats)


def _refresh_fleet_mentions(tx: Any, fleets: list[Fleet], flagged_keys: list[str],
                            node: NodeType) -> None:
    """A full run writes every flagged account's summary ending in ``; fleet <id> (<n>
    accounts)`` (``evidence_properties``); here only the targets were rewritten, so the
    other flagged accounts get the fleet they now belong to, or none."""
    fleet_of = {a: f for f in fleets for a in f.members}
    rows = [{"id": key, "fleet": (f"; fleet {fleet_of[key].fleet_id} "
                                  f"({fleet_of[key].size} accounts)") if key in fleet_of else ""}
            for key in flagged_keys]
    tx.run(f"UNWIND $rows AS row MATCH (a:{quote(node.label)} {{{quote(node.key)}: row.id}}) "
           "WHERE a.evidence_summary IS NOT NULL "
           "SET a.evidence_summary = split(a.evidence_summary, '; fleet ')[0] + row.fleet",
           rows=rows).consume()
