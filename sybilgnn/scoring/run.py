"""A scoring run's life in Neo4j (which run, its writes, its commit), apart so job.py stays short."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from neo4j import Driver

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import SybilgnnError
from sybilgnn.graph_schema import NodeType
from sybilgnn.neo4j.plugin import use_procedures
from sybilgnn.scoring.bands import ScoreBands, apply_score_bands
from sybilgnn.scoring.fleets import Fleet, write_fleets
from sybilgnn.scoring.writeback import (
    RunState,
    find_resumable_run,
    finish_run,
    get_run,
    mark_label_conflicts,
    remove_stale_flags,
    start_run,
    write_scores,
)

__all__ = ["WritePlan", "commit_fleets", "new_run_id", "resolve_run", "write_accounts"]


@dataclass(frozen=True)
class WritePlan:
    """What a run writes, all decided before its first write, so a resumed run writes the
    same as an uninterrupted one."""

    ids: np.ndarray           # account keys, row by row
    scores: np.ndarray
    threshold: float
    model_version: str
    flagged: np.ndarray       # above the threshold, labelled-legitimate accounts excepted
    contradicts: np.ndarray   # above the threshold but labelled legitimate
    evidence: dict[str, dict[str, Any]]  # flagged account key -> evidence properties
    fleets: list[Fleet]
    previous_fleets: set[str]  # fleet ids the last finished run left active


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S")
    return f"score-{stamp}-{secrets.token_hex(3)}"


def resolve_run(driver: Driver, settings: Settings, snapshot: Snapshot, *, model_version: str,
                model_run_id: str | None, threshold: float, resume_run_id: str | None,
                database: str) -> tuple[RunState, bool]:
    """The run to write: the named one, the latest unfinished twin, or a new one; and
    whether it resumes."""
    run_id, batch_size = new_run_id(), settings.scoring.batch_size
    resumed = False
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
        run_id, batch_size, resumed = state.run_id, state.batch_size, True
    elif settings.scoring.auto_resume:
        twin = find_resumable_run(driver, model_version, snapshot.content_hash, batch_size,
                                  database)
        if twin is not None:
            run_id, resumed = twin.run_id, True
    return start_run(driver, run_id=run_id, model_version=model_version,
                     model_run_id=model_run_id, threshold=threshold,
                     snapshot_hash=snapshot.content_hash, n_accounts=snapshot.num_accounts,
                     batch_size=batch_size, database=database), resumed


def write_accounts(driver: Driver, settings: Settings, state: RunState, plan: WritePlan, *,
                   node: NodeType, node_ids: np.ndarray | None, resumed: bool,
                   stop_after_batches: int | None,
                   on_batch: Callable[[int, int], None] | None) -> None:
    """The account batches in their fixed order, then what needs all of them written: stale
    flags removed, label conflicts marked, score bands set."""
    database = settings.neo4j.database
    with driver.session(database=database) as session:
        procedures = use_procedures(session, settings.neo4j.procedures)
    # score-band labels let the Browser style size accounts by score; the procedure sets
    # them in the same pass as the scores, plain Cypher in a pass of its own
    bands = ScoreBands() if procedures else None
    write_scores(driver, state.run_id, plan.ids, plan.scores, plan.threshold,
                 plan.model_version, node=node, batch_size=state.batch_size,
                 scored_at=state.started_at, evidence=plan.evidence,
                 stop_after_batches=stop_after_batches, on_batch=on_batch, database=database,
                 bands=bands, node_ids=node_ids, flags=plan.flagged)
    remove_stale_flags(driver, state.run_id, database, node=node)
    mark_label_conflicts(driver, plan.ids[plan.contradicts].tolist(), node=node,
                         database=database, batch_size=state.batch_size)
    if bands is None or resumed:  # a resumed run's first batches may have come through Cypher
        apply_score_bands(driver, database=database, batch_size=state.batch_size, node=node)


def commit_fleets(tx: Any, run_id: str, plan: WritePlan, seen_at: datetime,
                  stats: dict[str, Any], node: NodeType) -> None:
    """Fleets and the run's ``finished`` status in one transaction: the run's last write."""
    write_fleets(tx, run_id, plan.fleets, plan.previous_fleets, seen_at, node=node)
    finish_run(tx, run_id, stats)
