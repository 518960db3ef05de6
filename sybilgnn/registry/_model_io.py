"""The model on disk and in the registry, without pickle.

A model folder holds ``weights.pt`` (``torch.save`` of the state dict; loaded with
``weights_only=True``) and ``model.json`` (model config, calibrator, threshold, the fitted
preprocessor with its feature names and statistics, id-map schema; the model config names
the node type the model scores, so it refuses a graph whose labels live elsewhere); under
``model.companion: trees`` also ``companion.pt``, the trees as arrays (tensors as well). MLflow
stores that folder as the artifacts of a small pyfunc model so that
``mlflow.pyfunc.load_model`` works for tooling; that path unpickles the ``SybilgnnPyfunc``
class by reference. Scoring uses ``load_registered_model`` instead, which
downloads the folder and rebuilds the network from JSON and tensors only.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from sybilgnn.config import Settings
from sybilgnn.data.preprocessing import Preprocessor
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError, SybilgnnError
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.registry._tracking import client_for

__all__ = [
    "LoadedModel",
    "ModelNotFoundError",
    "SybilgnnPyfunc",
    "FORMAT_VERSION",
    "ID_MAP_SCHEMA",
    "MODEL_ARTIFACT",
    "save_model_dir",
    "load_model_dir",
    "log_pyfunc_model",
    "load_registered_model",
    "resolve_version",
]

FORMAT_VERSION = 2  # 2: the preprocessor is part of the model
MODEL_ARTIFACT = "model"
WEIGHTS_FILE, META_FILE = "weights.pt", "model.json"
SELECTION_WEIGHTS_FILE = "selection_weights.pt"  # the time-split run of a refitted model
# model.companion=trees: the trees and their scale map, as tensors (the selection's beside)
COMPANION_FILE, SELECTION_COMPANION_FILE = "companion.pt", "selection_companion.pt"
# Node type -> the Neo4j key property whose values the snapshot's id map holds: the
# default configuration's, for models saved before they carried their own.
ID_MAP_SCHEMA = GraphSchema.default().id_map_schema


# The train.* settings that shape the weights; the rest (prevalence, bootstrap, threshold
# policy, device) is how a run is measured, and comes from the settings of the day.
RECIPE_TRAIN_KEYS = ("epochs", "patience", "min_epochs", "lr", "weight_decay", "loss",
                     "focal_gamma", "balance_fleets", "seed", "sampler", "batch_size",
                     "num_neighbors")


class ModelNotFoundError(SybilgnnError):
    """The registry holds no such model, version or alias."""


@dataclass
class LoadedModel:
    """Everything scoring needs; field names match ``TrainResult`` so ``predict`` takes it."""

    state_dict: dict[str, torch.Tensor]
    model_config: dict[str, Any]
    calibrator: dict[str, Any]
    threshold: float
    feature_names: dict[str, list[str]]
    feature_stats: dict[str, dict[str, list[float]]]
    snapshot_hash: str
    preprocessor: Preprocessor
    id_map_schema: dict[str, str] = field(default_factory=lambda: dict(ID_MAP_SCHEMA))
    version: str | None = None
    run_id: str | None = None
    model_name: str | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    labels_through: float | None = None     # latest label time the weights were fitted on
    prevalence: float | None = None         # the population share of fakes it was tuned to
    fitted_on: dict[str, str] = field(default_factory=dict)
    train_settings: dict[str, Any] = field(default_factory=dict)  # train.* it was fitted with
    selection_state_dict: dict[str, torch.Tensor] | None = None
    companion: Any = None            # TreeCompanion fused into the logits, or None
    selection_companion: Any = None  # the time-split run's

    @property
    def target(self) -> str:
        """The node type the model scores (the labelled type it was trained on)."""
        from sybilgnn.training.predict import model_target

        return model_target(self.model_config)

    def recipe(self) -> dict[str, Any] | None:
        """The ``model.*`` and ``train.*`` settings that refit this model from scratch on
        another snapshot (the gate's leave-one-campaign-out), or None for a model saved
        before its training settings were (then it cannot be refitted)."""
        if not self.train_settings:
            return None
        model = {f"model.{k}": v for k, v in self.model_config.get("model", {}).items()}
        train = {f"train.{k}": v for k, v in self.train_settings.items() if k in RECIPE_TRAIN_KEYS}
        return {**model, **train}

    def selection_model(self) -> LoadedModel:
        """The time-split run this model was refitted from (itself when not refitted): the
        weights that have not seen the split's validation and test labels."""
        if self.selection_state_dict is None:
            return self
        calibrator = self.calibrator
        if calibrator.get("method") == "quantile_map":  # the refit's map onto these logits
            calibrator = calibrator["then"]
        return replace(self, state_dict=self.selection_state_dict, selection_state_dict=None,
                       calibrator=calibrator, companion=self.selection_companion,
                       selection_companion=None)

    def predict(self, snapshot: Snapshot) -> np.ndarray:
        """Calibrated fake probability for every node of the model's target type in
        ``snapshot``, read through the model's own preprocessing."""
        from sybilgnn.training import predict

        return np.asarray(predict(self, self.encode(snapshot)), dtype=np.float64)

    def encode(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` in this model's columns and scaling (never refitted)."""
        try:
            return self.preprocessor.transform(snapshot)
        except InputError as exc:
            raise InputError(f"model {self.model_name} v{self.version}: {exc}") from None


def save_model_dir(result: Any, directory: str | Path) -> Path:
    """Write a ``TrainResult`` (or ``LoadedModel``) as weights + JSON."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in result.state_dict.items()}
    torch.save(state, out / WEIGHTS_FILE)
    selection = getattr(result, "selection", None)
    selection_state = getattr(result, "selection_state_dict", None)
    if selection is not None:
        selection_state = selection.state_dict
    if selection_state is not None:
        torch.save({k: v.detach().cpu() for k, v in selection_state.items()},
                   out / SELECTION_WEIGHTS_FILE)
    selection_companion = (selection.companion if selection is not None
                           else getattr(result, "selection_companion", None))
    for companion, name in ((getattr(result, "companion", None), COMPANION_FILE),
                            (selection_companion, SELECTION_COMPANION_FILE)):
        if companion is not None:
            torch.save(companion.tensors(), out / name)
    meta = {
        "format_version": FORMAT_VERSION,
        "model_config": result.model_config,
        "calibrator": result.calibrator,
        "threshold": float(result.threshold),
        "feature_names": result.feature_names,
        "feature_stats": result.feature_stats,
        "snapshot_hash": result.snapshot_hash,
        "preprocessor": result.preprocessor.to_dict(),
        "labels_through": getattr(result, "labels_through", None),
        "prevalence": (getattr(result, "threshold_info", None) or {}).get(
            "prevalence", getattr(result, "prevalence", None)),
        "fitted_on": dict(getattr(result, "fitted_on", {}) or {}),
        "train_settings": dict(getattr(result, "train_settings", {}) or {}),
        "id_map_schema": getattr(result, "id_map_schema", None) or ID_MAP_SCHEMA,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2, default=_json_default))
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    raise TypeError(f"model metadata holds a {type(value).__name__}, which JSON cannot store")


def load_model_dir(directory: str | Path) -> LoadedModel:
    """Rebuild from a model folder: JSON and ``weights_only`` tensors, never unpickling."""
    src = Path(directory)
    if not (src / META_FILE).is_file() or not (src / WEIGHTS_FILE).is_file():
        raise ModelNotFoundError(f"{src} holds no {META_FILE} + {WEIGHTS_FILE}: not a sybilgnn "
                                 "model folder")
    meta = json.loads((src / META_FILE).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise SybilgnnError(
            f"{src / META_FILE}: model format {meta.get('format_version')} is not the supported "
            f"{FORMAT_VERSION} (format 1 models do not carry their preprocessing); retrain, "
            "then make the new version champion with `sybilgnn promote --version N`")
    state = torch.load(src / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    selection = None
    if (src / SELECTION_WEIGHTS_FILE).is_file():
        selection = torch.load(src / SELECTION_WEIGHTS_FILE, map_location="cpu",
                               weights_only=True)
    companions = {name: _load_companion(src / name)
                  for name in (COMPANION_FILE, SELECTION_COMPANION_FILE)}
    return LoadedModel(
        state_dict=state,
        model_config=meta["model_config"],
        calibrator=meta["calibrator"],
        threshold=float(meta["threshold"]),
        feature_names=meta["feature_names"],
        feature_stats=meta["feature_stats"],
        snapshot_hash=meta["snapshot_hash"],
        preprocessor=Preprocessor.from_dict(meta["preprocessor"]),
        id_map_schema=meta.get("id_map_schema", dict(ID_MAP_SCHEMA)),
        labels_through=meta.get("labels_through"),
        prevalence=meta.get("prevalence"),
        fitted_on=dict(meta.get("fitted_on") or {}),
        train_settings=dict(meta.get("train_settings") or {}),
        selection_state_dict=selection,
        companion=companions[COMPANION_FILE],
        selection_companion=companions[SELECTION_COMPANION_FILE],
    )


def _load_companion(path: Path) -> Any:
    """A saved ``TreeCompanion`` (tensors only), or None when the model has none."""
    if not path.is_file():
        return None
    from sybilgnn.training.companion import TreeCompanion

    return TreeCompanion.from_tensors(torch.load(path, map_location="cpu", weights_only=True))


class SybilgnnPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """pyfunc wrapper: input rows name saved snapshot folders; output one row per account."""

    def load_context(self, context: Any) -> None:
        self._model = load_model_dir(Path(context.artifacts["model_dir"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        frames = []
        for folder in model_input["snapshot_dir"]:
            snapshot = Snapshot.load(folder)
            scores = self._model.predict(snapshot)
            target = self._model.target
            frames.append(pd.DataFrame({
                "snapshot_dir": folder,
                _id_column(self._model.id_map_schema, target):
                    snapshot.id_maps[target].astype(str),
                "score": scores,
                "flag": scores >= self._model.threshold,
            }))
        return pd.concat(frames, ignore_index=True)


def _id_column(id_map_schema: dict[str, str], target: str) -> str:
    """The pyfunc output's id column: the scored node type's key property (``account_id``)."""
    return id_map_schema.get(target, f"{target}_id")


def signature_for(id_column: str) -> ModelSignature:
    """snapshot folders in; one row per scored node (its key, score and flag) out."""
    return ModelSignature(
        inputs=Schema([ColSpec("string", "snapshot_dir")]),
        outputs=Schema([ColSpec("string", "snapshot_dir"), ColSpec("string", id_column),
                        ColSpec("double", "score"), ColSpec("boolean", "flag")]),
    )


SIGNATURE = signature_for(_id_column(ID_MAP_SCHEMA, GraphSchema.default().labelled))


def log_pyfunc_model(result: Any) -> Any:
    """Log the model folder as a pyfunc model of the active run; returns ``ModelInfo``."""
    from sybilgnn.training.predict import model_target

    id_column = _id_column(getattr(result, "id_map_schema", None) or ID_MAP_SCHEMA,
                           model_target(result.model_config))
    with tempfile.TemporaryDirectory(prefix="sybilgnn-model-") as tmp:
        folder = save_model_dir(result, Path(tmp) / "model_dir")
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=SybilgnnPyfunc(),
            artifacts={"model_dir": str(folder)},
            signature=signature_for(id_column),
            pip_requirements=["sybilgnn", "torch", "torch-geometric", "mlflow"],
        )


def resolve_version(settings: Settings, alias_or_version: str | int) -> Any:
    """The ``ModelVersion`` named by an alias (``champion``) or a version number."""
    client, _ = client_for(settings)
    name = settings.registry.model_name
    ref = str(alias_or_version)
    try:
        if ref.isdigit():
            return client.get_model_version(name, ref)
        return client.get_model_version_by_alias(name, ref)
    except mlflow.exceptions.MlflowException:
        kind = "version" if ref.isdigit() else "alias"
        raise ModelNotFoundError(
            f"registered model {name!r} has no {kind} {ref!r} in {settings.registry.tracking_uri}; "
            "train one (`sybilgnn train` / `sybilgnn retrain`) or list versions in the MLflow UI"
        ) from None


def load_registered_model(settings: Settings, alias_or_version: str | int) -> LoadedModel:
    """Download a registered version's artifacts and rebuild it without unpickling."""
    version = resolve_version(settings, alias_or_version)
    name = settings.registry.model_name
    with tempfile.TemporaryDirectory(prefix="sybilgnn-load-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version.version}", dst_path=tmp))
        candidates = [p.parent for p in local.rglob(META_FILE)]
        if len(candidates) != 1:
            raise ModelNotFoundError(f"{name} v{version.version}: expected one {META_FILE} in its "
                                     f"artifacts, found {len(candidates)}")
        model = load_model_dir(candidates[0])
    model.version, model.run_id, model.model_name = str(version.version), version.run_id, name
    return model
