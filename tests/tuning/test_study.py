"""The Optuna study: nested MLflow runs per trial, pruning figures, shared and resumed studies."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.registry import configure_tracking
from sybilgnn.tuning import epochs_of, load_search_space, run_study
from tests.registry.stores import make_settings

REPO = Path(__file__).resolve().parents[2]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _small_space(tmp_path: Path) -> str:
    file = tmp_path / "space.yaml"
    file.write_text("hidden: {type: int, low: 4, high: 16, step: 4}\n"
                    "lr: {type: log, low: 1.0e-3, high: 5.0e-2}\n"
                    "layer_type: {type: categorical, choices: [sage, graph]}\n")
    return f"tune.search_space={file}"


def _trial_runs(settings: Settings, parent: str) -> list:
    experiment_id = configure_tracking(settings)
    return MlflowClient().search_runs([experiment_id],
                                      filter_string=f"tags.mlflow.parentRunId = '{parent}'")


def test_trials_are_nested_runs_and_pruning_is_counted(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot) -> None:
    settings = make_settings(tmp_path, mlflow_uri, [
        _small_space(tmp_path), "tune.trial_epochs=6", "tune.pruner=median",
        "tune.pruner_startup_trials=1", "tune.pruner_warmup_epochs=1"])
    result = run_study(tiny_snapshot, settings, n_trials=4)
    study = optuna.load_study(study_name=settings.tune.study_name, storage=settings.tune.storage)
    finished = study.get_trials(states=FINISHED)
    assert len(finished) == 4 and result.finished_since_start == 4
    assert sorted(result.best_params) == ["hidden", "layer_type", "lr"]
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    assert result.best_value == max(t.value for t in complete)

    runs = {r.data.tags["optuna.trial"]: r for r in _trial_runs(settings, result.parent_run_id)}
    assert sorted(runs) == ["0", "1", "2", "3"]
    client = MlflowClient()
    for trial in finished:
        run = runs[str(trial.number)]
        assert run.data.params["hidden"] == str(trial.params["hidden"])
        assert run.info.status == ("FINISHED" if trial.state == TrialState.COMPLETE else "KILLED")
        curve = client.get_metric_history(run.info.run_id, "epoch_val_auprc")
        assert {m.step: m.value for m in curve} == trial.intermediate_values
        assert epochs_of(trial) == len(trial.intermediate_values)

    pruning = result.pruning
    assert (pruning.trials, pruning.max_epochs, pruning.epochs_budget) == (4, 6, 24)
    assert pruning.epochs_run == sum(len(t.intermediate_values) for t in finished)
    assert pruning.pruned == sum(t.state == TrialState.PRUNED for t in finished)
    assert pruning.epochs_saved_by_pruning == sum(
        6 - len(t.intermediate_values) for t in finished if t.state == TrialState.PRUNED)

    # The same budget as a study total: already met, so nothing more runs.
    again = run_study(tiny_snapshot, settings, n_trials=4, until_total=True)
    assert again.finished_since_start == 0 and again.parent_run_id == result.parent_run_id


def _worker(snapshot_dir: Path, n_trials: int, mode: str, overrides: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.tuning.worker", str(snapshot_dir), str(n_trials), mode,
         json.dumps(overrides)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _overrides(settings: Settings, extra: list[str]) -> list[str]:
    reg, tune = settings.registry, settings.tune
    return [f"registry.tracking_uri={reg.tracking_uri}", f"registry.artifact_root={reg.artifact_root}",
            f"registry.experiment={reg.experiment}", f"tune.storage={tune.storage}",
            f"tune.search_space={tune.search_space}", "tune.heartbeat_interval_s=1",
            "tune.grace_period_s=2", "train.min_epochs=1", "train.device=cpu", *extra]


@pytest.mark.slow
def test_two_worker_processes_share_one_study(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot_dir: Path) -> None:
    settings = make_settings(tmp_path, mlflow_uri, [_small_space(tmp_path)])
    common = _overrides(settings, ["tune.trial_epochs=3", "tune.pruner=none"])
    workers = [_worker(tiny_snapshot_dir, n, "each", [*common, f"tune.seed={seed}"])
               for n, seed in ((2, 1), (3, 2))]
    for proc in workers:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name=settings.tune.study_name, storage=settings.tune.storage)
    trials = study.get_trials()
    assert len(trials) == 5 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    parent = study.user_attrs["mlflow_parent_run_id"]
    assert len(_trial_runs(settings, parent)) == 5


@pytest.mark.slow
def test_killed_worker_is_failed_and_the_study_resumes_to_its_budget(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot, tiny_snapshot_dir: Path) -> None:
    settings = make_settings(tmp_path, mlflow_uri, [_small_space(tmp_path), "tune.pruner=none"])
    long_trials = _overrides(settings, ["tune.trial_epochs=400", "train.patience=400",
                                        "tune.pruner=none"])
    proc = _worker(tiny_snapshot_dir, 3, "total", long_trials)
    storage = settings.tune.storage
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name=settings.tune.study_name, storage=storage)
        except KeyError:
            continue
        running = study.get_trials(states=(TrialState.RUNNING,))
        if running and len(running[0].intermediate_values) >= 2:
            victim = running[0]
    assert victim is not None, proc.communicate()[1][-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)

    study = optuna.load_study(study_name=settings.tune.study_name, storage=storage)
    assert study.get_trials()[victim.number].state == TrialState.RUNNING  # left behind

    short = make_settings(tmp_path, mlflow_uri, [])
    short = short.model_copy(update={"registry": settings.registry, "tune": settings.tune.model_copy(
        update={"trial_epochs": 3, "search_space": settings.tune.search_space})})
    result = run_study(tiny_snapshot, short, n_trials=3, until_total=True)

    study = optuna.load_study(study_name=settings.tune.study_name, storage=storage)
    trials = study.get_trials()
    assert result.revived == [victim.number]
    assert trials[victim.number].state == TrialState.FAIL
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len([t for t in trials if t.state in FINISHED]) == 3
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retried) == 1 and retried[0].params == victim.params
    dead_run = MlflowClient().get_run(victim.user_attrs["mlflow_run_id"])
    assert dead_run.info.status == "FAILED" and dead_run.data.tags["failure"] == "worker died"


def test_a_new_study_starts_with_the_configuration_and_reports_the_spread(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot) -> None:
    space = tmp_path / "with-defaults.yaml"
    space.write_text("hidden: {type: int, low: 16, high: 64, step: 16}\n"
                     "lr: {type: log, low: 1.0e-3, high: 5.0e-2}\n"
                     "layer_type: {type: categorical, choices: [sage, graph]}\n")
    settings = make_settings(tmp_path, mlflow_uri, [
        f"tune.search_space={space}", "tune.trial_epochs=4", "tune.pruner=none"])
    result = run_study(tiny_snapshot, settings, n_trials=3)
    study = optuna.load_study(study_name=settings.tune.study_name, storage=settings.tune.storage)
    first = study.trials[0]
    assert first.params == {"hidden": 64, "lr": 0.01, "layer_type": "sage"}
    assert first.user_attrs["default_config"] is True
    assert set(result.spread) == {"best", "median", "default"}
    assert result.spread["default"].number == 0
    for score in result.spread.values():
        assert score.lo <= score.value <= score.hi
    # the objective is the negative validation log loss, so the best is the largest
    assert result.spread["best"].value == max(t.value for t in study.trials)
    assert result.best_separated in (True, False)
    assert "default trial 0:" in result.describe_spread()
    # every trial kept its validation scores, so the best is compared with the others on
    # the same rows; all trials use the configured prevalence, so the paired gain is the
    # difference of their objectives
    best = result.spread["best"]
    for name in ("default", "median"):
        if result.spread[name].number == best.number:
            assert name not in result.margins
            continue
        margin = result.margins[name]
        assert margin.other == result.spread[name].number
        assert margin.gain == pytest.approx(best.value - result.spread[name].value, abs=1e-6)
        assert margin.lo <= margin.gain <= margin.hi
        assert result.beats(name) is (margin.lo > 0)
        assert f"best vs {name}: +{margin.gain:.4f}" in result.describe_spread()


def test_the_loco_objective_scores_trials_on_campaigns_held_out_in_turn(
        tmp_path: Path, mlflow_uri: str) -> None:
    from sybilgnn.evaluation.loco import leave_one_campaign_out
    from tests.synthetic import planted_snapshot

    tiny_snapshot = planted_snapshot(accounts=2000, fake_share=0.12, fleet_size=20, seed=5)
    settings = make_settings(tmp_path, mlflow_uri, [
        _small_space(tmp_path), "tune.trial_epochs=4", "tune.pruner=none",
        "tune.objective=loco"])
    result = run_study(tiny_snapshot, settings, n_trials=1)
    study = optuna.load_study(study_name=settings.tune.study_name, storage=settings.tune.storage)
    (trial,) = study.trials
    per_trial = settings.model_copy(update={"train": settings.train.model_copy(
        update={"epochs": 4})})
    expected = leave_one_campaign_out(tiny_snapshot, per_trial, params=trial.params,
                                      with_baselines=False).mean("gnn")
    assert trial.value == pytest.approx(expected)
    assert trial.user_attrs["objective_lo"] <= trial.value <= trial.user_attrs["objective_hi"]
    assert "mean recall within the expected-fakes queue over labelled campaigns held out in " \
        "turn" in result.describe_spread()


def _tuned(best: tuple[int, float, float, float], default: tuple[int, float, float, float],
           margin: tuple[float, float, float] | None = None) -> object:
    from sybilgnn.tuning._paired import TrialMargin
    from sybilgnn.tuning._run import TrialScore, TuneResult
    from sybilgnn.tuning._summary import PruningSummary

    margins = {} if margin is None else {"default": TrialMargin(default[0], *margin)}
    return TuneResult(study_name="s", best_params={"hidden": 32}, best_value=best[1],
                      best_trial=best[0], finished_since_start=2, counts={},
                      pruning=PruningSummary(2, 0, 4, 8, 8, 0, 0), parent_run_id="p",
                      spread={"best": TrialScore(*best), "default": TrialScore(*default)},
                      margins=margins)


def test_a_best_trial_inside_the_noise_of_the_configuration_is_not_adopted() -> None:
    overlapping = _tuned(best=(3, -0.02, -0.03, -0.01), default=(0, -0.03, -0.04, -0.025))
    params, why = overlapping.adopted_params("separated")
    assert params is None
    assert why.startswith("the configuration as it stands: best trial 3: -0.0200")
    assert overlapping.adopted_params("best") == (
        {"hidden": 32}, "best trial 3: -0.0200 [-0.0300, -0.0100] (tune.adopt=best)")
    apart = _tuned(best=(3, -0.01, -0.015, -0.005), default=(0, -0.03, -0.04, -0.025))
    params, why = apart.adopted_params("separated")
    assert params == {"hidden": 32}
    assert "better than the configuration beyond the noise, trial 0: -0.0300" in why
    configured_won = _tuned(best=(0, -0.01, -0.02, 0.0), default=(0, -0.01, -0.02, 0.0))
    assert configured_won.adopted_params("best")[0] is None


def test_the_paired_margin_decides_over_overlapping_intervals() -> None:
    # the intervals overlap, but on the same rows the best is better on every resample
    paired_apart = _tuned(best=(3, -0.02, -0.03, -0.01), default=(0, -0.03, -0.04, -0.025),
                          margin=(0.01, 0.004, 0.016))
    params, why = paired_apart.adopted_params("separated")
    assert params == {"hidden": 32}
    assert why.endswith("paired gain +0.0100 [+0.0040, +0.0160] over trial 0")
    assert paired_apart.best_separated is True
    # the intervals do not overlap, but the paired difference says noise
    paired_noise = _tuned(best=(3, -0.01, -0.015, -0.005), default=(0, -0.03, -0.04, -0.025),
                          margin=(0.02, -0.001, 0.04))
    assert paired_noise.adopted_params("separated")[0] is None
    assert paired_noise.best_separated is False


def test_trials_scored_on_different_rows_are_not_paired() -> None:
    from optuna.distributions import IntDistribution
    from optuna.trial import create_trial

    from sybilgnn.tuning._paired import paired_margin, validation_attrs

    def trial(number: int, labels: list[int], probs: list[float], snapshot: str = "s1"):
        made = create_trial(value=0.0, params={"h": 1},
                            distributions={"h": IntDistribution(1, 2)},
                            user_attrs=validation_attrs(np.array(labels), np.array(probs),
                                                        0.5, snapshot))
        made.number = number
        return made

    best = trial(2, [1, 0, 1], [0.9, 0.1, 0.8])
    margin = paired_margin(best, trial(0, [1, 0, 1], [0.6, 0.4, 0.8]), n_boot=50)
    # at prevalence 0.5 the two fakes weigh 0.75 each and the legitimate account 1.5
    gain = (0.75 * (math.log(0.9) - math.log(0.6)) + 1.5 * (math.log(0.9) - math.log(0.6))) / 3
    assert margin is not None and margin.other == 0
    assert margin.gain == pytest.approx(gain, rel=1e-6)
    assert paired_margin(best, trial(0, [1, 1, 0], [0.6, 0.4, 0.8])) is None  # other labels
    assert paired_margin(best, trial(0, [1, 0], [0.6, 0.4])) is None  # other rows
    assert paired_margin(best, trial(0, [1, 0, 1], [0.6, 0.4, 0.8], "s2")) is None
