"""The GNN's tree companion: gradient boosting on neighbour aggregates, fused by the higher rank.

Held out campaign by campaign, the GNN and gradient boosting on the labelled nodes'
features plus neighbour aggregates (``sybilgnn.training.neighbours``) miss *different*
campaigns: on development worlds each found campaigns the other ranked below legitimate
accounts (docs/quality.md). A new campaign is what the team must catch, so the champion
(``model.companion: trees``) flags an account when either model ranks it high: the trees'
score is mapped by quantile onto the GNN's logit scale over the accounts they were fitted
with (no labels), and the fused logit is the larger of the two (the smaller breaks ties).
On the training population this ranks exactly as the higher of the two percentile ranks.

Everything here is fitted at training time and saved with the model (trees as arrays,
the quantile knots); scoring applies it to the snapshot encoded by the model's own
preprocessing and refits nothing. Calibration and the threshold then act on the fused
logit as they do on the GNN's alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError
from sybilgnn.models.trees import TreeEnsemble
from sybilgnn.training.crossfit import quantile_knots
from sybilgnn.training.neighbours import neighbour_features

__all__ = ["CompanionFeatures", "TreeCompanion", "capped_lift", "companion_features",
           "fit_companion", "fuse_logits",
           "COMPANION_REACH"]

TIE_BREAK = 1e-6  # weight of the lower score: orders ties at the top of the scale only
COMPANION_REACH = 2  # hops the neighbour aggregates read (an account, its IP, the IP's accounts)


def capped_lift(gnn: np.ndarray, trees_on_gnn_scale: np.ndarray,
                max_lift: float | None) -> np.ndarray:
    """The trees' score, at most ``max_lift`` logits above the GNN's own (None: as it is)."""
    if max_lift is None:
        return trees_on_gnn_scale
    return np.minimum(trees_on_gnn_scale, gnn + max_lift)


def fuse_logits(gnn: np.ndarray, trees_on_gnn_scale: np.ndarray,
                max_lift: float | None = None) -> np.ndarray:
    """The higher of the two scores, the lower breaking ties: monotone in both. With
    ``max_lift`` the trees raise an account at most that many logits above the GNN's own."""
    trees_on_gnn_scale = capped_lift(gnn, trees_on_gnn_scale, max_lift)
    high = np.maximum(gnn, trees_on_gnn_scale)
    low = np.minimum(gnn, trees_on_gnn_scale)
    return high + TIE_BREAK * low


@dataclass(frozen=True)
class CompanionFeatures:
    """What the trees read for every labelled-type node, with each column's name (the
    relation it aggregates is in the name, so a model finds its own columns in a snapshot
    whose schema has grown since it was trained)."""

    matrix: np.ndarray  # float64 [nodes, columns]
    names: tuple[str, ...]


