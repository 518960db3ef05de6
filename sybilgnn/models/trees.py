"""Gradient-boosted trees as plain arrays: fitted with scikit-learn, saved and scored without it.

The model artefact holds no pickle (``registry/_model_io.py``), so a fitted
``HistGradientBoostingClassifier`` is flattened here into one node table (feature,
threshold, children, missing-value direction, leaf value) plus the root of each tree and
the baseline. ``decision`` sends the rows down each tree, every node splitting the rows that
reached it, and returns the classifier's ``decision_function`` (same comparisons; the sum
up to float rounding); the arrays travel as tensors, which ``torch.load(weights_only=True)``
reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

__all__ = ["TreeEnsemble", "gradient_boosting"]

_FIELDS = ("feature", "threshold", "left", "right", "missing_left", "is_leaf", "value", "roots")


def gradient_boosting(seed: int) -> HistGradientBoostingClassifier:
    """The one gradient-boosting recipe: the baselines' and the GNN's tree companion's."""
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=31,
                                          class_weight="balanced", random_state=seed)


@dataclass(frozen=True)
class TreeEnsemble:
    """Every tree's nodes in one table; child indices are global rows of that table."""

    feature: np.ndarray       # int64, the column a split reads
    threshold: np.ndarray     # float64, go left when x <= threshold
    left: np.ndarray          # int64
    right: np.ndarray         # int64
    missing_left: np.ndarray  # bool, where a NaN goes
    is_leaf: np.ndarray       # bool
    value: np.ndarray         # float64, a leaf's contribution
    roots: np.ndarray         # int64, one per tree
    baseline: float
    n_features: int

    @classmethod
    def fit(cls, features: np.ndarray, y: np.ndarray, rows: np.ndarray, seed: int
            ) -> TreeEnsemble:
        """``gradient_boosting`` fitted on ``rows``."""
        return cls.from_sklearn(gradient_boosting(seed).fit(features[rows], y[rows]))

    @classmethod
    def from_sklearn(cls, model: HistGradientBoostingClassifier) -> TreeEnsemble:
        """Flatten a fitted binary classifier (numeric features only)."""
        if model.n_trees_per_iteration_ != 1:
            raise ValueError("only a binary classifier flattens to one ensemble")
        parts: dict[str, list[np.ndarray]] = {name: [] for name in _FIELDS[:-1]}
        roots, offset = [], 0
        for (tree,) in model._predictors:
            nodes = tree.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            roots.append(offset)
            parts["feature"].append(nodes["feature_idx"].astype(np.int64))
            parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
            parts["left"].append(nodes["left"].astype(np.int64) + offset)
            parts["right"].append(nodes["right"].astype(np.int64) + offset)
            parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
            parts["is_leaf"].append(nodes["is_leaf"].astype(bool))
            parts["value"].append(nodes["value"].astype(np.float64))
            offset += len(nodes)
        arrays = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        return cls(**arrays, roots=np.asarray(roots, dtype=np.int64),
                   baseline=float(np.ravel(model._baseline_prediction)[0]),
                   n_features=int(model.n_features_in_))

    def decision(self, features: np.ndarray) -> np.ndarray:
        """The ensemble's raw score (log-odds) per row of ``features``."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"the trees read {self.n_features} features, got an array of "
                             f"shape {features.shape}")
        out = np.full(features.shape[0], self.baseline, dtype=np.float64)
        for root in self.roots:  # each node splits the rows that reached it, top down
            stack = [(int(root), np.arange(features.shape[0]))]
            while stack:
                node, rows = stack.pop()
                if self.is_leaf[node]:
                    out[rows] += self.value[node]
                    continue
                x = features[rows, self.feature[node]]
                go_left = x <= self.threshold[node]
                if self.missing_left[node]:
                    go_left |= np.isnan(x)
                stack.append((int(self.left[node]), rows[go_left]))
                stack.append((int(self.right[node]), rows[~go_left]))
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        """Plain tensors for ``torch.save`` (read back with ``weights_only=True``)."""
        out = {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name)))
               for name in _FIELDS}
        out["baseline"] = torch.tensor([self.baseline], dtype=torch.float64)
        out["n_features"] = torch.tensor([self.n_features], dtype=torch.int64)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> TreeEnsemble:
        arrays = {name: tensors[name].numpy() for name in _FIELDS}
        return cls(**arrays, baseline=float(tensors["baseline"][0]),
                   n_features=int(tensors["n_features"][0]))
