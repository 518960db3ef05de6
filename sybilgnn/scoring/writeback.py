"""Write scores, flags and evidence back to Neo4j: batched, idempotent and resumable.

A scoring run is a ``(:ScoringRun)`` node whose ``status`` stays ``'running'`` until every
batch, the fleets and the stale-flag removal are written; then it becomes ``'finished'``.
Batches go in a fixed order and each batch commits together with the run's
``written_batches`` counter, so a run killed anywhere resumes at the first unwritten batch
and ends in exactly the state an uninterrupted run would have reached.

The scored nodes are those of the labelled node type (``GraphSchema.labelled_node``:
``(:Account {account_id})`` on the default schema), matched by their key; label and key are
checked identifiers before they reach a query string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from neo4j import Driver, ManagedTransaction

from sybilgnn.errors import SybilgnnError
from sybilgnn.graph_schema import NodeType
from sybilgnn.neo4j.cypher import quote
from sybilgnn.scoring.bands import BAND_LABELS, ScoreBands, band_index

__all__ = [
    "EVIDENCE_PROPERTIES",
    "RunState",
    "WriteInterrupted",
    "ensure_scoring_schema",
    "find_resumable_run",
    "finish_run",
    "get_run",
    "read_records",
    "remove_stale_flags",
    "mark_label_conflicts",
    "start_run",
    "write_scores",
]

EVIDENCE_PROPERTIES = ("evidence_top_features", "evidence_relations", "evidence_neighbours",
                       "evidence_summary")

_RUN_AND_FLEET_SCHEMA = [
    "CREATE CONSTRAINT scoring_run_id_unique IF NOT EXISTS "
    "FOR (r:ScoringRun) REQUIRE r.run_id IS UNIQUE",
    "CREATE CONSTRAINT fleet_id_unique IF NOT EXISTS FOR (f:Fleet) REQUIRE f.fleet_id IS UNIQUE",
]


def _key_constraint(node: NodeType) -> str:
    """Uniqueness of the scored nodes' key, named as ingest names its constraints
    (``<key>_unique``), so that both create one constraint."""
    return (f"CREATE CONSTRAINT {quote(node.key + '_unique')} IF NOT EXISTS "
            f"FOR (a:{quote(node.label)}) REQUIRE a.{quote(node.key)} IS UNIQUE")


def _write_scores_query(node: NodeType) -> str:
    """Every row: score, flag and run stamp (flagged rows get label and evidence next)."""
    return f"""
UNWIND range(0, size($ids) - 1) AS i
MATCH (a:{quote(node.label)} {{{quote(node.key)}: $ids[i]}})
// the previous run's flag stays readable for "newly flagged / no longer flagged"; a batch
// written again for the same run keeps the value it saw the first time
SET a.prev_sybil_flag = CASE WHEN a.run_id = $run_id THEN a.prev_sybil_flag
                             ELSE coalesce(a.sybil_flag, false) END
SET a.sybil_score = $scores[i], a.sybil_flag = $flags[i], a.scored_at = $scored_at,
    a.model_version = $model_version, a.run_id = $run_id
"""


# The same through the server-side procedure (see sybilgnn/neo4j/plugin), which also sets the
# score-band label in the same pass.
_WRITE_SCORES_PROCEDURE = """
CALL sybilgnn.scores.write($label, $key, $ids, $scores, $flags, $run_id,
                           $model_version, $scored_at, $band_labels, $bands, $node_ids)
YIELD written, missing RETURN written, missing
"""


def _write_flagged_query(node: NodeType) -> str:
    return f"""
UNWIND $rows AS row
MATCH (a:{quote(node.label)} {{{quote(node.key)}: row.id}})
SET a:Flagged, a.evidence_top_features = row.features, a.evidence_relations = row.relations,
    a.evidence_neighbours = row.neighbours, a.evidence_summary = row.summary
"""


_ADVANCE_COUNTER = """
MATCH (r:ScoringRun {run_id: $run_id})
WHERE r.written_batches = $batch AND r.status = 'running'
SET r.written_batches = $batch + 1
RETURN r.written_batches AS written
"""


def _remove_stale_query(node: NodeType) -> str:
    """After all batches: a flag means "flagged by this run"; anything else loses label and
    evidence."""
    return f"""
