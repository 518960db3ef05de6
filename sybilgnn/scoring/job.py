"""The batch scoring job: champion model -> current graph -> scores, flags, fleets, evidence.

Order of work, chosen so that a killed run can resume to the exact same end state:
everything that decides what to write (scores, flags, fleets matched against the previous
run's fleets, evidence) is computed first from the snapshot and the last *finished* state;
then account batches are written in a fixed order (each with the run's counter); then stale
flags are removed; then fleets and ``status = 'finished'`` commit in one transaction.

Accounts are the nodes of the labelled type and fleets follow ``export.fleet_relations``,
both read through ``GraphSchema``; the model must score that node type.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from neo4j import Driver

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import SybilgnnError
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.ingest.writer import quiet_session
from sybilgnn.scoring.evidence import AccountEvidence, explain_accounts
from sybilgnn.scoring.fleets import (
    Fleet,
    FleetLinks,
    FleetSplit,
    SharedNodes,
    build_fleets,
    read_active_fleets,
)
from sybilgnn.scoring.latency import DeliveryLatency, delivery_latency, last_finished_seq
from sybilgnn.scoring.run import (
    WritePlan,
    commit_fleets,
    new_run_id,
    resolve_run,
    write_accounts,
)
from sybilgnn.scoring.writeback import RunState, ensure_scoring_schema

__all__ = ["ScoringSummary", "SCORE_BINS", "drifted_inputs", "evidence_properties",
           "fleet_links", "fleet_split",
           "queue_flags", "new_run_id", "run_scoring", "score_graph", "ScoredGraph",
           "score_snapshot"]


@dataclass
class ScoringSummary:
    run_id: str
    model_version: str
    threshold: float
    n_scored: int
    n_flagged: int
    n_fleets: int
    resumed: bool
    export_s: float = 0.0
    inference_s: float = 0.0
    evidence_s: float = 0.0
    fleets_s: float = 0.0
    write_s: float = 0.0
    fleet_ids: list[str] = field(default_factory=list)
    drift: dict[str, float] = field(default_factory=dict)   # model input -> PSI vs training
    drift_warnings: list[str] = field(default_factory=list)  # inputs above scoring.drift_warn
    n_label_conflicts: int = 0  # above the threshold but labelled legitimate: not flagged
    kind: str = "full"  # or "incremental": only what a delivery can have changed
    base_run_id: str | None = None  # incremental: the finished run it started from
    n_seeds: int = 0  # incremental: nodes a delivery touched since the base
    n_written: int = 0  # incremental: targets whose score or flag changed
    reach_s: float = 0.0  # incremental: finding what changed and what it reaches
    deliveries: int = 0  # transactional deliveries this run is the first to score
    ingest_s: float = 0.0  # their ingest seconds
    delivery_to_flag_s: float = 0.0  # oldest of them started -> this run's commit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def set_latency(self, latency: DeliveryLatency) -> None:
        self.deliveries, self.ingest_s = latency.deliveries, latency.ingest_s
        self.delivery_to_flag_s = latency.delivery_to_flag_s


def fleet_links(snapshot: Snapshot, schema: GraphSchema) -> FleetLinks:
    """The pairs of ``schema``'s fleet relations in a snapshot: (account row, shared node
    row) per relation to another node type, (account row, account row) for direct ones."""
    data = snapshot.data

    def pairs(edge_type: tuple[str, str, str]) -> np.ndarray:
        if edge_type not in data.edge_types:
            return np.zeros((2, 0), np.int64)
        return np.asarray(data[edge_type].edge_index.cpu().numpy(), dtype=np.int64)

    shared = []
    for hub in schema.fleet_hubs():
        index = pairs(hub.edge_type)
        num = int(data[hub.hub.name].num_nodes) if hub.hub.name in data.node_types else 0
        shared.append(SharedNodes(accounts=index[hub.labelled_end],
                                  nodes=index[1 - hub.labelled_end], num_nodes=num,
                                  count_property=hub.hub.fleet_count))
    direct = [pairs(et) for et in schema.fleet_links()]
    src = np.concatenate([d[0] for d in direct]) if direct else np.zeros(0, np.int64)
    dst = np.concatenate([d[1] for d in direct]) if direct else np.zeros(0, np.int64)
    return FleetLinks(shared=tuple(shared), direct_src=src, direct_dst=dst)


def fleet_split(settings: Settings) -> FleetSplit | None:
    """How the scoring settings split large components into fleets; None: they don't."""
    cfg = settings.scoring
    if not cfg.fleet_split:
        return None
    return FleetSplit(min_component_size=cfg.fleet_split_min_size,
                      resolution=cfg.fleet_split_resolution,
                      similarity_weight=cfg.fleet_split_similarity_weight)


