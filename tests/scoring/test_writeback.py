"""Write-back against the real Neo4j: exact state, flag removal, resume after a kill."""

from __future__ import annotations

from typing import Any

import pytest

from sybilgnn.config import Settings
from sybilgnn.scoring import WriteInterrupted, get_run, score_snapshot
from tests.conftest import wipe_database
from tests.scoring.world import (
    ACCOUNTS,
    FLAGGED_RUN1,
    build_graph,
    build_snapshot,
    dump_state,
    scores_for,
    tiny_model,
)

pytestmark = pytest.mark.neo4j

FLAGGED_RUN2 = (FLAGGED_RUN1 - {"a00", "a10", "a11"}) | {"a04", "a13", "a14"}


def _score(driver: Any, settings: Settings, flagged: set[str], **kwargs: Any) -> Any:
    snapshot = build_snapshot()
    return score_snapshot(driver, settings, snapshot, scores_for(flagged), threshold=0.5,
                          model_version=3, model_run_id="mlflow-run-1",
                          model=tiny_model(snapshot), **kwargs)


def test_exact_writeback(world: Any, scoring_settings: Settings) -> None:
    summary = _score(world, scoring_settings, FLAGGED_RUN1)
    assert (summary.n_scored, summary.n_flagged, summary.n_fleets) == (20, 10, 2)
    assert not summary.resumed
    scores = scores_for(FLAGGED_RUN1)
    records, _, _ = world.execute_query(
        "MATCH (a:Account) RETURN a.account_id AS id, a.sybil_score AS score, "
        "a.sybil_flag AS flag, a.model_version AS version, a.run_id AS run_id, "
        "a:Flagged AS labelled, a.scored_at AS scored_at ORDER BY id")
    run, _, _ = world.execute_query("MATCH (r:ScoringRun) RETURN r")
    assert len(run) == 1
    node = run[0]["r"]
    assert [r["id"] for r in records] == ACCOUNTS
    for i, r in enumerate(records):
        assert r["score"] == pytest.approx(scores[i], abs=0)
        assert r["flag"] is (ACCOUNTS[i] in FLAGGED_RUN1)
        assert r["labelled"] is (ACCOUNTS[i] in FLAGGED_RUN1)
        assert (r["version"], r["run_id"]) == ("3", summary.run_id)
        assert r["scored_at"] == node["started_at"]
    assert node["status"] == "finished"
    assert (node["run_id"], node["model_version"], node["model_run_id"]) == (
        summary.run_id, "3", "mlflow-run-1")
    assert node["threshold"] == 0.5
    assert (node["n_scored"], node["n_flagged"], node["n_fleets"]) == (20, 10, 2)
    assert (node["n_batches"], node["written_batches"], node["batch_size"]) == (3, 3, 7)
    assert node["finished_at"] >= node["started_at"]
    for key in ("export_s", "inference_s", "write_s", "evidence_s", "fleets_s"):
        assert node[key] >= 0
    assert node["write_s"] > 0


def test_flags_removed_when_no_longer_flagged(world: Any, scoring_settings: Settings) -> None:
    # An account outside the snapshot, flagged by some older run, must lose the flag too.
    world.execute_query("CREATE (:Account:Flagged {account_id: 'zz', sybil_flag: true, "
                        "run_id: 'old', evidence_summary: 'old'})")
    _score(world, scoring_settings, FLAGGED_RUN1)
    second = _score(world, scoring_settings, FLAGGED_RUN2)
    records, _, _ = world.execute_query(
        "MATCH (a:Account) RETURN a.account_id AS id, a:Flagged AS labelled, "
        "a.sybil_flag AS flag, a.evidence_summary AS summary, a.run_id AS run_id")
    state = {r["id"]: r for r in records}
    assert {a for a, r in state.items() if r["labelled"]} == FLAGGED_RUN2
    assert {a for a, r in state.items() if r["summary"] is not None} == FLAGGED_RUN2
    for account in ("a00", "a10", "a11"):
        assert state[account]["flag"] is False and state[account]["run_id"] == second.run_id
    assert state["zz"]["flag"] is False and state["zz"]["run_id"] == "old"
    previous, _, _ = world.execute_query(
        "MATCH (a:Account) WHERE a.run_id = $run RETURN a.account_id AS id, "
        "a.prev_sybil_flag AS prev, a:ScoreHigh OR a:ScoreMedium OR a:ScoreLow AS banded",
        run=second.run_id)
    assert {r["id"] for r in previous if r["prev"]} == FLAGGED_RUN1
    assert all(r["banded"] for r in previous)


def _interrupted_then_resumed(driver: Any, settings: Settings, *, explicit: bool) -> str:
    first = _score(driver, settings, FLAGGED_RUN1)
    with pytest.raises(WriteInterrupted):
        _score(driver, settings, FLAGGED_RUN2, stop_after_batches=1)
    running, _, _ = driver.execute_query(
        "MATCH (r:ScoringRun {status: 'running'}) RETURN r.run_id AS id, "
        "r.written_batches AS written")
    assert len(running) == 1 and running[0]["written"] == 1
    run_id = running[0]["id"]
    assert run_id != first.run_id
    # Mid-run a reader sees the batch written with the unfinished run's id.
    mixed, _, _ = driver.execute_query(
        "MATCH (a:Account) RETURN count(CASE WHEN a.run_id = $r THEN 1 END) AS new", r=run_id)
    assert mixed[0]["new"] == 7
    resumed = _score(driver, settings, FLAGGED_RUN2,
                     resume_run_id=run_id if explicit else None)
    assert resumed.resumed and resumed.run_id == run_id
    state = get_run(driver, run_id)
    assert state is not None and state.status == "finished" and state.written_batches == 3
    return run_id