MATCH (a:{quote(node.label)}:Flagged)
WHERE a.run_id IS NULL OR a.run_id <> $run_id OR a.sybil_flag = false
CALL (a) {{
  REMOVE a:Flagged, a.evidence_top_features, a.evidence_relations, a.evidence_neighbours,
         a.evidence_summary
  SET a.sybil_flag = CASE WHEN a.run_id = $run_id THEN a.sybil_flag ELSE false END
}} IN TRANSACTIONS OF 10000 ROWS
"""


class WriteInterrupted(SybilgnnError):
    """The write stopped before its last batch (a test hook or a callback asked it to)."""


@dataclass(frozen=True)
class RunState:
    """What Neo4j knows about one scoring run; enough to resume it."""

    run_id: str
    status: str
    model_version: str
    snapshot_hash: str
    batch_size: int
    n_batches: int
    written_batches: int
    started_at: datetime


def ensure_scoring_schema(driver: Driver, database: str | None = None, *,
                          node: NodeType) -> None:
    """Uniqueness constraints that make the MATCH/MERGE on keys fast and safe: the scored
    nodes' key (``node``), scoring runs and fleets."""
    with driver.session(database=database) as session:
        for statement in [_key_constraint(node), *_RUN_AND_FLEET_SCHEMA]:
            session.run(statement).consume()


def _state(record: Any) -> RunState:
    started = record["started_at"]
    return RunState(
        run_id=record["run_id"], status=record["status"],
        model_version=str(record["model_version"]), snapshot_hash=record["snapshot_hash"],
        batch_size=int(record["batch_size"]), n_batches=int(record["n_batches"]),
        written_batches=int(record["written_batches"]),
        started_at=started.to_native() if hasattr(started, "to_native") else started,
    )


_RUN_FIELDS = ("r.run_id AS run_id, r.status AS status, r.model_version AS model_version, "
               "r.snapshot_hash AS snapshot_hash, r.batch_size AS batch_size, "
               "r.n_batches AS n_batches, r.written_batches AS written_batches, "
               "r.started_at AS started_at")


def read_records(driver: Driver, query: str, database: str | None = None,
                 **params: Any) -> list[Any]:
    """Run a read; no "unknown property" notices before the first run created the keys."""
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        return list(session.run(query, params))


def get_run(driver: Driver, run_id: str, database: str | None = None) -> RunState | None:
    records = read_records(driver, f"MATCH (r:ScoringRun {{run_id: $run_id}}) RETURN {_RUN_FIELDS}",
                           database, run_id=run_id)
    return _state(records[0]) if records else None


def find_resumable_run(driver: Driver, model_version: str, snapshot_hash: str,
                       batch_size: int, database: str | None = None) -> RunState | None:
    """The latest unfinished run of the same model on the same snapshot, if any."""
    records = read_records(
        driver,
        f"MATCH (r:ScoringRun {{status: 'running'}}) "
        f"WHERE r.model_version = $model_version AND r.snapshot_hash = $snapshot_hash "
        f"AND r.batch_size = $batch_size "
        f"RETURN {_RUN_FIELDS} ORDER BY r.started_at DESC LIMIT 1",
        database, model_version=str(model_version), snapshot_hash=snapshot_hash,
        batch_size=batch_size)
    return _state(records[0]) if records else None


def start_run(driver: Driver, *, run_id: str, model_version: str, model_run_id: str | None,
              threshold: float, snapshot_hash: str, n_accounts: int, batch_size: int,
              started_at: datetime | None = None, database: str | None = None) -> RunState:
    """Create the ``ScoringRun`` node in status 'running' (a no-op when it already exists)."""
    started = started_at or datetime.now(timezone.utc)
    n_batches = (n_accounts + batch_size - 1) // batch_size
    driver.execute_query(
        """
        MERGE (r:ScoringRun {run_id: $run_id})
        ON CREATE SET r.model_version = $model_version, r.model_run_id = $model_run_id,
            r.threshold = $threshold, r.snapshot_hash = $snapshot_hash,
            r.started_at = $started_at, r.status = 'running', r.batch_size = $batch_size,
            r.n_batches = $n_batches, r.written_batches = 0, r.n_scored = $n_accounts,
            r.attempts = 0
        SET r.attempts = r.attempts + 1
        """,
        run_id=run_id, model_version=str(model_version), model_run_id=model_run_id,
        threshold=float(threshold), snapshot_hash=snapshot_hash, started_at=started,
        batch_size=batch_size, n_batches=n_batches, n_accounts=int(n_accounts),
        database_=database)
    state = get_run(driver, run_id, database)
    assert state is not None
    return state


