"""From a ``Snapshot`` to tensors, labels and resolved settings (shared by train and predict)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sybilgnn.config import ModelSettings, Settings, TrainSettings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError
from sybilgnn.models.graph import EdgeType

__all__ = ["GraphInputs", "graph_inputs", "AccountLabels", "account_labels", "resolve_settings",
           "resolve_device", "labels_through", "SPLITS"]

SPLITS = ("train", "val", "test", "holdout")


@dataclass
class GraphInputs:
    x_dict: dict[str, Tensor]
    edge_index_dict: dict[EdgeType, Tensor]
    edge_weight_dict: dict[EdgeType, Tensor]
    in_dims: dict[str, int]
    metadata: tuple[list[str], list[EdgeType]]


def graph_inputs(snapshot: Snapshot, device: torch.device | str = "cpu") -> GraphInputs:
    """Feature matrices (``[N, 0]`` where a type has none) and weighted edges on ``device``."""
    data = snapshot.data
    node_types, edge_types = data.metadata()
    x_dict: dict[str, Tensor] = {}
    for nt in node_types:
        store = data[nt]
        x = store.get("x")
        if x is None:
            x = torch.zeros(int(store.num_nodes or 0), 0)
        x_dict[nt] = x.float().to(device)
    ei: dict[EdgeType, Tensor] = {}
    ew: dict[EdgeType, Tensor] = {}
    for et in edge_types:
        store = data[et]
        ei[et] = store.edge_index.long().to(device)
        weight = store.get("edge_weight")
        ew[et] = (torch.ones(ei[et].size(1)) if weight is None else weight.float()).to(device)
    return GraphInputs(x_dict, ei, ew, {nt: int(x.size(1)) for nt, x in x_dict.items()},
                       (list(node_types), [tuple(et) for et in edge_types]))  # type: ignore[misc]


@dataclass
class AccountLabels:
    y: np.ndarray                      # int64, -1 unknown
    masks: dict[str, np.ndarray]       # split -> bool, restricted to labelled accounts
    fleets: np.ndarray | None          # int64, -1 none
    audit_y: np.ndarray | None = None  # int64: a random audit's verdicts, -1 not audited

    def __post_init__(self) -> None:
        if self.audit_y is None:  # a snapshot without an audit: nobody audited
            self.audit_y = np.full(len(self.y), -1, dtype=np.int64)

    @property
    def audit(self) -> np.ndarray:
        """``audit_y``, never None after construction."""
        assert self.audit_y is not None
        return self.audit_y

    @property
    def undecided(self) -> np.ndarray:
        """Accounts that neither a label nor the audit has decided: the analysts' queue."""
        return (self.y < 0) & (self.audit < 0)

    @property
    def known_fakes(self) -> int:
        """Fakes a label or the audit already names."""
        return int((self.y == 1).sum() + (self.audit == 1).sum())


def account_labels(snapshot: Snapshot, node_type: str | None = None) -> AccountLabels:
    """Labels, split masks and fleets of the labelled node type (``node_type``, by default
    the one the snapshot carries its labels on; accounts on the default schema)."""
    node_type = snapshot.labelled_type if node_type is None else node_type
    if node_type not in snapshot.data.node_types:
        raise InputError(f"snapshot: it has no node type {node_type!r} to read labels from "
                         f"(node types: {list(snapshot.data.node_types)}); check "
                         "export.labels.node_type")
    store = snapshot.data[node_type]
    if "y" not in store:
        raise InputError(f"snapshot: data[{node_type!r}].y is missing; export labels before "
                         "training")
    y = store.y.cpu().numpy().astype(np.int64)
    masks = {}
    for split in SPLITS:
        mask = store.get(f"{split}_mask")
        masks[split] = (np.zeros(len(y), bool) if mask is None
                        else mask.cpu().numpy().astype(bool)) & (y >= 0)
    fleet = store.get("fleet")
    audit = store.get("audit_y")
    return AccountLabels(y, masks, None if fleet is None else fleet.cpu().numpy().astype(np.int64),
                         None if audit is None else audit.cpu().numpy().astype(np.int64))


def labels_through(snapshot: Snapshot, mask: np.ndarray | None = None) -> float | None:
    """The latest label time (epoch seconds) among labelled nodes (of ``mask``)."""
    store = snapshot.data[snapshot.labelled_type]
    if "label_time" not in store or "y" not in store:
        return None
    times = store.label_time.cpu().numpy().astype(np.float64)
    known = (store.y.cpu().numpy() >= 0) & ~np.isnan(times)
    if mask is not None:
        known &= mask
    return float(times[known].max()) if known.any() else None


def resolve_settings(settings: Settings, params: dict[str, Any] | None
                     ) -> tuple[ModelSettings, TrainSettings]:
    """Apply ``params`` (``hidden`` or ``model.hidden`` style keys) over the two sections."""
    model_upd: dict[str, Any] = {}
    train_upd: dict[str, Any] = {}
    for key, value in (params or {}).items():
        section, _, name = key.rpartition(".")
        if name in ModelSettings.model_fields and section in ("", "model"):
            model_upd[name] = value
        elif name in TrainSettings.model_fields and section in ("", "train"):
            train_upd[name] = value
        else:
            raise InputError(f"params: unknown key {key!r}; use a field of model.* or train.* "
                             f"({', '.join(sorted(ModelSettings.model_fields))}, "
                             f"{', '.join(sorted(TrainSettings.model_fields))})")
    try:
        model = ModelSettings.model_validate({**settings.model.model_dump(), **model_upd})
        train = TrainSettings.model_validate({**settings.train.model_dump(), **train_upd})
    except ValueError as exc:
        raise InputError(f"params: invalid value: {exc}") from None
    return model, train


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device=cuda but no CUDA device is available; use auto or cpu")
    return torch.device(name)
