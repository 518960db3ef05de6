"""End to end: simulate -> ingest -> export -> train -> register (sqlite MLflow) -> score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sybilgnn.config import Settings
from tests.conftest import label_from_truth

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

simulate = pytest.importorskip("sybilgnn.simulate")
ingest = pytest.importorskip("sybilgnn.ingest.pipeline")
export = pytest.importorskip("sybilgnn.export")
training = pytest.importorskip("sybilgnn.training")
registry = pytest.importorskip("sybilgnn.registry")


def test_run_scoring_end_to_end(neo4j_driver: Any, neo4j_settings: Settings,
                                tmp_path: Path) -> None:
    from sybilgnn.scoring import run_scoring

    settings = neo4j_settings.model_copy(deep=True)
    settings.registry.tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings.registry.artifact_root = tmp_path / "artifacts"
    settings.export.cache_dir = tmp_path / "snapshots"
    settings.scoring.report_dir = tmp_path / "reports"
    settings.scoring.batch_size = 100
    settings.train.epochs = 15
    settings.train.min_epochs = 5
    settings.model.hidden = 16

    settings.split.holdout_property = None
    simulate.simulate_platform(tmp_path / "events", accounts=600, scenario="medium", seed=3,
                               events_scale=0.1)
    ingest.ingest_directory(settings, tmp_path / "events", driver=neo4j_driver)
    label_from_truth(neo4j_driver, pd.read_parquet(tmp_path / "events" / "ground_truth.parquet"))
    snapshot = export.export_snapshot(settings, driver=neo4j_driver)
    result = training.train(snapshot, settings)
    version = registry.log_and_register(result, snapshot, settings, run_name="train-e2e")
    registry.set_champion(settings, version.version, reason="e2e test")

    summary = run_scoring(settings, driver=neo4j_driver)

    expected = training.predict(result, snapshot)
    flagged_expected = int((expected >= result.threshold).sum())
    assert summary.model_version == str(version.version)
    assert summary.n_scored == snapshot.num_accounts
    assert summary.n_flagged == flagged_expected
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (a:Account) RETURN a.account_id AS id, a.sybil_score AS score, "
        "a.run_id AS run_id, a:Flagged AS flagged, a.evidence_summary AS summary")
    by_id = {r["id"]: r for r in records}
    ids = snapshot.id_maps["account"]
    got = np.array([by_id[str(a)]["score"] for a in ids])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert {r["run_id"] for r in records} == {summary.run_id}
    assert sum(r["flagged"] for r in records) == flagged_expected
    assert all(r["summary"] for r in records if r["flagged"])
    run, _, _ = neo4j_driver.execute_query(
        "MATCH (r:ScoringRun {run_id: $id}) RETURN r.status AS status, r.model_run_id AS mr, "
        "r.n_fleets AS fleets", id=summary.run_id)
    assert run[0]["status"] == "finished" and run[0]["mr"] == version.run_id
    fleets, _, _ = neo4j_driver.execute_query(
        "MATCH (f:Fleet {active: true})<-[:MEMBER_OF]-(a:Account:Flagged) "
        "RETURN count(DISTINCT f) AS n")
    assert fleets[0]["n"] == run[0]["fleets"] == summary.n_fleets
