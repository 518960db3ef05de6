"""A logged model reloads (without unpickling) to exactly the scores it had in memory."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import SybilgnnError
from sybilgnn.registry import (ModelNotFoundError, load_model_dir, load_registered_model,
                               log_and_register, save_model_dir)
from sybilgnn.training import predict, train
from sybilgnn.training.baselines import run_baselines
from tests.registry.stores import make_settings


def test_log_register_and_reload_gives_identical_scores(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot, tiny_snapshot_dir: Path) -> None:
    settings = make_settings(tmp_path, mlflow_uri, [])
    result = train(tiny_snapshot, settings)
    before = predict(result, tiny_snapshot)
    baselines = run_baselines(tiny_snapshot, settings)

    registered = log_and_register(result, tiny_snapshot, settings, baselines=baselines)
    assert registered.version == "1"

    loaded = load_registered_model(settings, "challenger")
    assert (loaded.version, loaded.run_id) == ("1", registered.run_id)
    assert loaded.threshold == result.threshold
    np.testing.assert_array_equal(loaded.predict(tiny_snapshot), before)
    np.testing.assert_array_equal(load_registered_model(settings, 1).predict(tiny_snapshot), before)

    client = MlflowClient()
    run = client.get_run(registered.run_id)
    assert run.data.params["snapshot_hash"] == tiny_snapshot.content_hash
    # The tiny world's test slice has 9 fakes: AUPRC is not measurable (NaN, not logged);
    # the counts are logged for the GNN and the baselines alike.
    assert result.metrics["test"]["n_positive"] == 9 and "test_auprc" not in run.data.metrics
    assert run.data.metrics["test_n_positive"] == 9
    assert run.data.metrics["baseline_hgb_features_test_n"] == result.metrics["test"]["n"]
    val_curve = client.get_metric_history(registered.run_id, "epoch_val_auprc")
    assert [m.step for m in val_curve] == [h["epoch"] for h in result.history]
    artifacts = {f.path for f in client.list_artifacts(registered.run_id)}
    assert {"config.yaml", "baselines.md", "plots"} <= artifacts
    plots = {f.path for f in client.list_artifacts(registered.run_id, "plots")}
    assert {"plots/pr_curve_test.png", "plots/score_histogram_test.png"} <= plots
    table = Path(mlflow.artifacts.download_artifacts(run_id=registered.run_id,
                                                     artifact_path="baselines.md",
                                                     dst_path=str(tmp_path))).read_text()
    assert "| hgb_neighbours | test |" in table and "| gnn | test |" in table

    # The pyfunc flavour (for MLflow tooling) scores a saved snapshot folder the same way.
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.registry.model_name}@challenger")
    out = pyfunc.predict(pd.DataFrame({"snapshot_dir": [str(tiny_snapshot_dir)]}))
    assert list(out["account_id"]) == [str(a) for a in tiny_snapshot.id_maps["account"]]
    np.testing.assert_array_equal(out["score"].to_numpy(), before)
    assert pyfunc.metadata.get_input_schema().input_names() == ["snapshot_dir"]


def test_model_folder_is_json_plus_tensors_only(tmp_path: Path, mlflow_uri: str,
                                               tiny_snapshot: Snapshot) -> None:
    settings = make_settings(tmp_path, mlflow_uri, ["train.epochs=2"])
    result = train(tiny_snapshot, settings)
    folder = save_model_dir(result, tmp_path / "model")
    # the tree companion (model.companion: trees, the default) travels as tensors too
    assert sorted(p.name for p in folder.iterdir()) == ["companion.pt", "model.json",
                                                        "weights.pt"]
    meta = json.loads((folder / "model.json").read_text())
    assert meta["id_map_schema"] == {"account": "account_id", "ip": "ip_id", "payment": "pm_id"}
    assert meta["feature_names"] == tiny_snapshot.feature_names
    assert meta["preprocessor"]["fitted_on"] == tiny_snapshot.content_hash
    np.testing.assert_array_equal(load_model_dir(folder).predict(tiny_snapshot),
                                  predict(result, tiny_snapshot))

    renamed = Snapshot(tiny_snapshot.data, tiny_snapshot.id_maps,
                       {**tiny_snapshot.feature_names,
                        "account": ["other"] * len(tiny_snapshot.feature_names["account"])},
                       tiny_snapshot.feature_stats, "renamed")
    with pytest.raises(SybilgnnError, match=r"account features \['f_0', .*\] are missing, "
                                            "and the model reads them"):
        load_model_dir(folder).predict(renamed)


def test_unknown_alias_says_what_to_do(tmp_path: Path, mlflow_uri: str) -> None:
    settings = make_settings(tmp_path, mlflow_uri, [])
    with pytest.raises(ModelNotFoundError, match="no alias 'champion'.*sybilgnn train"):
        load_registered_model(settings, "champion")
