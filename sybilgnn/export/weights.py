"""Edge weights as the export writes them; node features are the model's preprocessing
(``sybilgnn.data.preprocessing``), fitted once and saved with the model."""

from __future__ import annotations

import numpy as np

__all__ = ["edge_weights"]


def edge_weights(raw: np.ndarray, transform: str) -> np.ndarray:
    """Counts become log1p(count); a missing weight becomes 1 (an edge without strength).

    The transform is stateless; the model records it and refuses a snapshot exported with
    another one.
    """
    weights = raw.astype(np.float64)
    missing = np.isnan(weights)
    if transform == "log1p":
        weights = np.log1p(np.clip(weights, 0, None))
    weights[missing] = 1.0
    return weights.astype(np.float32)