def evidence_properties(rows: np.ndarray, ids: np.ndarray, scores: np.ndarray,
                         threshold: float, evidence: dict[int, AccountEvidence],
                         fleets: list[Fleet], ranked_by_trees: np.ndarray | None = None
                         ) -> dict[str, dict[str, Any]]:
    """Evidence per flagged account id, its summary naming the account's fleet and, for a
    model with a tree companion, which of the two ranked the account (the features and
    relations explain the GNN; where the trees ranked it, the analyst should read the
    account's neighbourhood aggregates rather than the GNN's attributions)."""
    fleet_of = {a: f for f in fleets for a in f.members}
    out: dict[str, dict[str, Any]] = {}
    for row in rows.tolist():
        account = str(ids[row])
        ev = evidence.get(row)
        props: dict[str, Any] = ev.as_properties() if ev is not None else {
            "features": [], "relations": [], "neighbours": [],
            "summary": f"score {scores[row]:.3f} >= threshold {threshold:.3f}"}
        if ranked_by_trees is not None:
            props["summary"] = (f"{props['summary']}; ranked by "
                                + ("the tree companion (features and neighbour aggregates)"
                                   if ranked_by_trees[row] else "the GNN"))
        fleet = fleet_of.get(account)
        if fleet is not None:
            props["summary"] = f"{props['summary']}; fleet {fleet.fleet_id} ({fleet.size} accounts)"
        out[account] = props
    return out


def score_snapshot(
    driver: Driver,
    settings: Settings,
    snapshot: Snapshot,
    scores: np.ndarray,
    *,
    threshold: float,
    model_version: str | int,
    model_run_id: str | None = None,
    model: torch.nn.Module | None = None,
    resume_run_id: str | None = None,
    stop_after_batches: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    timings: dict[str, float] | None = None,
    drift: dict[str, float] | None = None,
    ranked_by_trees: np.ndarray | None = None,
    graph_seq: int = 0,
) -> ScoringSummary:
    """Write ``scores`` (row i = account row i of ``snapshot``) with fleets and evidence.

    ``snapshot`` is the one the model read (its matrices in the model's columns), so the
    evidence names the model's inputs. ``model`` (the scoring model) supplies evidence;
    without it flagged accounts get empty evidence lists. ``drift`` (input -> PSI against
    training) is stored on the ``ScoringRun``. ``stop_after_batches`` is the test hook that
    simulates a killed write. ``ranked_by_trees`` (per account, a model with a tree
    companion) names in each flag's summary which of the two models ranked it.
    ``graph_seq`` (the change counter read before the export) lets a later incremental run
    start from this one.
    """
    database = settings.neo4j.database
    schema = GraphSchema.from_settings(settings)
    ids, scores = _checked_scores(schema, snapshot, scores)
    # Known labels win: an account a label or verdict says is legitimate never enters the
    # queue as a new flag; it is marked as contradicting its label instead.
    flags = queue_flags(snapshot, scores, threshold, schema.labelled)
    version, node, timings = str(model_version), schema.labelled_node, dict(timings or {})
    ensure_scoring_schema(driver, database, node=node)
    state, resumed = resolve_run(driver, settings, snapshot, model_version=version,
                                 model_run_id=model_run_id, threshold=threshold,
                                 resume_run_id=resume_run_id, database=database)
    plan = _plan_writes(driver, settings, schema, snapshot, ids, scores, flags, timings,
                        threshold=threshold, model_version=version, model=model,
                        ranked_by_trees=ranked_by_trees)
    start = time.perf_counter()
    write_accounts(driver, settings, state, plan, node=node,
                   node_ids=snapshot.neo4j_ids.get(schema.labelled), resumed=resumed,
                   stop_after_batches=stop_after_batches, on_batch=on_batch)
    timings["write_s"] = time.perf_counter() - start + timings.get("write_s", 0.0)
    return _commit_run(driver, settings, state, plan, resumed, timings, scores=scores,
                       drift=drift or {}, graph_seq=graph_seq, node=node)


def _commit_run(driver: Driver, settings: Settings, state: RunState, plan: WritePlan,
                resumed: bool, timings: dict[str, float], *, scores: np.ndarray,
                drift: dict[str, float], graph_seq: int, node: str) -> ScoringSummary:
    """Close the run once every account is written: fleets and the ``ScoringRun``'s stats
    commit in one transaction, so a run killed before it stays resumable (the module
    docstring); then the summary, with delivery latency, goes to the report."""
    database, cfg = settings.neo4j.database, settings.scoring
    summary = _summary(state, plan, resumed, timings, drift, cfg.drift_warn)
    with quiet_session(driver, database) as session:  # no graph_seq before the first run
        since = session.execute_read(last_finished_seq)
    summary.set_latency(delivery_latency(driver, database, since))
    stats = {**{name: getattr(summary, name) for name in _STORED_COUNTS},
             **_run_statistics(scores, drift, cfg.drift_warn),
             "kind": "full", "graph_seq": int(graph_seq)}
    start = time.perf_counter()
    with driver.session(database=database) as session:
        session.execute_write(commit_fleets, state.run_id, plan, state.started_at, stats, node)
    summary.write_s += time.perf_counter() - start
    _write_report(cfg.report_dir, summary)
    return summary


