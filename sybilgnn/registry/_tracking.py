"""Point MLflow at the configured store and experiment, once, in one place.

The default store is SQLite (``sqlite:///mlruns/mlflow.db``: MLflow 3 refuses a plain file
store) with artifacts under ``registry.artifact_root``; behind a tracking server
(``http(s)://``) the server keeps the artifacts (``artifact_location``).
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from sybilgnn.config import Settings
from sybilgnn.errors import SybilgnnError

__all__ = ["artifact_location", "configure_tracking", "ensure_sqlite_parent", "client_for"]

_KNOWN: dict[tuple[str, str], str] = {}

# MLflow draws a progress bar for every artifact download (each model load, each
# registration); a batch job's log is no place for them. A user's own setting wins.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def ensure_sqlite_parent(url: str) -> None:
    """Create the folder of a ``sqlite:///path`` database so the first run can open it."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url[len(prefix):].split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)


def configure_tracking(settings: Settings) -> str:
    """Set tracking + registry URI and return the experiment id (created on first use).

    The experiment's artifact location is ``registry.artifact_root`` as an absolute
    ``file://`` URI, so artifacts land in one place whatever the working directory later is.
    """
    reg = settings.registry
    ensure_sqlite_parent(reg.tracking_uri)
    mlflow.set_tracking_uri(reg.tracking_uri)
    mlflow.set_registry_uri(reg.tracking_uri)
    known = _KNOWN.get((reg.tracking_uri, reg.experiment))
    if known is not None:
        return known
    experiment_id = _find_or_create(settings)
    _KNOWN[(reg.tracking_uri, reg.experiment)] = experiment_id
    return experiment_id


def artifact_location(tracking_uri: str, artifact_root: str) -> str | None:
    """Where a new experiment keeps its artifacts.

    A URI (``s3://``, ``mlflow-artifacts:/``...) as given. A local folder as an absolute
    ``file://`` URI, except behind a tracking server (``http(s)://``): other machines cannot
    read this one's folders, so the server's own artifact store (``mlflow server
    --artifacts-destination``, proxied) keeps them (None lets the server choose).
    """
    if "://" in artifact_root or artifact_root.startswith("mlflow-artifacts:"):
        return artifact_root
    if tracking_uri.startswith(("http://", "https://")):
        return None
    root = Path(artifact_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root.as_uri()


def _find_or_create(settings: Settings) -> str:
    reg = settings.registry
    client = MlflowClient()
    try:
        experiment = client.get_experiment_by_name(reg.experiment)
        if experiment is None:
            location = artifact_location(reg.tracking_uri, str(reg.artifact_root))
            try:
                return client.create_experiment(reg.experiment, artifact_location=location)
            except mlflow.exceptions.MlflowException:
                # Another worker created it between our lookup and create.
                experiment = client.get_experiment_by_name(reg.experiment)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise SybilgnnError(
                f"MLflow experiment {reg.experiment!r} is deleted in {reg.tracking_uri}; restore "
                "it (`mlflow experiments restore`) or set registry.experiment to a new name")
        return str(experiment.experiment_id)
    except mlflow.exceptions.MlflowException as exc:
        raise SybilgnnError(f"MLflow store {reg.tracking_uri} is not usable: {exc}") from None


def client_for(settings: Settings) -> tuple[MlflowClient, str]:
    """A client on the configured store and the experiment id."""
    experiment_id = configure_tracking(settings)
    return MlflowClient(), experiment_id
