"""Log one trained model to MLflow and register it as the ``challenger``."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import yaml
from mlflow.entities import Metric

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.registry._model_io import log_pyfunc_model
from sybilgnn.registry._plots import optuna_plot_pngs, pr_curve_png, score_histogram_png
from sybilgnn.registry._tracking import client_for

__all__ = ["RegisteredVersion", "log_and_register", "CHALLENGER", "CHAMPION", "flat_metrics"]

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class RegisteredVersion:
    model_name: str
    version: str
    run_id: str
    model_uri: str


def flat_metrics(metrics: dict[str, dict[str, float]], prefix: str = "") -> dict[str, float]:
    """``{'test': {'auprc': .9}}`` -> ``{'test_auprc': .9}``, skipping NaN and non-numbers."""
    out: dict[str, float] = {}
    for split, values in metrics.items():
        for name, value in (values or {}).items():
            if isinstance(value, (int, float, np.floating)) and np.isfinite(value):
                out[f"{prefix}{split}_{name}"] = float(value)
    return out


def _log_history(run_id: str, history: list[dict[str, Any]]) -> None:
    client = mlflow.tracking.MlflowClient()
    now = int(time.time() * 1000)
    metrics = [Metric(f"epoch_{key}", float(rec[key]), now, int(rec.get("epoch", i)))
               for i, rec in enumerate(history)
               for key in ("loss", "val_auprc", "seconds")
               if isinstance(rec.get(key), (int, float)) and np.isfinite(rec[key])]
    for start in range(0, len(metrics), 900):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[start:start + 900])


def _log_baselines(result: Any, baselines: dict[str, dict[str, dict[str, float]]],
                   folder: Path) -> None:
    """GNN next to the baselines as ``baselines.md`` plus ``baseline_<name>_<split>_<metric>``."""
    from sybilgnn.training import report_table

    table = report_table({"gnn": dict(result.metrics), **baselines})
    (folder / "baselines.md").write_text(table)
    mlflow.log_artifact(str(folder / "baselines.md"))
    for name, per_split in baselines.items():
        mlflow.log_metrics(flat_metrics(per_split, prefix=f"baseline_{name}_"))


def _log_plots(result: Any, snapshot: Snapshot, folder: Path) -> None:
    from sybilgnn.training import predict

    scores = np.asarray(predict(result, snapshot), dtype=np.float64)
    store = snapshot.data[snapshot.labelled_type]
    y = store.y.cpu().numpy()
    for split in ("test", "holdout"):
        mask_name = f"{split}_mask"
        if mask_name not in store:
            continue
        mask = store[mask_name].cpu().numpy().astype(bool) & (y >= 0)
        if mask.sum() == 0:
            continue
        title = f"{split} split ({int(mask.sum())} accounts)"
        paths = [pr_curve_png(y[mask], scores[mask], result.threshold,
                              folder / f"pr_curve_{split}.png", title),
                 score_histogram_png(y[mask], scores[mask], result.threshold,
                                     folder / f"score_histogram_{split}.png", title)]
        for path in paths:
            if path is not None:
                mlflow.log_artifact(str(path), artifact_path="plots")


def _log_snapshot(snapshot: Snapshot) -> None:
    mlflow.set_tag("snapshot_hash", snapshot.content_hash)
    mlflow.log_param("snapshot_hash", snapshot.content_hash)
    mlflow.log_param("snapshot_accounts", snapshot.num_accounts)
    try:
        from sybilgnn.export import log_snapshot_to_mlflow
    except ImportError:
        return
    try:
        log_snapshot_to_mlflow(snapshot)
    except Exception as exc:  # the dataset input is a nicety; the hash is already logged
        log.warning("snapshot dataset input not logged: %s", exc)


def log_and_register(
    result: Any,
    snapshot: Snapshot,
    settings: Settings,
    *,
    run_name: str = "train",
    params: dict[str, Any] | None = None,
    baselines: Any = None,
    study: Any = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> RegisteredVersion:
    """Log everything about one ``TrainResult``, register a new version, alias it challenger."""
    client, experiment_id = client_for(settings)
    name = settings.registry.model_name
    tags = {"sybilgnn.kind": run_name.split("-")[0], **(extra_tags or {})}
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                          parent_run_id=parent_run_id, nested=parent_run_id is not None,
                          tags=tags) as run, \
            tempfile.TemporaryDirectory(prefix="sybilgnn-log-") as tmp:
        folder = Path(tmp)
        run_id = run.info.run_id
        mlflow.log_params({**{f"model.{k}": v for k, v in settings.model.model_dump().items()},
                           **{f"train.{k}": v for k, v in settings.train.model_dump().items()},
                           **{f"param.{k}": v for k, v in (params or {}).items()}})
        mlflow.log_text(yaml.safe_dump(settings.to_dict(), sort_keys=False), "config.yaml")
        _log_snapshot(snapshot)
        _log_history(run_id, list(result.history))
        mlflow.log_metrics({**flat_metrics(result.metrics), "best_epoch": result.best_epoch,
                            "epochs_run": result.epochs_run, "threshold": result.threshold})
        # held-out pictures come from the time-split run: a refit has seen every label
        _log_plots(getattr(result, "selection", None) or result, snapshot, folder)
        fitted_on = dict(getattr(result, "fitted_on", {}) or {})
        if fitted_on:
            mlflow.set_tags({f"fitted_on.{k}": v[:5000] for k, v in fitted_on.items()})
            mlflow.log_dict(fitted_on, "fitted_on.json")
        if baselines is not None:
            _log_baselines(result, baselines, folder)
        if study is not None:
            for path in optuna_plot_pngs(study, folder):
                mlflow.log_artifact(str(path), artifact_path="plots")
        info = log_pyfunc_model(result)
    version = mlflow.register_model(info.model_uri, name, tags={
        "snapshot_hash": snapshot.content_hash, "run_id": run_id,
        **{k: f"{v:.6g}" for k, v in flat_metrics(result.metrics).items()}})
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return RegisteredVersion(name, str(version.version), run_id, info.model_uri)
