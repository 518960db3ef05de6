from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError
from sybilgnn.training import TrainResult, evaluate_all, load_model, predict, train
from tests.synthetic import append_fleet, planted_snapshot
from tests.training.conftest import WORLD


def test_planted_fleets_are_found_on_test_and_holdout(trained: TrainResult) -> None:
    assert trained.metrics["test"]["auprc"] >= 0.9
    assert trained.metrics["test"]["auroc"] >= 0.95
    assert trained.metrics["holdout"]["recall_at_threshold"] >= 0.8  # unseen campaign
    assert 1 <= trained.best_epoch <= trained.epochs_run <= 80
    assert [h["epoch"] for h in trained.history] == list(range(1, trained.epochs_run + 1))
    assert set(trained.history[0]) == {"epoch", "loss", "val_auprc", "seconds"}


def test_threshold_reaches_target_precision_on_validation(trained: TrainResult) -> None:
    assert trained.threshold_info["rule"].startswith("lowest with precision")
    # precision on validation reweighted to the configured prevalence (the population's)
    assert trained.threshold_info["precision"] >= 0.9
    assert 0.0 < trained.threshold < 1.0


def test_result_is_plain_data_and_reloads(trained: TrainResult, world: Snapshot) -> None:
    json.dumps(trained.model_config)
    json.dumps(trained.calibrator)
    assert trained.snapshot_hash == world.content_hash
    assert trained.feature_names == world.feature_names
    model = load_model(trained.model_config, trained.state_dict)
    probs = predict(trained, world, device="cpu")
    assert probs.shape == (world.num_accounts,)
    assert probs.min() >= 0 and probs.max() <= 1
    np.testing.assert_allclose(predict(model, world, calibrator=trained.calibrator, device="cpu",
                                       companion=trained.companion), probs, rtol=0, atol=0)


def test_prediction_survives_snapshot_save_and_load(trained: TrainResult, world: Snapshot,
                                                    tmp_path) -> None:
    world.save(tmp_path / "snap")
    again = Snapshot.load(tmp_path / "snap")
    np.testing.assert_array_equal(predict(trained, again, device="cpu"),
                                  predict(trained, world, device="cpu"))


def test_new_accounts_are_scored_inductively(trained: TrainResult) -> None:
    extended, fleet_rows, legit_rows = append_fleet(**WORLD)  # type: ignore[arg-type]
    probs = predict(trained, extended, device="cpu")
    assert extended.num_accounts == trained_accounts() + len(fleet_rows) + len(legit_rows)
    assert np.mean(probs[fleet_rows] >= trained.threshold) >= 0.8
    assert np.mean(probs[legit_rows] >= trained.threshold) <= 0.1
    assert np.median(probs[fleet_rows]) > 10 * np.median(probs[legit_rows])


def trained_accounts() -> int:
    return planted_snapshot(**WORLD).num_accounts  # type: ignore[arg-type]


def test_same_seed_same_scores_other_seed_differs(world: Snapshot, settings: Settings) -> None:
    params = {"epochs": 4, "min_epochs": 4}
    first = train(world, settings, params=params)
    second = train(world, settings, params=params)
    other = train(world, settings, params={**params, "seed": 1})
    assert [h["loss"] for h in first.history] == [h["loss"] for h in second.history]
    for key, value in first.state_dict.items():
        assert torch.equal(value, second.state_dict[key]), key
    np.testing.assert_array_equal(predict(first, world, device="cpu"),
                                  predict(second, world, device="cpu"))
    assert first.history[0]["loss"] != other.history[0]["loss"]


def test_pruning_raises_trial_pruned(world: Snapshot, settings: Settings) -> None:
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    trial = study.ask()
    seen: list[dict[str, float]] = []
    with pytest.raises(optuna.TrialPruned):
        train(world, settings, params={"hidden": 16}, trial=trial, epoch_callback=seen.append)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert len(seen) == 1
    assert study.trials[0].intermediate_values == {1: seen[0]["val_auprc"]}


