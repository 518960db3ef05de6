"""The promotion gate: first model promoted, a worse challenger refused, explicit rollback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from sybilgnn.cli import main
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.measures.population import paired_metric_gain
from sybilgnn.registry import (ModelNotFoundError, evaluate_on_snapshot, load_registered_model,
                               log_and_register, promote)
from sybilgnn.registry._promote import gate_rows
from sybilgnn.training import train
from tests.registry.stores import make_settings
from tests.synthetic import planted_snapshot


@pytest.fixture(scope="module")
def gate_world() -> Snapshot:
    return planted_snapshot(accounts=4000, fake_share=0.12, fleet_size=20, seed=3)


def _aliases(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in MlflowClient().get_registered_model(name).aliases.items()}


def test_gate_refuses_a_worse_challenger_and_rollback_with_version(
        tmp_path: Path, mlflow_uri: str, gate_world: Snapshot,
        capsys: pytest.CaptureFixture[str]) -> None:
    tiny_snapshot = gate_world  # 40 fakes in the test slice: enough to measure
    tiny_snapshot_dir = gate_world.save(tmp_path / "gate-world")
    settings = make_settings(tmp_path, mlflow_uri, ["train.epochs=25", "train.patience=25"])
    name = settings.registry.model_name
    with pytest.raises(ModelNotFoundError, match="no 'challenger' alias"):
        promote(settings, tiny_snapshot)

    good = train(tiny_snapshot, settings)
    log_and_register(good, tiny_snapshot, settings)
    first = promote(settings, tiny_snapshot)
    assert (first.promoted, first.champion_version, first.previous_champion) == (True, "1", None)
    assert "no champion yet" in first.reason
    assert _aliases(name) == {"champion": "1", "challenger": "1"}

    weak_settings = make_settings(tmp_path, mlflow_uri, ["train.epochs=1", "model.hidden=4"])
    weak_settings.registry.model_name = name
    weak = train(tiny_snapshot, weak_settings)
    log_and_register(weak, tiny_snapshot, weak_settings)
    assert _aliases(name) == {"champion": "1", "challenger": "2"}

    good_test = evaluate_on_snapshot(load_registered_model(settings, 1), tiny_snapshot, "test")
    weak_test = evaluate_on_snapshot(load_registered_model(settings, 2), tiny_snapshot, "test")
    assert weak_test["auprc"] < good_test["auprc"]

    decision = promote(settings, tiny_snapshot)
    assert not decision.promoted
    assert (decision.champion_version, decision.challenger_version) == ("1", "2")
    # at the population's prevalence (train.prevalence 0.02), with intervals that do not meet
    weak_pop = evaluate_on_snapshot(load_registered_model(settings, 2), tiny_snapshot, "test",
                                    prevalence=0.02, n_boot=200)
    good_pop = evaluate_on_snapshot(load_registered_model(settings, 1), tiny_snapshot, "test",
                                    prevalence=0.02, n_boot=200)
    assert decision.challenger_score == weak_pop["auprc"]
    assert decision.champion_score == good_pop["auprc"]
    assert weak_pop["auprc_hi"] < good_pop["auprc_lo"]
    # the decision rests on the weak model's paired loss against the champion, measured on
    # the same resamples of the same rows
    weak_model, good_model = load_registered_model(settings, 2), load_registered_model(settings, 1)
    rows = gate_rows(tiny_snapshot, "test", good_model.labels_through)
    y = tiny_snapshot.data["account"].y.numpy()[rows]
    gain = paired_metric_gain(y, weak_model.predict(tiny_snapshot)[rows], weak_model.threshold,
                              good_model.predict(tiny_snapshot)[rows], good_model.threshold,
                              "auprc", prevalence=0.02, n_boot=200)
    assert gain[0] == pytest.approx(weak_pop["auprc"] - good_pop["auprc"])
    assert gain[2] < 0
    assert decision.reason == (f"worse than champion v1 beyond the noise: paired gain "
                               f"{gain[0]:.4f} [{gain[1]:.4f}, {gain[2]:.4f}] on the same rows")
    assert _aliases(name)["champion"] == "1"
    tags = MlflowClient().get_model_version(name, "2").tags
    assert tags["promotion.decision"] == "rejected"
    assert tags["promotion.compared_with"] == "1"
    assert tags["promotion.metric"] == "test_auprc"
    assert tags["promotion.snapshot_hash"] == tiny_snapshot.content_hash
    assert tags["promotion.rule"] == "interval"
    assert tags["promotion.paired_gain"] == f"{gain[0]:.4f} [{gain[1]:.4f}, {gain[2]:.4f}]"
    assert tags["promotion.champion_interval"] == (
        f"{good_pop['auprc']:.4f} [{good_pop['auprc_lo']:.4f}, {good_pop['auprc_hi']:.4f}]")

    # Same decision through the CLI: exit code 10 and no traceback.
    overrides = [f"--set=registry.{k}={v}" for k, v in settings.registry.model_dump().items()]
    with pytest.raises(SystemExit) as exited:
        main([*overrides, "promote", "--snapshot", str(tiny_snapshot_dir)])
    assert exited.value.code == 10
    assert "v2 not promoted" in capsys.readouterr().out

    # Explicit roll-forward to v2, then rollback to v1, recorded on the versions.
    main([*overrides, "promote", "--version", "2"])
    assert _aliases(name)["champion"] == "2"
    assert MlflowClient().get_model_version(name, "2").tags["promotion.decision"] == "manual"
    main([*overrides, "promote", "--version", "1"])
    assert _aliases(name)["champion"] == "1"
    v1 = MlflowClient().get_model_version(name, "1").tags
    assert v1["promotion.previous_champion"] == "2"
    assert MlflowClient().get_model_version(name, "2").tags["promotion.replaced_by"] == "1"

    # A margin the good model cannot clear keeps the champion; beating it by more promotes.
    settings.registry.promote_margin = 1.0
    settings.registry.refresh_after_days = None
    log_and_register(good, tiny_snapshot, settings)  # v3: same weights as v1
    kept = promote(settings, tiny_snapshot)
    assert not kept.promoted and kept.challenger_score == kept.champion_score
    assert "within the noise" in kept.reason
    # Overlapping intervals, but v1's labels are far behind the newest: the refresh rule
    # promotes a challenger that is not worse.
    settings.registry.promote_margin = 0.0
    settings.registry.refresh_after_days = 14
    refreshed = promote(settings, tiny_snapshot)
    assert refreshed.promoted and refreshed.champion_version == "3"
    assert "days behind the newest" in refreshed.reason
    assert MlflowClient().get_model_version(name, "3").tags["promotion.rule"] == "refresh"
    main([*overrides, "promote", "--version", "2"])
    beaten = promote(settings, tiny_snapshot)
    assert beaten.promoted and beaten.champion_version == "3" and beaten.previous_champion == "2"
    assert beaten.reason.startswith("better than champion v2 beyond the noise: paired gain")
    assert MlflowClient().get_model_version(name, "2").tags["promotion.replaced_by"] == "3"


def test_unknown_version_is_an_input_error(tmp_path: Path, mlflow_uri: str) -> None:
    settings = make_settings(tmp_path, mlflow_uri, [])
    with pytest.raises(ModelNotFoundError, match="no version '7'"):
        promote(settings, None, version=7)


def test_gate_scores_only_labels_neither_model_was_fitted_on(
        tmp_path: Path, mlflow_uri: str, gate_world: Snapshot) -> None:
    import copy

    import numpy as np

    from sybilgnn.registry import gate_rows
    from sybilgnn.training.refit import refit_on_all_labels

    tiny_snapshot = gate_world
    settings = make_settings(tmp_path, mlflow_uri, ["train.epochs=8"])
    name = settings.registry.model_name
    store = tiny_snapshot.data["account"]
    times = store.label_time.numpy()
    labelled = store.y.numpy() >= 0
    cutoff = float(np.quantile(times[labelled], 0.9))
    # Last week's graph: the newest 10% of labels had not arrived yet.
    older = copy.copy(tiny_snapshot)
    older.data = copy.copy(tiny_snapshot.data)
    older.data["account"].y = store.y.clone()
    older.data["account"].y[torch.from_numpy(times > cutoff)] = -1
    champion = refit_on_all_labels(older, settings, train(older, settings))
    assert champion.labels_through == float(times[labelled & (times <= cutoff)].max())
    log_and_register(champion, older, settings)
    promote(settings, older)
    challenger = refit_on_all_labels(tiny_snapshot, settings, train(tiny_snapshot, settings))
    log_and_register(challenger, tiny_snapshot, settings)

    decision = promote(settings, tiny_snapshot)
    rows = gate_rows(tiny_snapshot, "test", champion.labels_through)
    expected_rows = (store.test_mask.numpy() & labelled & (times > champion.labels_through))
    assert rows.tolist() == expected_rows.tolist() and 0 < rows.sum() < store.test_mask.sum() + 1
    tags = MlflowClient().get_model_version(name, "2").tags
    assert tags["promotion.rows"] == str(int(rows.sum()))
    # The challenger is judged by its time-split run, which never saw the test slice.
    selection = load_registered_model(settings, 2).selection_model()
    expected = evaluate_on_snapshot(selection, tiny_snapshot, "test", rows,
                                    prevalence=0.02)["auprc"]
    assert decision.challenger_score == expected
    assert decision.champion_score == evaluate_on_snapshot(
        load_registered_model(settings, 1), tiny_snapshot, "test", rows,
        prevalence=0.02)["auprc"]


def test_the_gate_refits_the_champions_recipe_on_held_out_campaigns(
        tmp_path: Path, mlflow_uri: str, gate_world: Snapshot) -> None:
    from sybilgnn.evaluation.loco import LocoResult, leave_one_campaign_out
    from sybilgnn.registry._promote import _loco_check

    # the planted world is 12% fake: a queue sized at the default 2% would hold a sixth of them
    settings = make_settings(tmp_path, mlflow_uri, ["train.epochs=25", "train.patience=25",
                                                    "train.prevalence=0.12"])
    log_and_register(train(gate_world, settings), gate_world, settings)
    champion = load_registered_model(settings, 1)
    recipe = champion.recipe()
    assert recipe is not None
    assert recipe["train.epochs"] == 25 and recipe["model.hidden"] == settings.model.hidden
    assert "train.prevalence" not in recipe  # how a run is measured is today's setting
    mean, lo, hi = leave_one_campaign_out(gate_world, settings, params=recipe,
                                          with_baselines=False).interval("gnn")
    assert lo <= mean <= hi and lo > 0.3
    champion_text = f"{mean:.4f} [{lo:.4f}, {hi:.4f}]"

    def loco_of(recall: float, low: float, high: float) -> LocoResult:
        return LocoResult(by_model={"gnn": {"campaign-0": {
            "recall_at_budget": recall, "recall_at_budget_lo": low,
            "recall_at_budget_hi": high}}})

    # a challenger whose recipe's interval lies below the champion recipe's keeps it
    low = loco_of(0.0, 0.0, lo - 0.06)
    kept, rule, reason, tags = _loco_check(settings, gate_world, low, champion, "1",
                                           "interval", "its 95% interval lies above")
    assert (kept, rule) == (False, "loco")
    assert f"lies below champion v1's recipe refitted on the same snapshot, {champion_text}" \
        in reason
    assert tags == {"promotion.loco_challenger": f"0.0000 [0.0000, {lo - 0.06:.4f}]",
                    "promotion.loco_champion": champion_text}
    # a lower point whose interval reaches the champion's (within the tolerance, 0.05) is
    # noise: the interval rule's decision stands
    noisy = loco_of(0.0, 0.0, lo - 0.04)
    kept, rule, reason, _ = _loco_check(settings, gate_world, noisy, champion, "1",
                                        "interval", "above")
    assert (kept, rule) == (True, "interval") and "held-out campaigns" in reason
    # a champion saved without its training settings cannot be refitted: said, not guessed
    champion.train_settings = {}
    kept, _, _, tags = _loco_check(settings, gate_world, low, champion, "1", "interval",
                                   "above")
    assert kept and "carries no training recipe" in tags["promotion.loco"]