def _write_batch(tx: ManagedTransaction, *, batch: int, run_id: str, query: str,
                 params: dict[str, Any], flagged_query: str,
                 flagged_rows: list[dict[str, Any]]) -> None:
    tx.run(query, params).consume()
    if flagged_rows:
        tx.run(flagged_query, rows=flagged_rows).consume()
    record = tx.run(_ADVANCE_COUNTER, run_id=run_id, batch=batch).single()
    if record is None:
        raise SybilgnnError(
            f"scoring run {run_id}: batch {batch} is not the next one to write (another "
            "process writes this run, or it finished); start a new run")


def write_scores(
    driver: Driver,
    run_id: str,
    account_ids: Sequence[str] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    threshold: float,
    model_version: str,
    *,
    node: NodeType,
    batch_size: int = 50_000,
    scored_at: datetime | None = None,
    evidence: dict[str, dict[str, Any]] | None = None,
    start_batch: int | None = None,
    stop_after_batches: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    database: str | None = None,
    bands: ScoreBands | None = None,
    node_ids: np.ndarray | None = None,
    flags: np.ndarray | None = None,
) -> int:
    """Write ``scores`` (row i belongs to ``account_ids[i]``, keys of ``node``: the labelled
    node type) in batches; returns batches written.

    The run node must exist (``start_run``); writing starts at its ``written_batches`` unless
    ``start_batch`` says otherwise. ``evidence`` maps a flagged account id to its evidence
    properties (``features``, ``relations``, ``neighbours``, ``summary``).
    ``stop_after_batches`` stops (raising ``WriteInterrupted``) after that many batches of
    this call: the hook the resume tests use to simulate a kill. With ``bands`` the batches
    go through the server-side procedure, which also sets each account's score-band label
    (the caller then skips ``apply_score_bands``); without, through plain Cypher.
    ``node_ids`` (the snapshot's internal ids, row by row) let the procedure skip the key
    index for every node whose id still holds the same key. ``flags`` (default: score at
    or above the threshold) lets the caller keep labelled-legitimate accounts unflagged.
    """
    ids, values, flags, state = _checked_rows(driver, run_id, database, account_ids, scores,
                                              threshold, flags)
    batches = _ScoreBatches(
        driver=driver, database=database, run_id=run_id, node=node, ids=ids, scores=values,
        flags=flags, batch_size=batch_size, bands=bands, evidence=evidence,
        hints=node_ids if node_ids is not None and len(node_ids) == len(ids) else None,
        common={"scored_at": scored_at or state.started_at,
                "model_version": str(model_version), "run_id": run_id})
    first = state.written_batches if start_batch is None else start_batch
    return batches.write_from(first, stop_after_batches=stop_after_batches, on_batch=on_batch)


@dataclass(frozen=True)
class _ScoreBatches:
    """One ``write_scores`` call's rows, cut into batches that each commit in their own
    transaction together with the run's counter (so a killed write resumes at the next)."""

    driver: Driver
    database: str | None
    run_id: str
    node: NodeType
    ids: np.ndarray
    scores: np.ndarray
    flags: np.ndarray
    batch_size: int
    bands: ScoreBands | None
    evidence: dict[str, dict[str, Any]] | None
    hints: np.ndarray | None  # the snapshot's internal node ids, row by row
    common: dict[str, Any]  # parameters every batch shares

    def write_from(self, first: int, *, stop_after_batches: int | None,
                   on_batch: Callable[[int, int], None] | None) -> int:
        """Write batches ``first``.. in order; returns how many this call wrote."""
        n_batches = (len(self.ids) + self.batch_size - 1) // self.batch_size
        query = _write_scores_query(self.node) if self.bands is None else _WRITE_SCORES_PROCEDURE
        flagged_query = _write_flagged_query(self.node)
        written = 0
        for batch in range(first, n_batches):
            if stop_after_batches is not None and written >= stop_after_batches:
                raise WriteInterrupted(f"scoring run {self.run_id}: stopped after {written} "
                                       "batches")
            self._write(batch, query, flagged_query)
            written += 1
            if on_batch is not None:
                on_batch(batch + 1, n_batches)
        return written

    def _write(self, batch: int, query: str, flagged_query: str) -> None:
        lo, hi = batch * self.batch_size, min((batch + 1) * self.batch_size, len(self.ids))
        batch_ids = [str(v) for v in self.ids[lo:hi]]
        params = _batch_params({"ids": batch_ids, **self.common}, node=self.node,
                               bands=self.bands, scores=self.scores[lo:hi],
                               flags=self.flags[lo:hi],
                               node_ids=None if self.hints is None else self.hints[lo:hi])
        with self.driver.session(database=self.database) as session:
            session.execute_write(_write_batch, batch=batch, run_id=self.run_id, query=query,
                                  params=params, flagged_query=flagged_query,
                                  flagged_rows=_flagged_rows(batch_ids, self.flags[lo:hi],
                                                             self.evidence))