@dataclass(frozen=True)
class TreeCompanion:
    trees: TreeEnsemble
    knots_x: np.ndarray  # trees' decision quantiles ...
    knots_y: np.ndarray  # ... and the GNN's logit quantiles over the same accounts
    columns: tuple[str, ...] | None = None  # names of the columns fitted on (None: older model)
    max_lift: float | None = None  # ``model.companion_max_lift`` (None: no cap, older model)

    def fuse(self, gnn_logits: np.ndarray, features: CompanionFeatures) -> np.ndarray:
        """Fused logits of every labelled-type node (``companion_features`` rows)."""
        gnn = np.asarray(gnn_logits, dtype=np.float64)
        return fuse_logits(gnn, self.lifted(gnn, features))

    def lifted(self, gnn_logits: np.ndarray, features: CompanionFeatures) -> np.ndarray:
        """The trees' score on the GNN's scale within the cap: what the fusion takes (where
        it exceeds the GNN's own, the evidence names the trees as the reason)."""
        return capped_lift(gnn_logits, self.on_gnn_scale(features), self.max_lift)

    def on_gnn_scale(self, features: CompanionFeatures) -> np.ndarray:
        """The trees' score of every row of ``companion_features``, mapped onto the GNN's
        logit scale (where it exceeds the GNN's own logit, the trees ranked the account)."""
        return np.interp(self.trees.decision(self.select(features)), self.knots_x, self.knots_y)

    def select(self, features: CompanionFeatures) -> np.ndarray:
        """The columns the trees were fitted on, in their order; columns of relations added
        to the schema since are left out, as the GNN leaves such relations out."""
        if self.columns is None:  # saved before columns were named: the count must match
            if features.matrix.shape[1] != self.trees.n_features:
                raise InputError(
                    f"the model's tree companion reads {self.trees.n_features} columns, this "
                    f"snapshot gives {features.matrix.shape[1]}: export.relationships differs "
                    "from the model's training run; restore it or retrain (`sybilgnn retrain`)")
            return features.matrix
        where = {name: i for i, name in enumerate(features.names)}
        missing = [name for name in self.columns if name not in where]
        if missing:
            relations = sorted({name.split(":")[0] for name in missing})
            raise InputError(
                f"the model's tree companion reads {len(missing)} neighbour columns this "
                f"snapshot lacks (relations {relations}, e.g. {missing[0]!r}): add those "
                "relations back to export.relationships, or retrain on the current schema "
                "(`sybilgnn retrain`)")
        return features.matrix[:, [where[name] for name in self.columns]]

    def tensors(self) -> dict[str, torch.Tensor]:
        """Plain tensors for ``torch.save`` (read back with ``weights_only=True``); the
        column names travel as UTF-8 bytes."""
        out = {**{f"trees.{k}": v for k, v in self.trees.tensors().items()},
               "knots_x": torch.from_numpy(self.knots_x.astype(np.float64)),
               "knots_y": torch.from_numpy(self.knots_y.astype(np.float64))}
        if self.columns is not None:
            encoded = "\n".join(self.columns).encode("utf-8")
            out["columns"] = torch.frombuffer(bytearray(encoded), dtype=torch.uint8).clone()
        if self.max_lift is not None:
            out["max_lift"] = torch.tensor(float(self.max_lift), dtype=torch.float64)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> TreeCompanion:
        trees = TreeEnsemble.from_tensors({k.removeprefix("trees."): v
                                           for k, v in tensors.items() if k.startswith("trees.")})
        columns = None
        if "columns" in tensors:
            columns = tuple(bytes(tensors["columns"].numpy()).decode("utf-8").split("\n"))
        max_lift = float(tensors["max_lift"]) if "max_lift" in tensors else None
        return cls(trees, tensors["knots_x"].numpy(), tensors["knots_y"].numpy(), columns,
                   max_lift)


def fit_companion(features: CompanionFeatures | None, gnn_logits: np.ndarray, y: np.ndarray,
                  rows: np.ndarray, seed: int, max_lift: float | None = None
                  ) -> tuple[TreeCompanion | None, np.ndarray]:
    """Trees on the labels of ``rows``, their scale map over every row, and the fused
    logits; ``features`` None (``model.companion: none``) gives no companion and the GNN's
    logits. One decision pass serves the scale map and the fusion."""
    if features is None:
        return None, gnn_logits
    trees = TreeEnsemble.fit(features.matrix, y, rows, seed)
    decision = trees.decision(features.matrix)
    companion = TreeCompanion(trees, *quantile_knots(decision, gnn_logits), features.names,
                              max_lift)
    mapped = np.interp(decision, companion.knots_x, companion.knots_y)
    return companion, fuse_logits(np.asarray(gnn_logits, dtype=np.float64), mapped, max_lift)


def companion_features(snapshot: Snapshot, kind: str = "trees") -> CompanionFeatures | None:
    """What the trees read for every labelled-type node of ``snapshot`` (in the model's
    columns): its features plus neighbour aggregates; None under ``model.companion: none``.
    They depend on the snapshot alone, so a caller computes them once for every fit."""
    if kind == "none":
        return None
    matrix, names = neighbour_features(snapshot)
    return CompanionFeatures(np.asarray(matrix, dtype=np.float64), tuple(names))
