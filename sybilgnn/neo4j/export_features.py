"""Turn property columns into model features: z-scored numerics and top-k one-hots.

The statistics (mean and std per column) are kept with the snapshot so that a model trained
on one snapshot can re-normalise another one the same way (``align_features``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["OTHER", "encode_numeric", "encode_categorical", "align_features", "edge_weights"]

OTHER = "<other>"


def encode_numeric(columns: dict[str, np.ndarray], n: int
                   ) -> tuple[np.ndarray, list[str], list[float], list[float]]:
    """Z-score each column over its known values; missing values become the mean (0)."""
    names = list(columns)
    block = np.zeros((n, len(names)), dtype=np.float64)
    means, stds = [], []
    for j, name in enumerate(names):
        values = columns[name]
        known = ~np.isnan(values)
        mean = float(values[known].mean()) if known.any() else 0.0
        std = float(values[known].std()) if known.any() else 0.0
        std = std if std > 1e-12 else 1.0
        block[:, j] = np.where(known, (values - mean) / std, 0.0)
        means.append(mean)
        stds.append(std)
    return block, names, means, stds


def encode_categorical(prop: str, values: np.ndarray, top_k: int
                       ) -> tuple[np.ndarray, list[str]]:
    """One column per top-k value (by count, then by value) plus one for every other value.

    Missing values count as other. Columns are named ``prop=value``.
    """
    values = np.asarray(values, dtype=object)
    present: np.ndarray = values != None  # noqa: E711  (elementwise on an object array)
    uniques, inverse, counts = np.unique(values[present].astype(str), return_inverse=True,
                                         return_counts=True)
    ranked = sorted(range(len(uniques)), key=lambda i: (-counts[i], uniques[i]))[:top_k]
    block = np.zeros((len(values), len(ranked) + 1), dtype=np.float64)
    column_of = np.full(len(uniques), len(ranked), dtype=np.int64)
    for column, unique_index in enumerate(ranked):
        column_of[unique_index] = column
    present_rows = np.flatnonzero(present)
    block[present_rows, column_of[inverse]] = 1.0
    block[~present, len(ranked)] = 1.0
    names = [f"{prop}={uniques[i]}" for i in ranked] + [f"{prop}={OTHER}"]
    return block, names


def edge_weights(raw: np.ndarray, transform: str) -> np.ndarray:
    """Counts become log1p(count); a missing weight becomes 1 (an edge without strength)."""
    weights = raw.astype(np.float64)
    missing = np.isnan(weights)
    if transform == "log1p":
        weights = np.log1p(np.clip(weights, 0, None))
    weights[missing] = 1.0
    return weights.astype(np.float32)


def align_features(x: np.ndarray, names: list[str], stats: dict[str, list[float]],
                   target_names: list[str], target_stats: dict[str, list[float]]) -> np.ndarray:
    """Re-express normalised features ``x`` in another snapshot's columns and statistics.

    Scoring uses this to feed a model the columns it was trained on: raw values are
    recovered (``x * std + mean``), re-normalised with the target statistics, and columns the
    source lacks are zero (the target mean; for a one-hot, "not this value").
    """
    raw = x.astype(np.float64) * np.asarray(stats["std"]) + np.asarray(stats["mean"])
    out = np.zeros((x.shape[0], len(target_names)), dtype=np.float32)
    position = {name: j for j, name in enumerate(names)}
    for j, name in enumerate(target_names):
        if name in position:
            column = raw[:, position[name]]
            out[:, j] = (column - target_stats["mean"][j]) / target_stats["std"][j]
    return out
