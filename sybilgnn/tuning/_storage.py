"""The shared Optuna study: storage with heartbeats, seeded TPE, the configured pruner.

Crash recovery, chosen and documented in docs/training.md:
- every worker records a heartbeat; a RUNNING trial whose heartbeat is older than
  ``tune.grace_period_s`` is failed by the next worker that starts or finishes a trial
  (works across machines);
- a worker also fails at once the RUNNING trials of dead processes on its own host (it
  records ``host:pid`` on each trial), so a restart on the same machine needs no wait;
- a failed-by-crash trial's parameters are queued once more (``WAITING``) so the crash does
  not cost a point of the search, and its MLflow run is closed as FAILED.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.registry._tracking import ensure_sqlite_parent
from sybilgnn.processes import pid_alive

__all__ = ["open_study", "open_study_created", "make_pruner", "fail_dead_local_trials", "worker_id", "WORKER_ATTR",
           "MLFLOW_RUN_ATTR"]

WORKER_ATTR = "worker"
MLFLOW_RUN_ATTR = "mlflow_run_id"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def make_pruner(settings: Settings, name: str | None = None) -> optuna.pruners.BasePruner:
    tune = settings.tune
    kind = name or tune.pruner
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tune.pruner_startup_trials,
                                           n_warmup_steps=tune.pruner_warmup_epochs)
    if kind == "hyperband":
        max_epochs = tune.trial_epochs or settings.train.epochs
        return optuna.pruners.HyperbandPruner(min_resource=max(1, tune.pruner_warmup_epochs),
                                              max_resource=max_epochs, reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise InputError(f"tune.pruner: expected median, hyperband or none, got {kind!r}")


class _RetryAndCloseRun:
    """Queue a crashed trial's parameters again and mark its MLflow run FAILED."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = RetryHeartbeatStaleTrialCallback(max_retry=1)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._retry(study, trial)
        run_id = trial.user_attrs.get(MLFLOW_RUN_ATTR)
        if run_id:
            from sybilgnn.tuning._tracking import close_trial_run

            close_trial_run(self._settings, str(run_id), status="FAILED",
                            tags={"optuna.state": "FAIL", "failure": "worker died"})


def _storage(settings: Settings) -> RDBStorage:
    url = settings.tune.storage
    if "://" not in url:
        raise InputError(f"tune.storage: expected a database URL like "
                         f"sqlite:///mlruns/optuna.db or postgresql://..., got {url!r}")
    ensure_sqlite_parent(url)
    if url.startswith("postgresql+psycopg2"):
        _require_postgres_driver(url)
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several local workers write the same file: wait for the lock instead of failing.
        engine = {"connect_args": {"timeout": 60}}
    interval = settings.tune.heartbeat_interval_s
    last_error: Exception | None = None
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=interval,
                    grace_period=settings.tune.grace_period_s or 2 * interval,
                    heartbeat_stale_trial_callback=_RetryAndCloseRun(settings),
                )
        except Exception as exc:  # SQLAlchemy raises many kinds for a bad URL or server
            last_error = exc
            if "already exists" not in str(exc):
                break
            # Two workers created the schema at the same moment; the next try finds it.
            time.sleep(0.2 * (attempt + 1))
    raise InputError(f"tune.storage {url!r} cannot be opened: {last_error}") from None


def _require_postgres_driver(url: str) -> None:
    """A PostgreSQL storage needs psycopg2, an optional dependency: say how to get it."""
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None:  # SQLAlchemy's default driver for it
        raise InputError(f"tune.storage {url!r} is a PostgreSQL database, which needs the "
                         "psycopg2 driver: pip install 'sybilgnn[postgres]'")


def fail_dead_local_trials(study: optuna.Study, settings: Settings) -> list[int]:
    """Fail RUNNING trials whose worker process on this host is gone; returns their numbers."""
    host = socket.gethostname()
    storage = study._storage
    failed: list[int] = []
    callback = _RetryAndCloseRun(settings)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get(WORKER_ATTR, ""))
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(trial.number)
                callback(study, storage.get_trial(trial._trial_id))
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
    return failed


def open_study(settings: Settings, *, study_name: str | None = None,
               pruner: str | None = None) -> optuna.Study:
    """Create or join the study (``load_if_exists``), seeded TPE, maximising val AUPRC.

    The sampler seed is ``tune.seed`` plus the number of trials the study already holds, so a
    resumed study does not replay the draws of its first run. Workers started at the same
    moment should get distinct seeds (``sybilgnn tune --seed``).
    """
    study, _ = open_study_created(settings, study_name=study_name, pruner=pruner)
    return study


def open_study_created(settings: Settings, *, study_name: str | None = None,
                       pruner: str | None = None) -> tuple[optuna.Study, bool]:
    """``open_study`` plus whether this call created the study (exactly one worker does)."""
    storage = _storage(settings)
    name = study_name or settings.tune.study_name
    created = True
    try:
        study = optuna.create_study(storage=storage, pruner=make_pruner(settings, pruner),
                                    study_name=name, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        created = False
        study = optuna.load_study(storage=storage, pruner=make_pruner(settings, pruner),
                                  study_name=name)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise InputError(f"study {name!r} in {settings.tune.storage} minimises; sybilgnn studies "
                         "maximise validation AUPRC, so choose another tune.study_name")
    existing = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(
        seed=settings.tune.seed + existing,
        n_startup_trials=max(1, settings.tune.pruner_startup_trials),
    )
    return study, created
