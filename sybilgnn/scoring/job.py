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
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from neo4j import Driver

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError, SybilgnnError
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.neo4j.plugin import use_procedures
from sybilgnn.scoring.bands import ScoreBands, apply_score_bands
from sybilgnn.scoring.evidence import AccountEvidence, explain_accounts
from sybilgnn.scoring.fleets import (
    Fleet,
    FleetLinks,
    FleetSplit,
    SharedNodes,
    build_fleets,
    read_active_fleets,
    write_fleets,
)
from sybilgnn.scoring.writeback import (
    RunState,
    ensure_scoring_schema,
    find_resumable_run,
    finish_run,
    get_run,
    mark_label_conflicts,
    remove_stale_flags,
    start_run,
    write_scores,
)

__all__ = ["ScoringSummary", "SCORE_BINS", "drifted_inputs", "fleet_links", "fleet_split",
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S")
    return f"score-{stamp}-{secrets.token_hex(3)}"


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


def _resolve_run(driver: Driver, settings: Settings, snapshot: Snapshot, *, model_version: str,
                 model_run_id: str | None, threshold: float, resume_run_id: str | None,
                 database: str) -> tuple[RunState, bool]:
    """The run to write: the named one, the latest unfinished twin, or a new one."""
    batch_size = settings.scoring.batch_size
    if resume_run_id is not None:
        state = get_run(driver, resume_run_id, database)
        if state is None:
            raise SybilgnnError(f"--resume {resume_run_id}: no ScoringRun with that run_id")
        if state.status != "running":
            raise SybilgnnError(f"--resume {resume_run_id}: that run is {state.status}; "
                                "start a new run instead")
        if state.snapshot_hash != snapshot.content_hash or state.model_version != model_version:
            raise SybilgnnError(
                f"--resume {resume_run_id}: it scored model {state.model_version} on snapshot "
                f"{state.snapshot_hash[:12]}, but now model {model_version} and snapshot "
                f"{snapshot.content_hash[:12]} are current; start a new run instead")
        return start_run(driver, run_id=state.run_id, model_version=model_version,
                         model_run_id=model_run_id, threshold=threshold,
                         snapshot_hash=snapshot.content_hash, n_accounts=snapshot.num_accounts,
                         batch_size=state.batch_size, database=database), True
    if settings.scoring.auto_resume:
        twin = find_resumable_run(driver, model_version, snapshot.content_hash, batch_size,
                                  database)
        if twin is not None:
            return start_run(driver, run_id=twin.run_id, model_version=model_version,
                             model_run_id=model_run_id, threshold=threshold,
                             snapshot_hash=snapshot.content_hash,
                             n_accounts=snapshot.num_accounts, batch_size=batch_size,
                             database=database), True
    return start_run(driver, run_id=new_run_id(), model_version=model_version,
                     model_run_id=model_run_id, threshold=threshold,
                     snapshot_hash=snapshot.content_hash, n_accounts=snapshot.num_accounts,
                     batch_size=batch_size, database=database), False


def _evidence_properties(rows: np.ndarray, ids: np.ndarray, scores: np.ndarray,
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
) -> ScoringSummary:
    """Write ``scores`` (row i = account row i of ``snapshot``) with fleets and evidence.

    ``snapshot`` is the one the model read (its matrices in the model's columns), so the
    evidence names the model's inputs. ``model`` (the scoring model) supplies evidence;
    without it flagged accounts get empty evidence lists. ``drift`` (input -> PSI against
    training) is stored on the ``ScoringRun``. ``stop_after_batches`` is the test hook that
    simulates a killed write. ``ranked_by_trees`` (per account, a model with a tree
    companion) names in each flag's summary which of the two models ranked it.
    """
    database = settings.neo4j.database
    cfg = settings.scoring
    schema = GraphSchema.from_settings(settings)
    schema.check_snapshot(snapshot)
    node = schema.labelled_node
    version = str(model_version)
    ids = np.asarray(snapshot.id_maps[schema.labelled], dtype=object)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size != ids.size:
        raise SybilgnnError(f"{scores.size} scores for {ids.size} accounts in the snapshot")
    # Known labels win: an account a label or verdict says is legitimate never enters the
    # queue as a new flag; it is marked as contradicting its label instead.
    flagged, contradicts = queue_flags(snapshot, scores, threshold, schema.labelled)
    timings = dict(timings or {})

    ensure_scoring_schema(driver, database, node=node)
    state, resumed = _resolve_run(driver, settings, snapshot, model_version=version,
                                  model_run_id=model_run_id, threshold=threshold,
                                  resume_run_id=resume_run_id, database=database)

    start = time.perf_counter()
    previous = read_active_fleets(driver, node, database)
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
    evidence_by_id = _evidence_properties(rows, ids, scores, threshold, evidence, fleets,
                                          ranked_by_trees)
    timings["evidence_s"] = time.perf_counter() - start

    start = time.perf_counter()
    with driver.session(database=database) as session:
        procedures = use_procedures(session, settings.neo4j.procedures)
    # score-band labels let the Browser style size accounts by score; the procedure sets
    # them in the same pass as the scores, plain Cypher in a pass of its own
    bands = ScoreBands() if procedures else None
    write_scores(driver, state.run_id, ids, scores, threshold, version, node=node,
                 batch_size=state.batch_size, scored_at=state.started_at,
                 evidence=evidence_by_id, stop_after_batches=stop_after_batches,
                 on_batch=on_batch, database=database, bands=bands,
                 node_ids=snapshot.neo4j_ids.get(schema.labelled), flags=flagged)
    remove_stale_flags(driver, state.run_id, database, node=node)
    mark_label_conflicts(driver, ids[contradicts].tolist(), node=node, database=database,
                         batch_size=state.batch_size)
    if bands is None or resumed:  # a resumed run's first batches may have come through Cypher
        apply_score_bands(driver, database=database, batch_size=state.batch_size, node=node)
    timings["write_s"] = time.perf_counter() - start + timings.get("write_s", 0.0)

    stats = {"n_scored": int(ids.size), "n_flagged": int(flagged.sum()),
             "n_fleets": len(fleets), "n_label_conflicts": int(contradicts.sum()),
             "export_s": timings.get("export_s", 0.0),
             "inference_s": timings.get("inference_s", 0.0),
             "evidence_s": timings["evidence_s"], "fleets_s": timings["fleets_s"],
             "write_s": timings["write_s"],
             **_run_statistics(scores, drift or {}, cfg.drift_warn)}
    start = time.perf_counter()
    with driver.session(database=database) as session:
        session.execute_write(_commit_fleets, state.run_id, fleets, set(previous),
                              state.started_at, stats, schema)
    timings["write_s"] += time.perf_counter() - start
    summary = ScoringSummary(
        run_id=state.run_id, model_version=version, threshold=float(threshold),
        n_scored=int(ids.size), n_flagged=int(flagged.sum()), n_fleets=len(fleets),
        resumed=resumed, export_s=timings.get("export_s", 0.0),
        inference_s=timings.get("inference_s", 0.0), evidence_s=timings["evidence_s"],
        fleets_s=timings["fleets_s"], write_s=timings["write_s"],
        fleet_ids=[f.fleet_id for f in fleets], drift=dict(drift or {}),
        drift_warnings=drifted_inputs(drift or {}, cfg.drift_warn),
        n_label_conflicts=int(contradicts.sum()))
    _write_report(cfg.report_dir, summary)
    return summary


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


def _commit_fleets(tx: Any, run_id: str, fleets: list[Fleet], previous_ids: set[str],
                   seen_at: datetime, stats: dict[str, Any], schema: GraphSchema) -> None:
    write_fleets(tx, run_id, fleets, previous_ids, seen_at, node=schema.labelled_node)
    finish_run(tx, run_id, stats)


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
    from sybilgnn.neo4j.connection import open_driver
    from sybilgnn.export import export_snapshot
    from sybilgnn.registry import load_registered_model
    from sybilgnn.training import apply_calibrator, load_model, predict_logits
    from sybilgnn.training.companion import COMPANION_REACH, companion_features

    loaded = load_registered_model(settings, model_version if model_version is not None
                                   else settings.scoring.model_alias)
    schema = GraphSchema.from_settings(settings)
    if loaded.target != schema.labelled:
        raise InputError(
            f"model {loaded.model_name} v{loaded.version} scores {loaded.target!r} nodes, but "
            f"export.labels.node_type is {schema.labelled!r}: it was trained on another graph "
            "schema. Train a model on this one (`sybilgnn retrain`), or set "
            "registry.model_name to the model of this schema")
    model = load_model(loaded.model_config, loaded.state_dict)
    own_driver = driver is None
    active = open_driver(settings) if driver is None else driver
    try:
        start = time.perf_counter()
        snapshot = export_snapshot(settings, driver=active, progress=progress)
        timings = {"export_s": time.perf_counter() - start}
        start = time.perf_counter()
        encoded = loaded.encode(snapshot)  # the model's own preprocessing, never refitted
        drift = loaded.preprocessor.drift(snapshot)
        logits = predict_logits(model, encoded, settings.train.device)
        ranked_by_trees = None
        if loaded.companion is not None:
            features = companion_features(encoded)
            ranked_by_trees = loaded.companion.lifting(logits, features)
            logits = loaded.companion.fuse(logits, features)
        scores = apply_calibrator(loaded.calibrator, logits)
        timings["inference_s"] = time.perf_counter() - start
        summary = score_snapshot(
            active, settings, encoded, scores, threshold=float(loaded.threshold),
            model_version=str(loaded.version), model_run_id=loaded.run_id, model=model,
            resume_run_id=resume_run_id, stop_after_batches=stop_after_batches,
            on_batch=on_batch, timings=timings, drift=drift, ranked_by_trees=ranked_by_trees)
        flags, _ = queue_flags(encoded, scores, float(loaded.threshold), schema.labelled)
        reach = len(model.convs)
        if loaded.companion is not None:  # the trees' neighbour aggregates read 2 hops
            reach = max(reach, COMPANION_REACH)
        return ScoredGraph(summary, encoded, scores, flags, reach=reach)
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