@pytest.mark.parametrize("explicit", [False, True], ids=["auto-resume", "resume-run-id"])
def test_resume_after_kill_equals_uninterrupted(neo4j_driver: Any, scoring_settings: Settings,
                                                explicit: bool) -> None:
    build_graph(neo4j_driver)
    run_id = _interrupted_then_resumed(neo4j_driver, scoring_settings, explicit=explicit)
    resumed_state = dump_state(neo4j_driver, run_id)

    wipe_database(neo4j_driver)
    build_graph(neo4j_driver)
    _score(neo4j_driver, scoring_settings, FLAGGED_RUN1)
    straight = _score(neo4j_driver, scoring_settings, FLAGGED_RUN2)
    assert not straight.resumed
    assert resumed_state == dump_state(neo4j_driver, straight.run_id)
    assert len(resumed_state["fleets"]) == 3  # one kept, one replaced (inactive), one new


def test_finished_run_is_not_resumed(world: Any, scoring_settings: Settings) -> None:
    first = _score(world, scoring_settings, FLAGGED_RUN1)
    second = _score(world, scoring_settings, FLAGGED_RUN1)
    assert second.run_id != first.run_id and not second.resumed
    from sybilgnn.errors import SybilgnnError
    with pytest.raises(SybilgnnError, match="finished"):
        _score(world, scoring_settings, FLAGGED_RUN1, resume_run_id=first.run_id)


def _procedures(settings: Settings, mode: str) -> Settings:
    return settings.model_copy(update={"neo4j": settings.neo4j.model_copy(
        update={"procedures": mode})})


def test_procedure_and_cypher_write_the_same_state(neo4j_driver: Any,
                                                   scoring_settings: Settings) -> None:
    """The server-side write (scores and score bands in one pass) against plain Cypher."""
    states = {}
    for mode in ("off", "required"):
        wipe_database(neo4j_driver)
        build_graph(neo4j_driver)
        _score(neo4j_driver, _procedures(scoring_settings, mode), FLAGGED_RUN1)
        second = _score(neo4j_driver, _procedures(scoring_settings, mode), FLAGGED_RUN2)
        states[mode] = dump_state(neo4j_driver, second.run_id)
    assert states["off"] == states["required"]
    bands = {a: [label for label in labels if label.startswith("Score")]
             for a, (labels, _) in states["required"]["accounts"].items()}
    assert all(len(found) == 1 for found in bands.values())
    assert {a for a, found in bands.items() if found == ["ScoreHigh"]} == FLAGGED_RUN2


def test_a_run_begun_in_cypher_resumes_through_the_procedure(neo4j_driver: Any,
                                                             scoring_settings: Settings) -> None:
    build_graph(neo4j_driver)
    _score(neo4j_driver, _procedures(scoring_settings, "off"), FLAGGED_RUN1)
    with pytest.raises(WriteInterrupted):
        _score(neo4j_driver, _procedures(scoring_settings, "off"), FLAGGED_RUN2,
               stop_after_batches=1)
    resumed = _score(neo4j_driver, _procedures(scoring_settings, "required"), FLAGGED_RUN2)
    assert resumed.resumed
    resumed_state = dump_state(neo4j_driver, resumed.run_id)
    wipe_database(neo4j_driver)
    build_graph(neo4j_driver)
    _score(neo4j_driver, _procedures(scoring_settings, "off"), FLAGGED_RUN1)
    straight = _score(neo4j_driver, _procedures(scoring_settings, "off"), FLAGGED_RUN2)
    assert resumed_state == dump_state(neo4j_driver, straight.run_id)


def test_internal_id_hints_are_checked_against_the_key(neo4j_driver: Any,
                                                       scoring_settings: Settings) -> None:
    """Export-time internal ids speed up the write only where they still hold the key."""
    import numpy as np

    def score(hints: Any) -> dict[str, Any]:
        wipe_database(neo4j_driver)
        build_graph(neo4j_driver)
        snapshot = build_snapshot()
        if hints is not None:
            real = {r["k"]: r["i"] for r in neo4j_driver.execute_query(
                "MATCH (a:Account) RETURN a.account_id AS k, id(a) AS i").records}
            ids = np.array([real[a] for a in ACCOUNTS], dtype=np.int64)
            ids[:5] = np.roll(ids[:5], 1)  # each points at another account
            ids[5:8] = -1  # unknown
            ids[8] = ids.max() + 1000  # no such node
            snapshot.neo4j_ids = {"account": ids}
        summary = score_snapshot(neo4j_driver, _procedures(scoring_settings, "required"),
                                 snapshot, scores_for(FLAGGED_RUN1), threshold=0.5,
                                 model_version=3, model=tiny_model(snapshot))
        return dump_state(neo4j_driver, summary.run_id)

    with_hints = score(hints=True)
    assert with_hints == score(hints=None)
    assert all(props["run_id"] == "this" for _, props in with_hints["accounts"].values())
