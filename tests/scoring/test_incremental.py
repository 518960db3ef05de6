"""Incremental scoring against the real Neo4j: after a delivery, scoring only what the
delivery can have changed writes the same scores, flags and fleets as a full run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sybilgnn.config import Settings
from sybilgnn.export import export_snapshot
from sybilgnn.ingest.pipeline import ingest_directory
from sybilgnn.registry import log_and_register, set_champion
from sybilgnn.scoring import run_scoring
from sybilgnn.scoring.incremental_run import FullRunNeeded, score_changed
from sybilgnn.simulate import simulate_deliveries
from sybilgnn.training import train
from tests.conftest import isolated_settings, label_from_truth

pytestmark = pytest.mark.neo4j


def _settings(base: Settings, tmp_path: Path) -> Settings:
    settings = isolated_settings(base, tmp_path, "incremental-test")
    settings.scoring.batch_size = 200
    settings.scoring.min_fleet_size = 3
    settings.ingest.mode = "transactional"
    settings.split.holdout_property = None
    settings.train.epochs = 15
    settings.train.min_epochs = 5
    settings.train.leave_one_campaign_out = False
    settings.model.hidden = 16
    return settings


def _graph_state(driver: Any) -> tuple[dict[str, float], set[str], set[frozenset[str]], dict]:
    """(score per account, flagged accounts, fleets as member sets, fleet id -> members)."""
    records, _, _ = driver.execute_query(
        "MATCH (a:Account) OPTIONAL MATCH (a)-[:MEMBER_OF]->(f:Fleet) "
        "RETURN a.account_id AS id, a.sybil_score AS score, a.sybil_flag AS flag, "
        "a:Flagged AS labelled, f.fleet_id AS fleet, f.size AS size, "
        "a.evidence_summary AS summary")
    scores = {r["id"]: r["score"] for r in records}
    flagged = {r["id"] for r in records if r["flag"]}
    assert flagged == {r["id"] for r in records if r["labelled"]}  # label and flag agree
    for r in records:  # every flag's summary names the fleet it is in now, or none
        if r["flag"]:
            mention = r["summary"].partition("; fleet ")[2]
            assert mention == (f"{r['fleet']} ({r['size']} accounts)" if r["fleet"] else "")
    fleets: dict[str, set[str]] = {}
    for r in records:
        if r["fleet"] is not None:
            fleets.setdefault(r["fleet"], set()).add(r["id"])
    return scores, flagged, {frozenset(m) for m in fleets.values()}, fleets


def test_incremental_run_equals_a_full_run_after_a_delivery(
        neo4j_driver: Any, neo4j_settings: Settings, tmp_path: Path) -> None:
    settings = _settings(neo4j_settings, tmp_path)
    simulate_deliveries(tmp_path / "deliveries", accounts=700, scenario="medium", seed=11,
                        days=1, events_scale=0.1)
    ingest_directory(settings, tmp_path / "deliveries" / "day-000", driver=neo4j_driver)
    day0 = pd.read_parquet(tmp_path / "deliveries" / "day-000" / "accounts.parquet")
    truth = pd.read_parquet(tmp_path / "deliveries" / "truth.parquet")
    label_from_truth(neo4j_driver, truth[truth["account_id"].isin(day0["account_id"])])

    snapshot = export_snapshot(settings, driver=neo4j_driver)
    result = train(snapshot, settings)
    version = log_and_register(result, snapshot, settings, run_name="incremental-test")
    set_champion(settings, version.version, reason="incremental test")
    with pytest.raises(FullRunNeeded, match="no finished scoring run yet"):
        score_changed(settings, driver=neo4j_driver)
    first = run_scoring(settings, driver=neo4j_driver)

    delivery = ingest_directory(settings, tmp_path / "deliveries" / "day-001",
                                driver=neo4j_driver)
    assert delivery.nodes["Account"] > 0
    changed = score_changed(settings, driver=neo4j_driver)
    scores, flagged, fleets, by_id = _graph_state(neo4j_driver)

    total = len(scores)
    assert changed.kind == "incremental" and changed.base_run_id == first.run_id
    assert changed.n_seeds > 0
    # the latency budget: the one delivery this run is the first to score
    assert (changed.deliveries, first.deliveries) == (1, 1)
    assert 0 < changed.ingest_s <= changed.delivery_to_flag_s
    # not vacuous: the delivery's accounts were scored, and some accounts were out of reach
    assert all(s is not None for s in scores.values())
    assert delivery.nodes["Account"] <= changed.n_scored < total
    assert changed.n_written <= changed.n_scored
    assert changed.n_flagged == len(flagged) and changed.n_fleets == len(fleets)

    full = run_scoring(settings, driver=neo4j_driver)
    full_scores, full_flagged, full_fleets, full_by_id = _graph_state(neo4j_driver)
    assert full.n_scored == total and full.deliveries == 0  # the incremental run saw it
    ids = sorted(scores)
    np.testing.assert_allclose([scores[i] for i in ids], [full_scores[i] for i in ids],
                               rtol=0, atol=1e-5)
    assert flagged == full_flagged and len(flagged) > 0
    assert fleets == full_fleets and len(fleets) > 0
    assert set(by_id) == set(full_by_id)  # the same fleet ids too

    runs, _, _ = neo4j_driver.execute_query(
        "MATCH (r:ScoringRun) RETURN r.run_id AS id, r.kind AS kind, r.base_run_id AS base, "
        "r.status AS status, r.n_scored AS n ORDER BY r.started_at")
    assert [(r["kind"], r["base"], r["status"]) for r in runs] == [
        ("full", None, "finished"), ("incremental", first.run_id, "finished"),
        ("full", None, "finished")]

    # Nothing delivered since the last run: nothing to score, and nothing moves.
    idle = score_changed(settings, driver=neo4j_driver)
    assert (idle.n_seeds, idle.n_scored, idle.n_written) == (0, 0, 0)
    assert _graph_state(neo4j_driver)[1:3] == (full_flagged, full_fleets)
