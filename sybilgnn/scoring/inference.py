"""The champion as the scoring job meets it: loaded once, applied to any snapshot.

Full and incremental runs share this, so both read a graph through the model's own saved
preprocessing, companion and calibration, never refitted, and so both agree on how far
one account's score can reach into the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError
from sybilgnn.graph_schema import GraphSchema

__all__ = ["Inference", "ScoringModel", "load_scoring_model"]


@dataclass
class Inference:
    """One pass of the model over a snapshot: the snapshot in the model's columns, the
    calibrated scores (row by row), which accounts the trees ranked, and input drift."""

    encoded: Snapshot
    scores: np.ndarray
    ranked_by_trees: np.ndarray | None
    drift: dict[str, float]


@dataclass
class ScoringModel:
    """A registered model ready to score: the registry's artefact and its network."""

    loaded: Any  # sybilgnn.registry.LoadedModel
    network: torch.nn.Module

    @property
    def version(self) -> str:
        return str(self.loaded.version)

    @property
    def threshold(self) -> float:
        return float(self.loaded.threshold)

    @property
    def reach(self) -> int:
        """Hops of the graph that one account's score can depend on: the message-passing
        layers, or the tree companion's two-hop neighbour aggregates when further."""
        from sybilgnn.training.companion import COMPANION_REACH

        hops = len(self.network.convs)
        return max(hops, COMPANION_REACH) if self.loaded.companion is not None else hops

    @property
    def context_hops(self) -> int:
        """Hops of the graph an exact score needs read around an account: its reach plus
        one, since every node's degrees are inputs of the first layer (a node at the edge
        of the reach needs all its relationships, so their far ends too)."""
        return self.reach + 1

    def infer(self, snapshot: Snapshot, settings: Settings, *, drift: bool = True
              ) -> Inference:
        """Scores of every labelled-type node of ``snapshot``."""
        from sybilgnn.training import apply_calibrator, predict_logits
        from sybilgnn.training.companion import companion_features, fuse_logits

        loaded = self.loaded
        encoded = loaded.encode(snapshot)  # the model's own preprocessing, never refitted
        shift = loaded.preprocessor.drift(snapshot) if drift else {}
        logits = predict_logits(self.network, encoded, settings.train.device)
        ranked_by_trees = None
        if loaded.companion is not None:
            # one pass of the trees serves the fusion and the evidence's reason
            trees = loaded.companion.lifted(logits, companion_features(encoded))
            ranked_by_trees = trees > logits
            logits = fuse_logits(logits, trees)
        scores = apply_calibrator(loaded.calibrator, logits)
        return Inference(encoded, np.asarray(scores, dtype=np.float64), ranked_by_trees, shift)


def load_scoring_model(settings: Settings, model_version: str | int | None = None
                       ) -> ScoringModel:
    """The champion (or ``model_version``), refused when it scores another node type than
    this graph schema labels."""
    from sybilgnn.registry import load_registered_model
    from sybilgnn.training import load_model

    loaded = load_registered_model(settings, model_version if model_version is not None
                                   else settings.scoring.model_alias)
    schema = GraphSchema.from_settings(settings)
    if loaded.target != schema.labelled:
        raise InputError(
            f"model {loaded.model_name} v{loaded.version} scores {loaded.target!r} nodes, but "
            f"export.labels.node_type is {schema.labelled!r}: it was trained on another graph "
            "schema. Train a model on this one (`sybilgnn retrain`), or set "
            "registry.model_name to the model of this schema")
    return ScoringModel(loaded, load_model(loaded.model_config, loaded.state_dict))
