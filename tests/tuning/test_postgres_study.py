"""Shared tuning on a real PostgreSQL server: worker processes join one study, the retrain
waits for the trials other workers still run, and ``sybilgnn tune --worker`` finds the
retrain's study of the current graph."""

from __future__ import annotations

import threading
import time
from itertools import count
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sybilgnn.cli import main
from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.registry import configure_tracking
from sybilgnn.tuning import open_study, run_study, snapshot_study_name, wait_for_running
from tests.postgres import PostgresServer
from tests.registry.stores import make_settings
from tests.tuning.test_study import _overrides, _small_space, _trial_runs, _worker

pytestmark = pytest.mark.postgres
_databases = count()


def _on_postgres(tmp_path: Path, mlflow_uri: str, server: PostgresServer,
                 extra: list[str]) -> Settings:
    url = server.url(f"optuna_{next(_databases)}")
    return make_settings(tmp_path, mlflow_uri, [_small_space(tmp_path), f"tune.storage={url}",
                                                *extra])


def test_two_workers_share_one_study_on_postgresql(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot_dir: Path,
        postgres_server: PostgresServer) -> None:
    settings = _on_postgres(tmp_path, mlflow_uri, postgres_server, [])
    common = _overrides(settings, ["tune.trial_epochs=3", "tune.pruner=none"])
    workers = [_worker(tiny_snapshot_dir, 2, "each", [*common, f"tune.seed={seed}"])
               for seed in (1, 2)]
    for proc in workers:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name=settings.tune.study_name, storage=settings.tune.storage)
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]  # no number handed out twice
    assert len(_trial_runs(settings, study.user_attrs["mlflow_parent_run_id"])) == 4


def test_the_wait_ends_when_another_workers_trial_ends_or_its_heartbeat_goes_stale(
        tmp_path: Path, mlflow_uri: str, postgres_server: PostgresServer) -> None:
    settings = _on_postgres(tmp_path, mlflow_uri, postgres_server,
                            ["tune.heartbeat_interval_s=1", "tune.grace_period_s=2"])
    study = open_study(settings)
    # a live worker's trial: told two seconds later
    live = study.ask()
    finisher = threading.Timer(2.0, lambda: study.tell(live, 0.5))
    started = time.monotonic()
    finisher.start()
    assert wait_for_running(study, settings, poll_s=0.2) == []
    assert time.monotonic() - started >= 1.9
    assert study.trials[live.number].state == TrialState.COMPLETE
    # a trial nobody will finish and nobody beats for: the deadline ends the wait
    silent = study.ask()
    assert wait_for_running(study, settings, timeout_s=0.5, poll_s=0.1) == [silent.number]
    study.tell(silent, state=TrialState.FAIL)
    # a dead worker's trial: its last heartbeat ages past the grace period, and the wait
    # fails it (and queues its parameters again) instead of waiting forever
    dead = study.ask()
    study._storage.record_heartbeat(dead._trial_id)
    started = time.monotonic()
    assert wait_for_running(study, settings, timeout_s=60, poll_s=0.2) == []
    assert 1.5 <= time.monotonic() - started < 30
    assert study.trials[dead.number].state == TrialState.FAIL
    assert [t.state for t in study.trials[dead.number + 1:]] == [TrialState.WAITING]


def test_tune_worker_joins_the_retrains_study_of_the_current_graph(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot, tiny_snapshot_dir: Path,
        postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _on_postgres(tmp_path, mlflow_uri, postgres_server,
                            ["tune.trial_epochs=2", "tune.pruner=none", "tune.n_trials=2"])
    args = [*[f"--set={o}" for o in _overrides(settings, ["tune.trial_epochs=2",
                                                           "tune.pruner=none",
                                                           "tune.n_trials=2"])],
            "tune", "--worker", "--snapshot", str(tiny_snapshot_dir)]
    # the retrain opened the study of this graph under its own MLflow run, ran nothing yet
    name = snapshot_study_name(settings, tiny_snapshot)
    client = MlflowClient()
    retrain_run = client.create_run(configure_tracking(settings)).info.run_id
    run_study(tiny_snapshot, settings, n_trials=0, study_name=name, parent_run_id=retrain_run)
    main(args)
    assert f"study {name}:" in capsys.readouterr().out
    study = optuna.load_study(study_name=name, storage=settings.tune.storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
    assert len(_trial_runs(settings, retrain_run)) == 2  # nested under the retrain's run
    # a second worker finds the budget spent and runs nothing
    main(args)
    assert len(optuna.load_study(study_name=name, storage=settings.tune.storage).trials) == 2
    with pytest.raises(SystemExit) as refused:
        main([*args, "--study-name", "other"])
    assert refused.value.code == 2
    assert "--worker joins the retrain's study" in capsys.readouterr().err


def test_a_postgresql_storage_without_its_driver_says_how_to_get_it(
        tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from sybilgnn.errors import InputError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "psycopg2" else real(name, *a))
    settings = make_settings(tmp_path, mlflow_uri,
                             ["tune.storage=postgresql://u@127.0.0.1:1/optuna"])
    with pytest.raises(InputError, match=r"pip install 'sybilgnn\[postgres\]'"):
        open_study(settings)


def test_a_bare_postgresql_url_opens_with_the_installed_driver(
        tmp_path: Path, mlflow_uri: str, postgres_server: PostgresServer) -> None:
    from sybilgnn.config import with_postgres_driver

    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which the extra does not install
    assert with_postgres_driver("postgresql://u@db/x") == "postgresql+psycopg2://u@db/x"
    assert with_postgres_driver("postgres://u@db/x") == "postgresql+psycopg2://u@db/x"
    assert with_postgres_driver("postgresql+psycopg://u@db/x") == "postgresql+psycopg://u@db/x"
    assert with_postgres_driver("sqlite:///a.db") == "sqlite:///a.db"
    settings = _on_postgres(tmp_path, mlflow_uri, postgres_server, [])
    bare = settings.tune.storage.replace("postgresql+psycopg2://", "postgresql://")
    settings.tune.storage = bare
    study = open_study(settings, study_name="bare-url")
    study.enqueue_trial({})
    assert [t.state for t in study.trials] == [TrialState.WAITING]
