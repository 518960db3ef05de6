"""MLflow tracking and registry: log, register, aliases, the promotion gate, safe loading."""

from __future__ import annotations

from sybilgnn.registry._lease import PromotionBusyError, lease_name, promotion_lease
from sybilgnn.registry._log import (CHALLENGER, CHAMPION, RegisteredVersion, flat_metrics,
                                    log_and_register)
from sybilgnn.registry._model_io import (ID_MAP_SCHEMA, LoadedModel, ModelNotFoundError,
                                         SybilgnnPyfunc, load_model_dir, load_registered_model,
                                         resolve_version, save_model_dir)
from sybilgnn.registry._promote import (GateError, PromotionDecision, evaluate_on_snapshot,
                                        gate_rows, promote, set_champion)
from sybilgnn.registry._tracking import client_for, configure_tracking

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "GateError",
    "ID_MAP_SCHEMA",
    "LoadedModel",
    "ModelNotFoundError",
    "PromotionBusyError",
    "PromotionDecision",
    "RegisteredVersion",
    "SybilgnnPyfunc",
    "client_for",
    "configure_tracking",
    "evaluate_on_snapshot",
    "flat_metrics",
    "gate_rows",
    "lease_name",
    "load_model_dir",
    "load_registered_model",
    "log_and_register",
    "promote",
    "promotion_lease",
    "resolve_version",
    "save_model_dir",
    "set_champion",
]
