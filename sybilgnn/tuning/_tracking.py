"""One MLflow run per trial, nested under the study's parent run.

Trial runs go through ``MlflowClient`` with explicit run ids rather than the fluent
active-run stack, so a worker process, a retrain pipeline run and the trial runs never
step on each other's "active run".
"""

from __future__ import annotations

from typing import Any

import time

import optuna
from mlflow.entities import Metric, Param, RunTag

from sybilgnn.config import Settings
from sybilgnn.registry._tracking import client_for

__all__ = ["parent_run_for_study", "start_trial_run", "log_epoch", "close_trial_run"]

PARENT_ATTR = "mlflow_parent_run_id"


def parent_run_for_study(settings: Settings, study: optuna.Study, *, created: bool,
                         parent_run_id: str | None = None, wait_s: float = 30.0) -> str:
    """The run that groups the study's trials: given, recorded on the study, or new.

    Only the worker that created the study creates the parent run; workers that joined wait
    for it to be recorded, so concurrent workers nest their trials under one run. A given
    run (the retrain's) is recorded on the study, so `tune --worker` processes joining it
    later nest their trials under the retrain's run too.
    """
    if parent_run_id:
        if study.user_attrs.get(PARENT_ATTR) != parent_run_id:
            study.set_user_attr(PARENT_ATTR, parent_run_id)
        return parent_run_id
    deadline = time.monotonic() + (0.0 if created else wait_s)
    while True:
        recorded = optuna.load_study(study_name=study.study_name,
                                     storage=study._storage).user_attrs.get(PARENT_ATTR)
        if recorded:
            return str(recorded)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    client, experiment_id = client_for(settings)
    run = client.create_run(experiment_id, run_name=f"tune-{study.study_name}",
                            tags={"sybilgnn.kind": "tune", "optuna.study": study.study_name})
    client.set_terminated(run.info.run_id)
    study.set_user_attr(PARENT_ATTR, run.info.run_id)
    return run.info.run_id


def start_trial_run(settings: Settings, parent_run_id: str, trial: optuna.Trial,
                    params: dict[str, Any], extra_params: dict[str, Any]) -> str:
    client, experiment_id = client_for(settings)
    run = client.create_run(
        experiment_id,
        run_name=f"trial-{trial.number}",
        tags={"mlflow.parentRunId": parent_run_id, "sybilgnn.kind": "trial",
              "optuna.study": trial.study.study_name, "optuna.trial": str(trial.number)},
    )
    merged = {**extra_params, **params}
    client.log_batch(run.info.run_id,
                     params=[Param(k, str(v)) for k, v in sorted(merged.items())])
    return run.info.run_id


def log_epoch(settings: Settings, run_id: str, record: dict[str, Any]) -> None:
    client, _ = client_for(settings)
    now = int(time.time() * 1000)
    step = int(record.get("epoch", 0))
    metrics = [Metric(f"epoch_{key}", float(record[key]), now, step)
               for key in ("val_auprc", "loss") if record.get(key) is not None]
    client.log_batch(run_id, metrics=metrics)


def close_trial_run(settings: Settings, run_id: str, *, status: str,
                    metrics: dict[str, float] | None = None,
                    tags: dict[str, str] | None = None) -> None:
    client, _ = client_for(settings)
    now = int(time.time() * 1000)
    client.log_batch(run_id,
                     metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
                     tags=[RunTag(k, v) for k, v in (tags or {}).items()])
    client.set_terminated(run_id, status=status)
