"""Rebuild a model from plain config + weights, and score the labelled nodes of a snapshot."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sybilgnn.config import ModelSettings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError
from sybilgnn.models import TARGET_NODE_TYPE, SybilGNN, build_model
from sybilgnn.training.calibration import apply_calibrator
from sybilgnn.training.inputs import graph_inputs, resolve_device

__all__ = ["load_model", "model_target", "predict", "predict_logits"]


def load_model(model_config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> SybilGNN:
    """The module described by ``TrainResult.model_config`` with ``state_dict`` loaded (eval).

    Configs saved before models recorded the node type they score get the default one."""
    node_types, edge_types = model_config["metadata"]
    metadata = (list(node_types), [tuple(et) for et in edge_types])
    model = build_model(metadata, dict(model_config["in_dims"]),  # type: ignore[arg-type]
                        ModelSettings.model_validate(model_config["model"]),
                        target=model_target(model_config))
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def model_target(model_config: dict[str, Any]) -> str:
    """The node type a saved model scores (the default one for models saved before)."""
    return str(model_config.get("target", TARGET_NODE_TYPE))


def predict_logits(model: SybilGNN, snapshot: Snapshot, device: str = "auto", *,
                   companion: Any = None) -> np.ndarray:
    """Logits of the model's target nodes with one full-graph pass under ``no_grad``, fused
    with ``companion``'s (a ``TreeCompanion``) when the model has one.

    Without autograd each layer's activations replace the previous ones, so peak memory is
    the graph plus a few ``[nodes, hidden]`` matrices per node type.
    """
    dev = resolve_device(device)
    labelled = snapshot.labelled_type
    if labelled != model.target:
        raise InputError(
            f"the model scores {model.target!r} nodes but the snapshot carries its labels on "
            f"{labelled!r} (export.labels.node_type): it was trained on another graph schema; "
            "score with a model trained on this one (`sybilgnn retrain`)")
    inputs = graph_inputs(snapshot, dev)
    missing = [nt for nt in model.node_types if nt not in inputs.x_dict]
    if missing:
        raise InputError(f"snapshot lacks node types {missing} that the model was trained on")
    for nt in model.node_types:
        if inputs.in_dims[nt] != model.in_dims[nt]:
            raise InputError(
                f"snapshot: node type {nt!r} has {inputs.in_dims[nt]} features, the model expects "
                f"{model.in_dims[nt]}; export with the feature list the model was trained on")
    model = model.to(dev).eval()
    with torch.no_grad():
        logits = model(inputs.x_dict, inputs.edge_index_dict, inputs.edge_weight_dict)
    out = np.asarray(logits.cpu().numpy(), dtype=np.float64)
    if companion is None:
        return out
    from sybilgnn.training.companion import companion_features

    return companion.fuse(out, companion_features(snapshot))


def predict(model_or_result: Any, snapshot: Snapshot, *, calibrator: dict[str, Any] | None = None,
            device: str = "auto", companion: Any = None) -> np.ndarray:
    """Calibrated fake probabilities for every labelled-type node (row order of the snapshot).

    Takes a ``TrainResult`` (or anything with ``model_config``, ``state_dict``, ``calibrator``
    and ``preprocessor``, e.g. the registry's loaded model), which encodes the snapshot with
    its own preprocessing and carries its own companion, or a bare ``SybilGNN`` plus an
    optional ``calibrator`` and ``companion``, which reads the snapshot's matrices as they are.
    """
    if isinstance(model_or_result, torch.nn.Module):
        model = model_or_result
    else:
        preprocessor = getattr(model_or_result, "preprocessor", None)
        if preprocessor is not None:
            snapshot = preprocessor.transform(snapshot)
        model = load_model(model_or_result.model_config, model_or_result.state_dict)
        calibrator = calibrator if calibrator is not None else model_or_result.calibrator
        companion = getattr(model_or_result, "companion", None)
    assert isinstance(model, SybilGNN)
    return apply_calibrator(calibrator, predict_logits(model, snapshot, device,
                                                       companion=companion))