def _checked_rows(driver: Driver, run_id: str, database: str | None,
                  account_ids: Sequence[str] | np.ndarray, scores: Sequence[float] | np.ndarray,
                  threshold: float, flags: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, RunState]:
    """(ids, scores, flags, the run) for ``write_scores``; rows that do not line up, or a
    run that was never started, stop it before its first batch."""
    ids = np.asarray(account_ids, dtype=object)
    values = np.asarray(scores, dtype=np.float64)
    if ids.shape != values.shape:
        raise SybilgnnError(f"write_scores: {len(ids)} account ids but {len(values)} scores")
    state = get_run(driver, run_id, database)
    if state is None:
        raise SybilgnnError(f"scoring run {run_id} does not exist; call start_run first")
    flags = values >= threshold if flags is None else np.asarray(flags, dtype=bool)
    if flags.shape != values.shape:
        raise SybilgnnError(f"write_scores: {len(flags)} flags for {len(values)} scores")
    return ids, values, flags, state


def _batch_params(common: dict[str, Any], *, node: NodeType, bands: ScoreBands | None,
                  scores: np.ndarray, flags: np.ndarray, node_ids: np.ndarray | None
                  ) -> dict[str, Any]:
    """One batch's query parameters: lists for plain Cypher; for the procedure, packed
    little-endian arrays and each row's score band."""
    if bands is None:
        return common | {"scores": scores.tolist(), "flags": flags.tolist()}
    return common | {"label": node.label, "key": node.key,  # checked by flagged_query
                     "scores": scores.astype("<f8").tobytes(),
                     "flags": flags.astype(np.uint8).tobytes(),
                     "band_labels": list(BAND_LABELS),
                     "bands": band_index(scores, bands).astype(np.uint8).tobytes(),
                     "node_ids": b"" if node_ids is None
                     else np.asarray(node_ids, dtype="<i8").tobytes()}


def _flagged_rows(batch_ids: list[str], flags: np.ndarray,
                  evidence: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The batch's flagged accounts with their evidence (empty lists where none was given)."""
    rows = []
    for k in np.flatnonzero(flags):
        account = batch_ids[k]
        ev = evidence.get(account, {}) if evidence else {}
        rows.append({"id": account, "features": list(ev.get("features", [])),
                     "relations": list(ev.get("relations", [])),
                     "neighbours": list(ev.get("neighbours", [])),
                     "summary": ev.get("summary", "")})
    return rows


def mark_label_conflicts(driver: Driver, account_ids: Sequence[str], *, node: NodeType,
                         database: str | None = None, batch_size: int = 10_000) -> int:
    """``label_conflict = true`` on exactly these nodes of ``node`` (scored above the
    threshold although labelled legitimate), removed from every other; returns the count."""
    ids = [str(a) for a in account_ids]
    label, key = quote(node.label), quote(node.key)
    with driver.session(database=database) as session:
        session.run(f"MATCH (a:{label}) WHERE a.label_conflict IS NOT NULL "
                    "REMOVE a.label_conflict").consume()
        for lo in range(0, len(ids), batch_size):
            session.run(f"UNWIND $ids AS id MATCH (a:{label} {{{key}: id}}) "
                        "SET a.label_conflict = true", ids=ids[lo:lo + batch_size]).consume()
    return len(ids)


def remove_stale_flags(driver: Driver, run_id: str, database: str | None = None, *,
                       node: NodeType) -> int:
    """Drop ``:Flagged`` and evidence from nodes of ``node`` this run did not flag; returns
    how many."""
    with driver.session(database=database) as session:
        summary = session.run(_remove_stale_query(node), run_id=run_id).consume()
    return int(summary.counters.labels_removed)


def finish_run(tx: ManagedTransaction, run_id: str, stats: dict[str, Any]) -> None:
    """Mark the run finished with its counts and timings (inside the fleets' transaction)."""
    tx.run(
        """
        MATCH (r:ScoringRun {run_id: $run_id})
        SET r += $stats, r.status = 'finished', r.finished_at = datetime()
        """,
        run_id=run_id, stats=stats).consume()
