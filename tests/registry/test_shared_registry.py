"""A shared registry: retrain, promote and load through a real MLflow tracking server whose
backend store is PostgreSQL; two retrains on "two machines" cannot both promote."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.registry import (configure_tracking, lease_name, load_registered_model,
                               log_and_register, promote, promotion_lease)
from sybilgnn.training import train
from tests.mlflow_server import TrackingServer
from tests.registry.stores import make_settings

pytestmark = pytest.mark.postgres


def _on_server(tmp_path: Path, server: TrackingServer, extra: list[str]) -> Settings:
    return make_settings(tmp_path, server.url, ["registry.refresh_after_days=null", *extra])


def test_models_travel_through_the_server_not_a_shared_folder(
        tmp_path: Path, mlflow_server: TrackingServer, tiny_snapshot: Snapshot) -> None:
    settings = _on_server(tmp_path, mlflow_server, [])
    experiment = MlflowClient(settings.registry.tracking_uri).get_experiment(
        configure_tracking(settings))
    assert experiment.artifact_location.startswith("mlflow-artifacts:/")
    result = train(tiny_snapshot, settings)
    version = log_and_register(result, tiny_snapshot, settings)
    first = promote(settings, tiny_snapshot)
    assert (first.promoted, first.champion_version) == (True, version.version)
    assert not (tmp_path / "artifacts").exists()  # nothing written beside this "machine"
    served = list(mlflow_server.artifacts.rglob("model.json"))
    assert served, "the model folder is in the server's artifact store"
    loaded = load_registered_model(settings, "champion")
    expected = load_registered_model(settings, version.version)
    np.testing.assert_array_equal(loaded.predict(tiny_snapshot), expected.predict(tiny_snapshot))
    assert MlflowClient().search_registered_models(
        filter_string=f"name = '{lease_name(settings)}'") == []  # the lease went with the gate


def _retrain_process(settings: Settings, snapshot_dir: Path, lock: Path, log: Path
                     ) -> subprocess.Popen[bytes]:
    """``sybilgnn retrain`` as another machine runs it: own lock file, same registry."""
    overrides = [f"--set=registry.{k}={'null' if v is None else v}"
                 for k, v in settings.registry.model_dump().items() if k != "lock_file"]
    overrides += [f"--set=registry.lock_file={lock}", f"--set=tune.storage={settings.tune.storage}",
                  "--set=train.epochs=5", "--set=train.min_epochs=1", "--set=train.device=cpu",
                  "--set=registry.loco_tolerance=null"]
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sybilgnn", *overrides, "retrain", "--snapshot",
             str(snapshot_dir), "--n-trials", "0", "--no-baselines"],
            stdout=out, stderr=subprocess.STDOUT, env=env)


def _versions(name: str) -> list[str]:
    return sorted(v.version for v in MlflowClient().search_model_versions(f"name = '{name}'"))


def test_two_retrains_on_one_registry_cannot_both_promote(
        tmp_path: Path, mlflow_server: TrackingServer, tiny_snapshot_dir: Path) -> None:
    settings = _on_server(tmp_path, mlflow_server, [])
    configure_tracking(settings)
    name = settings.registry.model_name
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    # Both retrains reach the gate while this test holds the lease: neither may decide yet.
    with promotion_lease(settings):
        runs = [_retrain_process(settings, tiny_snapshot_dir, tmp_path / f"{m}.lock", log)
                for m, log in zip("ab", logs)]
        deadline = time.monotonic() + 300
        while len(_versions(name)) < 2 and time.monotonic() < deadline:
            assert all(run.poll() is None for run in runs), [log.read_text()[-2000:]
                                                             for log in logs]
            time.sleep(1)
        time.sleep(3)  # both are at the gate now, waiting for the lease
        assert _versions(name) == ["1", "2"]
        assert all(run.poll() is None for run in runs)
        assert "champion" not in MlflowClient().get_registered_model(name).aliases
    codes = [run.wait(300) for run in runs]
    outputs = [log.read_text() for log in logs]
    assert sorted(codes) == [0, 10], outputs  # one promoted, the other was not
    assert "Traceback" not in "".join(outputs)
    winner = "1" if "registered v1" in outputs[codes.index(0)] else "2"
    loser = "2" if winner == "1" else "1"
    assert MlflowClient().get_registered_model(name).aliases["champion"] == winner
    tags = MlflowClient().get_model_version(name, loser).tags
    # the second gate read the champion the first one left, and compared with it
    assert tags["promotion.compared_with"] == winner
    assert tags["promotion.decision"] == "rejected"
    assert MlflowClient().get_model_version(name, winner).tags["promotion.decision"] == "manual"
