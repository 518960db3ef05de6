"""The tree companion: trees saved as arrays score exactly as scikit-learn did, the fused
logit ranks by the higher of the two models, and a refitted model with a companion reloads
from tensors to the scores it had in memory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError
from sybilgnn.models.trees import TreeEnsemble
from sybilgnn.registry import load_model_dir, save_model_dir
from sybilgnn.training import predict, train
from sybilgnn.training.companion import (CompanionFeatures, TreeCompanion, companion_features,
                                         fit_companion, fuse_logits)
from sybilgnn.training.neighbours import neighbour_features
from sybilgnn.training.predict import load_model, predict_logits
from sybilgnn.training.refit import refit_on_all_labels


def test_tree_arrays_score_exactly_as_scikit_learn_and_survive_tensors() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3000, 6))
    features[rng.random(features.shape) < 0.1] = np.nan  # missing values take a side
    y = (np.nan_to_num(features[:, 0]) + np.nan_to_num(features[:, 3]) ** 2 > 1).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(features, y)
    trees = TreeEnsemble.from_sklearn(model)
    np.testing.assert_allclose(trees.decision(features), model.decision_function(features),
                               rtol=0, atol=1e-12)
    again = TreeEnsemble.from_tensors(trees.tensors())
    np.testing.assert_array_equal(again.decision(features), trees.decision(features))
    with pytest.raises(ValueError, match="the trees read 6 features"):
        trees.decision(features[:, :5])


def test_fused_logit_is_the_higher_score_and_ranks_by_the_higher_percentile() -> None:
    np.testing.assert_allclose(fuse_logits(np.array([2.0, -1.0, 0.5]), np.array([1.0, 3.0, 0.5])),
                               [2.0 + 1e-6, 3.0 - 1e-6, 0.5 + 0.5e-6], rtol=0, atol=1e-15)
    # a tie in the higher score (both clamped at the top) goes to the higher lower score
    tied = fuse_logits(np.array([5.0, 5.0]), np.array([0.0, 4.0]))
    assert tied[1] > tied[0]
    rng = np.random.default_rng(1)
    gnn, trees = rng.normal(size=500), rng.normal(size=500) * 4 + 2
    # the trees on the GNN's scale (by quantile): the higher score orders accounts exactly
    # as the higher of the two percentile ranks
    mapped = np.interp(trees, np.sort(trees), np.sort(gnn))
    top = np.maximum(rankdata(gnn), rankdata(trees))
    assert (np.diff(top[np.argsort(np.maximum(gnn, mapped), kind="stable")]) >= 0).all()


def test_the_trees_lift_an_account_at_most_max_lift_logits_above_the_gnn() -> None:
    gnn = np.array([-6.0, 1.0, 2.0, 0.0])
    trees = np.array([4.0, 2.5, 1.0, 9.0])
    # uncapped: the higher score; capped at 3: the trees raise -6 to -3 and 0 to 3 only
    np.testing.assert_allclose(fuse_logits(gnn, trees), [4.0 - 6e-6, 2.5 + 1e-6, 2.0 + 1e-6,
                                                         9.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fuse_logits(gnn, trees, 3.0),
                               [-3.0 - 6e-6, 2.5 + 1e-6, 2.0 + 1e-6, 3.0], rtol=0, atol=1e-12)
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(400, 2))
    y = (matrix[:, 0] > 0.8).astype(np.int64)
    features = CompanionFeatures(matrix, ("x0", "x1"))
    gnn_disagrees = -3.0 * matrix[:, 0]  # the GNN ranks lowest what the trees rank highest
    companion, fused = fit_companion(features, gnn_disagrees, y, np.arange(400), 0, 3.0)
    assert companion is not None and companion.max_lift == 3.0
    mapped = companion.on_gnn_scale(features)
    assert (mapped > gnn_disagrees + 3.0).sum() > 50  # the cap binds on many accounts
    assert (fused <= np.maximum(gnn_disagrees, np.minimum(mapped, gnn_disagrees + 3.0))
            + 1e-5).all()
    np.testing.assert_array_equal(companion.lifted(gnn_disagrees, features) > gnn_disagrees,
                                  mapped > gnn_disagrees)
    # the cap travels with the model; a model saved without one fuses uncapped
    assert TreeCompanion.from_tensors(companion.tensors()).max_lift == 3.0
    older = {k: v for k, v in companion.tensors().items() if k != "max_lift"}
    assert TreeCompanion.from_tensors(older).max_lift is None


def test_companion_is_fitted_on_the_train_slice_and_fused_into_the_logits(
        world: Snapshot, settings: Settings) -> None:
    params = {"epochs": 6, "min_epochs": 6, "companion": "trees"}
    result = train(world, settings, params=params)
    assert isinstance(result.companion, TreeCompanion)
    assert "companion" in result.fitted_on
    encoded = result.preprocessor.transform(world)
    gnn = predict_logits(load_model(result.model_config, result.state_dict), encoded, "cpu")
    fused = predict_logits(load_model(result.model_config, result.state_dict), encoded, "cpu",
                           companion=result.companion)
    labels = world.data["account"]
    train_rows = np.flatnonzero(labels.train_mask.numpy() & (labels.y.numpy() >= 0))
    expected_trees = TreeEnsemble.fit(neighbour_features(encoded)[0], labels.y.numpy(),
                                      train_rows, settings.train.seed).decision(
        neighbour_features(encoded)[0])
    np.testing.assert_allclose(result.companion.trees.decision(neighbour_features(encoded)[0]),
                               expected_trees)
    mapped = np.interp(result.companion.trees.decision(neighbour_features(encoded)[0]),
                       result.companion.knots_x, result.companion.knots_y)
    assert result.companion.max_lift == settings.model.companion_max_lift == 6.0
    np.testing.assert_allclose(fused, fuse_logits(gnn, mapped, 6.0))
    assert (mapped > gnn).any() and (mapped < gnn).any()
    without = replace(result, companion=None)
    assert not np.allclose(predict(without, world, device="cpu"), predict(result, world,
                                                                          device="cpu"))


def test_refitted_companion_model_reloads_to_identical_scores(
        tmp_path: Path, world: Snapshot, settings: Settings) -> None:
    params = {"epochs": 4, "min_epochs": 4, "companion": "trees", "crossfit_folds": 2}
    selection = train(world, settings, params=params)
    refit = refit_on_all_labels(world, settings, selection, params=params)
    assert refit.companion is not None and refit.companion is not selection.companion
    assert "companion" in refit.fitted_on
    folder = save_model_dir(refit, tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == [
        "companion.pt", "model.json", "selection_companion.pt", "selection_weights.pt",
        "weights.pt"]
    loaded = load_model_dir(folder)
    np.testing.assert_array_equal(loaded.predict(world), predict(refit, world, device="cpu"))
    # the time-split run comes back with its own companion (calibrated by the refit's
    # cross-fitted calibration, which is on that run's logit scale)
    np.testing.assert_array_equal(loaded.selection_model().predict(world), predict(
        selection, world, device="cpu", calibrator=refit.calibrator["then"]))


def test_companion_reads_its_own_columns_by_name_when_the_schema_grows_or_shrinks() -> None:
    rng = np.random.default_rng(2)
    matrix = rng.normal(size=(600, 3))
    y = (matrix[:, 0] + matrix[:, 2] > 0.5).astype(np.int64)
    features = CompanionFeatures(matrix, ("x0", "used_ip:deg_0", "paid_with:max_0"))
    companion, fused = fit_companion(features, rng.normal(size=600), y, np.arange(400), 0)
    assert companion is not None
    again = TreeCompanion.from_tensors(companion.tensors())
    assert again.columns == ("x0", "used_ip:deg_0", "paid_with:max_0")
    # a relation added to the schema since training, columns in another order: same scores
    grown = CompanionFeatures(np.column_stack([matrix[:, 2], rng.normal(size=600), matrix[:, :2]]),
                              ("paid_with:max_0", "coworked:deg_0", "x0", "used_ip:deg_0"))
    np.testing.assert_array_equal(again.on_gnn_scale(grown), companion.on_gnn_scale(features))
    shrunk = CompanionFeatures(matrix[:, :2], ("x0", "used_ip:deg_0"))
    with pytest.raises(InputError, match=r"relations \['paid_with'\].*export.relationships"):
        again.on_gnn_scale(shrunk)
    # a model saved before the columns were named needs the same count, and says why
    unnamed = replace(companion, columns=None)
    with pytest.raises(InputError, match="reads 3 columns, this snapshot gives 4"):
        unnamed.on_gnn_scale(grown)


def test_companion_feature_names_name_the_snapshot_relations(world: Snapshot) -> None:
    features = companion_features(world)
    assert features is not None
    assert features.matrix.shape[1] == len(features.names)
    relations = {name.split(":")[0] for name in features.names if ":" in name}
    assert relations == {et[1] for et in world.data.edge_types if et[2] == "account"}