def _checked_scores(schema: GraphSchema, snapshot: Snapshot, scores: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(account keys, scores) row by row; a snapshot of another schema, or a score count
    that is not the account count, stops the run before it writes anything."""
    schema.check_snapshot(snapshot)
    ids = np.asarray(snapshot.id_maps[schema.labelled], dtype=object)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size != ids.size:
        raise SybilgnnError(f"{scores.size} scores for {ids.size} accounts in the snapshot")
    return ids, scores


def _plan_writes(driver: Driver, settings: Settings, schema: GraphSchema, snapshot: Snapshot,
                 ids: np.ndarray, scores: np.ndarray, flags: tuple[np.ndarray, np.ndarray],
                 timings: dict[str, float], *, threshold: float, model_version: str,
                 model: torch.nn.Module | None, ranked_by_trees: np.ndarray | None
                 ) -> WritePlan:
    """Fleets (matched against the last finished run's) and evidence of the ``flags``
    (``queue_flags``), with their seconds in ``timings``: everything that decides what to
    write, before the first write."""
    cfg, (flagged, contradicts) = settings.scoring, flags

    start = time.perf_counter()
    previous = read_active_fleets(driver, schema.labelled_node, settings.neo4j.database)
    fleets = build_fleets(flagged, scores, ids, fleet_links(snapshot, schema), previous,
                          min_size=cfg.min_fleet_size,
                          max_shared_accounts=cfg.fleet_max_shared_accounts,
                          stability_jaccard=cfg.fleet_stability_jaccard,
                          split=fleet_split(settings))
    timings["fleets_s"] = time.perf_counter() - start

    start = time.perf_counter()
    rows = np.flatnonzero(flagged)
    evidence: dict[int, AccountEvidence] = {}
    if model is not None and rows.size:
        evidence = explain_accounts(
            model, snapshot.data, rows, feature_names=snapshot.feature_names[schema.labelled],
            id_maps=snapshot.id_maps, scores=scores, threshold=threshold,
            feature_stats=snapshot.feature_stats.get(schema.labelled), top_k=cfg.evidence_top_k,
            schema=schema)
    evidence_by_id = evidence_properties(rows, ids, scores, threshold, evidence, fleets,
                                          ranked_by_trees)
    timings["evidence_s"] = time.perf_counter() - start
    return WritePlan(ids=ids, scores=scores, threshold=threshold, model_version=model_version,
                     flagged=flagged, contradicts=contradicts, evidence=evidence_by_id,
                     fleets=fleets, previous_fleets=set(previous))


#: The run's counts and seconds that its ``ScoringRun`` node stores.
_STORED_COUNTS = ("n_scored", "n_flagged", "n_fleets", "n_label_conflicts", "export_s",
                  "inference_s", "evidence_s", "fleets_s", "write_s", "deliveries",
                  "ingest_s", "delivery_to_flag_s")


def _summary(state: RunState, plan: WritePlan, resumed: bool, timings: dict[str, float],
             drift: dict[str, float], warn_at: float) -> ScoringSummary:
    """The run's summary as the account writes left it (the commit adds to ``write_s``)."""
    return ScoringSummary(
        run_id=state.run_id, model_version=plan.model_version, threshold=float(plan.threshold),
        n_scored=int(plan.ids.size), n_flagged=int(plan.flagged.sum()),
        n_fleets=len(plan.fleets), resumed=resumed, export_s=timings.get("export_s", 0.0),
        inference_s=timings.get("inference_s", 0.0), evidence_s=timings["evidence_s"],
        fleets_s=timings["fleets_s"], write_s=timings["write_s"],
        fleet_ids=[f.fleet_id for f in plan.fleets], drift=dict(drift),
        drift_warnings=drifted_inputs(drift, warn_at),
        n_label_conflicts=int(plan.contradicts.sum()))


def queue_flags(snapshot: Snapshot, scores: np.ndarray, threshold: float,
                node_type: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(flagged, contradicts): scores at or above the threshold are flagged unless a label
    or verdict says the account (a node of ``node_type``, by default the snapshot's
    labelled type) is legitimate; those contradict their label instead."""
    above = np.asarray(scores) >= threshold
    store = snapshot.data[snapshot.labelled_type if node_type is None else node_type]
    legit = (store.y.cpu().numpy() == 0 if "y" in store
             else np.zeros(above.size, dtype=bool))
    if "audit_y" in store:  # an audit's verdict is a label too
        legit = legit | (store.audit_y.cpu().numpy() == 0)
    return above & ~legit, above & legit


SCORE_BINS = 20  # the score histogram stored on every run, over [0, 1]


def drifted_inputs(drift: dict[str, float], warn_at: float) -> list[str]:
    """Inputs whose PSI exceeds ``warn_at``, largest first, as ``name (psi)``."""
    above = sorted(((v, k) for k, v in drift.items() if v > warn_at), reverse=True)
    return [f"{name} ({value:.2f})" for value, name in above]


def _run_statistics(scores: np.ndarray, drift: dict[str, float], warn_at: float
                    ) -> dict[str, Any]:
    """What the report shows over the last runs: the score histogram and the input drift
    (parallel lists, since Neo4j properties hold no maps)."""
    hist = np.histogram(np.clip(scores, 0.0, 1.0), bins=SCORE_BINS, range=(0.0, 1.0))[0]
    names = sorted(drift, key=lambda k: -drift[k])
    return {"score_hist": [int(c) for c in hist], "drift_inputs": names,
            "drift_psi": [round(float(drift[k]), 6) for k in names],
            "drift_max": round(float(max(drift.values())), 6) if drift else 0.0,
            "drift_warn": float(warn_at)}


def _write_report(report_dir: Path, summary: ScoringSummary) -> None:
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / f"{summary.run_id}.json").write_text(json.dumps(summary.to_dict(), indent=2))
    except OSError:
        pass  # the report is a convenience; Neo4j's ScoringRun node is the record


@dataclass
class ScoredGraph:
    """A finished run with what it read: the snapshot in the model's columns, its scores."""

    summary: ScoringSummary
    snapshot: Snapshot
    scores: np.ndarray
    flags: np.ndarray  # as written: above the threshold, labelled-legitimate accounts excepted
    reach: int  # hops of the graph that one account's score can depend on


def score_graph(
    settings: Settings,
    *,
    model_version: str | int | None = None,
    driver: Driver | None = None,
    resume_run_id: str | None = None,
    stop_after_batches: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    progress: bool = False,
) -> ScoredGraph:
    """``run_scoring`` that also hands back the snapshot and scores (for the replay)."""
    from sybilgnn.export import export_snapshot
    from sybilgnn.ingest.changes import first_unseen_seq
    from sybilgnn.neo4j.connection import open_driver
    from sybilgnn.scoring.inference import load_scoring_model

    scoring = load_scoring_model(settings, model_version)
    schema = GraphSchema.from_settings(settings)
    own_driver = driver is None
    active = open_driver(settings) if driver is None else driver
    try:
        start = time.perf_counter()
        with quiet_session(active, settings.neo4j.database) as session:
            # read before the export: whatever a delivery stamps from here on is news to
            # the next incremental run (sybilgnn.ingest.changes)
            graph_seq = session.execute_read(first_unseen_seq)
        snapshot = export_snapshot(settings, driver=active, progress=progress)
        timings = {"export_s": time.perf_counter() - start}
        start = time.perf_counter()
        inference = scoring.infer(snapshot, settings)
        timings["inference_s"] = time.perf_counter() - start
        summary = score_snapshot(
            active, settings, inference.encoded, inference.scores,
            threshold=scoring.threshold, model_version=scoring.version,
            model_run_id=scoring.loaded.run_id, model=scoring.network,
            resume_run_id=resume_run_id, stop_after_batches=stop_after_batches,
            on_batch=on_batch, timings=timings, drift=inference.drift,
            ranked_by_trees=inference.ranked_by_trees, graph_seq=graph_seq)
        flags, _ = queue_flags(inference.encoded, inference.scores, scoring.threshold,
                               schema.labelled)
        return ScoredGraph(summary, inference.encoded, inference.scores, flags,
                           reach=scoring.reach)
    finally:
        if own_driver:
            active.close()


def run_scoring(
    settings: Settings,
    *,
    model_version: str | int | None = None,
    driver: Driver | None = None,
    resume_run_id: str | None = None,
    stop_after_batches: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    progress: bool = False,
) -> ScoringSummary:
    """Score every account with the champion (or ``model_version``) and write back."""
    return score_graph(settings, model_version=model_version, driver=driver,
                       resume_run_id=resume_run_id, stop_after_batches=stop_after_batches,
                       on_batch=on_batch, progress=progress).summary