def test_params_override_and_unknown_key(world: Snapshot, settings: Settings) -> None:
    result = train(world, settings, params={"hidden": 8, "layers": 1, "layer_type": "graph",
                                            "aggr": "sum", "loss": "focal", "focal_gamma": 1.0,
                                            "calibration": "isotonic", "epochs": 3})
    assert result.model_config["model"]["hidden"] == 8
    assert result.model_config["model"]["layer_type"] == "graph"
    assert result.calibrator["method"] == "isotonic"
    assert result.epochs_run == 3
    with pytest.raises(InputError, match="unknown key 'hiden'"):
        train(world, settings, params={"hiden": 8})
    with pytest.raises(InputError, match="invalid value"):
        train(world, settings, params={"layers": 0})


def test_missing_validation_fakes_is_a_clear_error(world: Snapshot, settings: Settings) -> None:
    broken = planted_snapshot(**WORLD)  # type: ignore[arg-type]
    acc = broken.data["account"]
    acc.val_mask = acc.val_mask & (acc.y == 0)
    with pytest.raises(InputError, match="val split needs labelled fake"):
        train(broken, settings)


def test_neighbor_sampler_needs_a_backend(world: Snapshot, settings: Settings) -> None:
    from sybilgnn.models import has_neighbor_sampler

    if has_neighbor_sampler():
        pytest.skip("a sampler backend is installed here")
    with pytest.raises(InputError, match="pyg-lib or torch-sparse"):
        train(world, settings, params={"sampler": "neighbor", "epochs": 1})


def test_gnn_beats_feature_baseline_in_one_table(trained: TrainResult, world: Snapshot,
                                                 settings: Settings) -> None:
    report = evaluate_all(world, settings, trained)
    results = report["results"]
    assert set(results) == {"gnn", "hgb_features", "hgb_neighbours"}
    assert results["gnn"]["test"]["auprc"] > results["hgb_features"]["test"]["auprc"] + 0.2
    for name in results:
        assert set(results[name]) == {"val", "test", "holdout"}
    rows = [line for line in report["table"].splitlines() if line.startswith("| ")][1:]
    assert [r.split("|")[1:3] for r in rows] == [
        [f" {m} ", f" {s} "] for m in ("gnn", "hgb_features", "hgb_neighbours")
        for s in ("test", "holdout")]


def test_fleet_weights_give_every_labelled_fleet_one_share() -> None:
    import numpy as np

    from sybilgnn.training.loop import fleet_weights

    y = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1])
    fleets = np.array([0, 0, 0, 0, 1, 1, -1, 3, -1])
    weight = fleet_weights(y, fleets)
    # fleet 0 (4 fakes) and fleet 1 (2 fakes) weigh alike in total; the unfleeted fake 1
    # before the fakes' mean is rescaled to 1; legitimate accounts stay at 1
    raw = np.array([0.75, 0.75, 0.75, 0.75, 1.5, 1.5, 1.0])
    np.testing.assert_allclose(weight[y == 1], raw / raw.mean())
    np.testing.assert_allclose(weight[y == 0], [1.0, 1.0])
    assert weight[:4].sum() == pytest.approx(weight[4:6].sum())
    np.testing.assert_allclose(fleet_weights(y, None), np.ones(9))


def test_balance_fleets_reweights_fleet_members_only(world: Snapshot, settings: Settings) -> None:
    import copy

    params = {"epochs": 2, "min_epochs": 2}
    plain = train(world, settings, params=params)
    balanced = train(world, settings, params={**params, "balance_fleets": True})
    # the planted fleets' labelled members differ in number: their weights move the loss
    assert balanced.history[0]["loss"] != pytest.approx(plain.history[0]["loss"], rel=1e-6)
    fleetless = copy.copy(world)
    fleetless.data = copy.copy(world.data)
    fleetless.data["account"].fleet = torch.full_like(world.data["account"].fleet, -1)
    # no labelled fleet: every weight is 1 and the run is the plain one, loss for loss
    unweighted = train(fleetless, settings, params={**params, "balance_fleets": True})
    assert [h["loss"] for h in unweighted.history] == [h["loss"] for h in plain.history]
