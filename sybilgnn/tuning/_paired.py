"""Trials compared on the same validation rows.

Every trial of a study is scored on one validation slice, so the fair question is not
whether two trials' intervals overlap (they share the slice's luck and its hard accounts)
but whether one is better on the same rows: a paired bootstrap of the difference. Each
trial keeps its validation labels and calibrated probabilities in its Optuna user
attributes (float32, base64: about 5 bytes per labelled account), which any worker or a
later retrain can read back from the shared storage.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np
from optuna.trial import FrozenTrial

from sybilgnn.measures.population import paired_log_loss_gain

__all__ = ["TrialMargin", "validation_attrs", "paired_margin", "VAL_PROBS_ATTR",
           "VAL_LABELS_ATTR"]

VAL_PROBS_ATTR = "val_probs_f32"
VAL_LABELS_ATTR = "val_labels_bits"
VAL_ROWS_ATTR = "val_rows"
VAL_PREVALENCE_ATTR = "val_prevalence"
SNAPSHOT_ATTR = "snapshot_hash"


@dataclass(frozen=True)
class TrialMargin:
    """How far the best trial's objective lies above another trial's, on the same rows,
    with its 95% paired interval: ``lo > 0`` means the best is better beyond the noise."""

    other: int
    gain: float
    lo: float
    hi: float

    @property
    def separated(self) -> bool:
        return self.lo > 0

    def describe(self) -> str:
        return f"{self.gain:+.4f} [{self.lo:+.4f}, {self.hi:+.4f}] over trial {self.other}"


def validation_attrs(labels: np.ndarray, probs: np.ndarray, prevalence: float,
                     snapshot_hash: str) -> dict[str, object]:
    """The user attributes that let a trial be compared row by row with another."""
    labels = np.asarray(labels).astype(np.uint8).reshape(-1)
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    return {VAL_ROWS_ATTR: int(labels.size),
            VAL_LABELS_ATTR: base64.b64encode(np.packbits(labels).tobytes()).decode("ascii"),
            VAL_PROBS_ATTR: base64.b64encode(probs.tobytes()).decode("ascii"),
            VAL_PREVALENCE_ATTR: float(prevalence), SNAPSHOT_ATTR: snapshot_hash}


def _validation_of(trial: FrozenTrial) -> tuple[np.ndarray, np.ndarray] | None:
    attrs = trial.user_attrs
    if VAL_PROBS_ATTR not in attrs or VAL_LABELS_ATTR not in attrs:
        return None  # a trial from before paired comparisons, or another objective
    rows = int(attrs[VAL_ROWS_ATTR])
    bits = np.frombuffer(base64.b64decode(attrs[VAL_LABELS_ATTR]), dtype=np.uint8)
    labels = np.unpackbits(bits)[:rows].astype(np.int64)
    probs = np.frombuffer(base64.b64decode(attrs[VAL_PROBS_ATTR]), dtype=np.float32)
    return labels, probs.astype(np.float64)


def paired_margin(best: FrozenTrial, other: FrozenTrial, *, n_boot: int = 1000,
                  seed: int = 0) -> TrialMargin | None:
    """The best trial's log-loss gain over ``other`` on their shared validation rows; None
    when the two were not scored on the same labelled rows of the same snapshot."""
    a, b = _validation_of(best), _validation_of(other)
    if a is None or b is None:
        return None
    same_snapshot = best.user_attrs.get(SNAPSHOT_ATTR) == other.user_attrs.get(SNAPSHOT_ATTR)
    if not same_snapshot or len(a[0]) != len(b[0]) or not np.array_equal(a[0], b[0]):
        return None
    prevalence = float(best.user_attrs.get(VAL_PREVALENCE_ATTR, math.nan))
    gain, lo, hi = paired_log_loss_gain(a[0], a[1], b[1],
                                        None if math.isnan(prevalence) else prevalence,
                                        n_boot=n_boot, seed=seed)
    if math.isnan(gain):
        return None
    return TrialMargin(other.number, gain, lo, hi)
