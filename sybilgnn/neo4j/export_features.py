"""Turn property columns into model features: z-scored numerics and top-k one-hots.

The statistics (mean and std per column) are kept with the snapshot so that a model trained
on one snapshot can re-normalise another one the same way (``align_features``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["OTHER", "encode_numeric", "encode_categorical", "align_features", "edge_weights"]

OTHER = "<other>"


def encode_numeric(columns: dict[str, np.ndarray], n: int
                   ) -> tuple[np.ndarray, list[str], list[float], list[float]]:
    """Z-score each column over its known values; missing values become the mean (0).

    Returns float32 rows (nodes) by columns. The work is done in place on one float64
    copy: at a million nodes each extra temporary costs more than the arithmetic.
    """
    names = list(columns)
    if not names:
        return np.zeros((n, 0), dtype=np.float32), [], [], []
    block = np.empty((len(names), n), dtype=np.float64)
    for row, name in enumerate(names):
        block[row] = columns[name]
    missing = np.isnan(block)
    count = n - missing.sum(axis=1)
    block[missing] = 0.0
    mean = np.divide(block.sum(axis=1), count, out=np.zeros(len(names)), where=count > 0)
    block -= mean[:, None]
    block[missing] = 0.0
    squares = np.asarray([np.square(row).sum() for row in block])  # pairwise sums, as np.std
    std = np.sqrt(np.divide(squares, count, out=np.zeros(len(names)), where=count > 0))
    std = np.where(std > 1e-12, std, 1.0)
    block /= std[:, None]
    return np.ascontiguousarray(block.T, dtype=np.float32), names, mean.tolist(), std.tolist()


def encode_categorical(prop: str, values: np.ndarray, top_k: int
                       ) -> tuple[np.ndarray, list[str]]:
    """One column per top-k value (by count, then by value) plus one for every other value.

    Missing values count as other. Columns are named ``prop=value``.
    """
    values = np.asarray(values, dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)  # hashing, no sort
    texts = [str(u) for u in uniques]
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    # the same value as text may come from different types (1 and "1"): merge by text
    by_text: dict[str, int] = {}
    for i, text in enumerate(texts):
        by_text[text] = by_text.get(text, 0) + int(counts[i])
    ranked_texts = sorted(by_text, key=lambda t: (-by_text[t], t))[:top_k]
    column_of_text = {text: column for column, text in enumerate(ranked_texts)}
    column_of = np.asarray([column_of_text.get(t, len(ranked_texts)) for t in texts] +
                           [len(ranked_texts)], dtype=np.int64)  # last: missing -> other
    block = np.zeros((len(values), len(ranked_texts) + 1), dtype=np.float32)
    block[np.arange(len(values)), column_of[codes]] = 1.0
    names = [f"{prop}={t}" for t in ranked_texts] + [f"{prop}={OTHER}"]
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
