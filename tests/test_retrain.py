"""The retrain lock (across processes) and the whole pipeline with its exit codes."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sybilgnn.cli import main
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.registry import GateError, load_registered_model
from sybilgnn.retrain import (EXIT_LOCKED, EXIT_NOT_PROMOTED, EXIT_PROMOTED, LockedError, retrain,
                              retrain_lock)
from tests.registry.stores import (make_settings, mlflow_uri, one_torch_thread, tiny_snapshot,
                                   tiny_snapshot_dir)

__all__ = ["mlflow_uri", "one_torch_thread", "tiny_snapshot", "tiny_snapshot_dir"]

REPO = Path(__file__).resolve().parents[1]


def _hold_lock(path: str, ready: mp.synchronize.Event, release: mp.synchronize.Event) -> None:
    with retrain_lock(path):
        ready.set()
        release.wait(30)


def test_second_acquirer_fails_fast_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "mlruns" / "retrain.lock"
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(lock), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        started = time.monotonic()
        with pytest.raises(LockedError) as err:
            with retrain_lock(lock):
                pytest.fail("entered a held lock")
        assert time.monotonic() - started < 1.0
        assert err.value.exit_code == EXIT_LOCKED == 3
        assert f"pid {holder.pid}" in str(err.value) and str(lock) in str(err.value)
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0
    with retrain_lock(lock):  # released with its holder
        pass


def test_cli_retrain_exits_3_when_locked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "retrain.lock"
    with retrain_lock(lock):  # a second open file description conflicts even in one process
        with pytest.raises(SystemExit) as exited:
            main(["--set", f"registry.lock_file={lock}", "retrain",
                  "--snapshot", str(tmp_path / "missing")])
    assert exited.value.code == 3
    err = capsys.readouterr().err
    assert "another retrain is running" in err and "Traceback" not in err


def test_retrain_promotes_first_then_exits_10_when_not_better(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot, tiny_snapshot_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("hidden: {type: int, low: 8, high: 16, step: 8}\n"
                     "lr: {type: log, low: 5.0e-3, high: 5.0e-2}\n")
    settings = make_settings(tmp_path, mlflow_uri, [
        f"tune.search_space={space}", "tune.trial_epochs=4", "tune.pruner=none", "train.epochs=6"])
    outcome = retrain(settings, snapshot=tiny_snapshot, n_trials=2)
    assert outcome.exit_code == EXIT_PROMOTED
    assert outcome.decision.promoted and outcome.decision.champion_version == "1"
    assert outcome.tune is not None and outcome.tune.finished_since_start == 2
    assert outcome.tune.study_name == f"sybilgnn-{tiny_snapshot.content_hash[:12]}"

    client = MlflowClient()
    parent = client.get_run(outcome.run_id)
    assert parent.data.tags["promotion.decision"] == "promoted"
    assert parent.data.tags["registered_version"] == "1"
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{outcome.run_id}'")
    kinds = sorted(r.data.tags.get("sybilgnn.kind", "") for r in children)
    assert kinds == ["final", "trial", "trial"]
    final = next(r for r in children if r.data.tags["sybilgnn.kind"] == "final")
    assert final.data.params["param.hidden"] == str(outcome.tune.best_params["hidden"])
    artifacts = {f.path for f in client.list_artifacts(final.info.run_id, "plots")}
    assert "plots/optuna_history.png" in artifacts
    assert {f.path for f in client.list_artifacts(final.info.run_id)} >= {"baselines.md"}

    # The registered model was refitted on every label, with the time-split run's settings.
    assert final.data.tags["fitted_on.weights"].startswith("all ")
    assert "best epoch of the time-split run" in final.data.tags["fitted_on.epochs"]
    champion = load_registered_model(settings, "champion")
    times = tiny_snapshot.data["account"].label_time.numpy()
    labelled = tiny_snapshot.data["account"].y.numpy() >= 0
    assert champion.labels_through == float(np.nanmax(times[labelled]))
    assert champion.selection_state_dict is not None

    # Same snapshot: no label arrived after the champion's training, so the gate has nothing
    # that neither model was fitted on and keeps the champion: exit 10.
    overrides = [f"--set=registry.{k}={v}" for k, v in settings.registry.model_dump().items()]
    overrides += [f"--set=tune.{k}={v}" for k, v in settings.tune.model_dump().items()
                  if v is not None]
    overrides += ["--set=train.epochs=6", "--set=train.min_epochs=1", "--set=train.device=cpu"]
    with pytest.raises(SystemExit) as exited:
        main([*overrides, "retrain", "--snapshot", str(tiny_snapshot_dir), "--n-trials", "2",
              "--no-baselines"])
    assert exited.value.code == EXIT_NOT_PROMOTED == 10
    out = capsys.readouterr().out
    assert "registered v2" in out and "v2 not promoted" in out
    tags = client.get_model_version(settings.registry.model_name, "2").tags
    assert tags["promotion.reason"].startswith("not measurable: the test split has 0 labels "
                                               "(0 fake) labelled after champion v1's training")
    aliases = client.get_registered_model(settings.registry.model_name).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "1", "challenger": "2"}


def test_a_champion_that_cannot_be_evaluated_fails_the_gate_and_promotes_nothing(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path, mlflow_uri, ["train.epochs=3"])
    first = retrain(settings, snapshot=tiny_snapshot, n_trials=0, with_baselines=False)
    assert first.decision.promoted and first.decision.champion_version == "1"
    # The graph's account inputs were renamed: v1 reads f_0..f_7, which this snapshot lacks.
    names = dict(tiny_snapshot.feature_names)
    names["account"] = [f"g_{i}" for i in range(len(names["account"]))]
    renamed = Snapshot(tiny_snapshot.data, tiny_snapshot.id_maps, names,
                       tiny_snapshot.feature_stats, "renamed-inputs")
    with pytest.raises(GateError) as failed:
        retrain(settings, snapshot=renamed, n_trials=0, with_baselines=False)
    message = str(failed.value)
    assert "champion v1 could not be evaluated" in message
    assert "challenger v2 was not compared and nothing was promoted" in message
    assert "account features ['f_0', 'f_1'" in message and "are missing" in message
    client = MlflowClient()
    aliases = client.get_registered_model(settings.registry.model_name).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "1", "challenger": "2"}
    tags = client.get_model_version(settings.registry.model_name, "2").tags
    assert tags["promotion.decision"] == "error"

    # Through the CLI: exit code 2 and one line, no traceback.
    snapshot_dir = renamed.save(tmp_path / "renamed")
    overrides = [f"--set=registry.{k}={v}" for k, v in settings.registry.model_dump().items()]
    overrides += ["--set=train.epochs=3", "--set=train.min_epochs=1", "--set=train.device=cpu"]
    with pytest.raises(SystemExit) as exited:
        main([*overrides, "retrain", "--snapshot", str(snapshot_dir), "--n-trials", "0",
              "--no-baselines"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error: promotion gate: champion v1 could not be evaluated" in err
    assert "Traceback" not in err
    aliases = client.get_registered_model(settings.registry.model_name).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "1", "challenger": "3"}
