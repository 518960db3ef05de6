"""Labels, analyst verdicts and the evaluation splits, on plain numpy arrays.

The split mirrors how the job is done: labels known before a cutoff train, later labels test,
a validation slice lies in between, and one whole group (a campaign) can be held out to test
generalisation to an unseen campaign. Kept free of Neo4j so it is tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from sybilgnn.config import SplitSettings

__all__ = ["LabelColumns", "SplitResult", "apply_verdicts", "encode_codes", "make_splits"]

CONFIRMED, FALSE_POSITIVE = "confirmed", "false_positive"


@dataclass
class LabelColumns:
    """Final labels after verdicts: ``y`` (1, 0, -1 unknown) and ``label_time`` (s, NaN)."""

    y: np.ndarray
    label_time: np.ndarray
    from_review: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class SplitResult:
    train_mask: np.ndarray
    val_mask: np.ndarray
    test_mask: np.ndarray
    holdout_mask: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def apply_verdicts(label: np.ndarray, label_time: np.ndarray, review: np.ndarray,
                   review_time: np.ndarray) -> LabelColumns:
    """Analyst verdicts override the platform label: confirmed -> 1, false_positive -> 0.

    ``label`` is float with NaN for unknown; ``review`` an object array of strings or None.
    The verdict's time (``reviewed_at``) becomes the label time, so a verdict recorded after
    the cutoff lands in the later slice rather than leaking into training.
    """
    y = np.where(np.isnan(label), -1, label).astype(np.int64)
    bad = (y != -1) & (y != 0) & (y != 1)
    y[bad] = -1
    times = label_time.astype(np.float64).copy()
    times[y == -1] = np.nan
    confirmed = review == CONFIRMED
    false_pos = review == FALSE_POSITIVE
    from_review = confirmed | false_pos
    verdict = np.where(confirmed, 1, 0)
    changed = from_review & (y != verdict)
    y[from_review] = verdict[from_review]
    times[from_review] = review_time[from_review]
    counts = {
        "labelled": int((y >= 0).sum()),
        "positive": int((y == 1).sum()),
        "negative": int((y == 0).sum()),
        "invalid_label_values": int(bad.sum()),
        "verdict_confirmed": int(confirmed.sum()),
        "verdict_false_positive": int(false_pos.sum()),
        "verdict_changed_label": int(changed.sum()),
        "labels_without_time": int(((y >= 0) & np.isnan(times)).sum()),
    }
    return LabelColumns(y=y, label_time=times, from_review=from_review, counts=counts)


def encode_codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Long codes for a string column (sorted names; -1 for missing).

    Values are grouped by hashing (``pandas.factorize``) and only the distinct ones are
    turned into text and sorted, so a million rows with a few dozen campaigns cost little.
    """
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    texts = [str(u) for u in uniques]
    names = sorted(set(texts))
    index = {name: i for i, name in enumerate(names)}
    code_of = np.asarray([index[t] for t in texts] + [-1], dtype=np.int64)  # last: missing
    return code_of[codes], names


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _holdout_candidates(group: np.ndarray, names: list[str], labelled: np.ndarray,
                        wanted: str | None) -> list[int]:
    """Codes of the groups to try holding out, preferred first ([-1]: none).

    A configured value is the only candidate. Otherwise the group whose labelled count is
    the median comes first (the lower median for an even count): holding out the largest
    campaign would starve training of positives, the smallest gives too few positives to
    measure; the other groups follow, smallest first. With fewer than two labelled groups
    nothing is held out, since that would leave training no campaign.
    """
    if wanted is not None:
        return [names.index(wanted) if wanted in names else -1]
    sizes = [(int(((group == code) & labelled).sum()), code) for code in range(len(names))]
    present = sorted(entry for entry in sizes if entry[0] > 0)
    if len(present) < 2:
        return [-1]
    median = present[(len(present) - 1) // 2][1]
    return [median] + [code for _, code in present if code != median]


def _time_slices(pool: np.ndarray, label_time: np.ndarray, settings: SplitSettings
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """train / val / test of the pool by label time, and the two cutoffs."""
    times = label_time[pool]
    if settings.train_cutoff is not None:
        c1 = _epoch(settings.train_cutoff)
    else:
        c1 = float(np.quantile(times, settings.train_fraction)) if times.size else np.inf
    if settings.val_cutoff is not None:
        c2 = _epoch(settings.val_cutoff)
    else:
        fraction = settings.train_fraction + settings.val_fraction
        c2 = float(np.quantile(times, fraction)) if times.size else np.inf
    c2 = max(c1, c2)
    with np.errstate(invalid="ignore"):
        train = pool & (label_time < c1)
        val = pool & (label_time >= c1) & (label_time < c2)
        test = pool & (label_time >= c2)
    return train, val, test, c1, c2


def _both_classes(y: np.ndarray, *masks: np.ndarray) -> bool:
    return all(mask.any() and y[mask].min() != y[mask].max() for mask in masks)


def make_splits(y: np.ndarray, label_time: np.ndarray, settings: SplitSettings,
                group: np.ndarray | None = None,
                group_names: list[str] | None = None) -> SplitResult:
    """Time split of labelled rows, with an optional group held out whole.

    train: label_time < c1; val: c1 <= label_time < c2; test: label_time >= c2, so every
    train label time is strictly before every test label time. Cutoffs are quantiles of the
    label times of the rows that are not held out, unless explicit dates are configured.
    The held-out group's rows are in none of train/val/test; ``holdout_mask`` holds them
    plus the test slice's negatives (the population an unseen campaign must stand out from).
    Labelled rows without a time are in no slice (counted in the label counts).
    """
    n = len(y)
    labelled = (y >= 0) & ~np.isnan(label_time)
    group = np.full(n, -1, dtype=np.int64) if group is None else group
    names = group_names or []
    candidates = [-1]
    if settings.holdout_property is not None and names:
        candidates = _holdout_candidates(group, names, labelled, settings.holdout_value)
    # The preferred group is held out unless that leaves train or validation without both
    # classes (its campaign labelled only late, say): then the next group is tried. When
    # none works the preferred one stays, and training says what is missing.
    tried: list[tuple[int, np.ndarray, tuple[Any, ...]]] = []
    for code in candidates:
        held = (group == code) & labelled if code >= 0 else np.zeros(n, dtype=bool)
        tried.append((code, held, _time_slices(labelled & ~held, label_time, settings)))
        if _both_classes(y, *tried[-1][2][:2]):
            break
    else:
        tried = tried[:1]
    position = len(tried) - 1
    held_code, holdout, (train, val, test, c1, c2) = tried[-1]
    # The held-out campaign is scored among the legitimate accounts of the test period, so
    # its metrics say whether an unseen campaign stands out from real traffic.
    if held_code >= 0:
        holdout = holdout | (test & (y == 0))
    info: dict[str, Any] = {
        "train_cutoff": c1 if np.isfinite(c1) else None,
        "val_cutoff": c2 if np.isfinite(c2) else None,
        "holdout_property": settings.holdout_property,
        "holdout_group": names[held_code] if held_code >= 0 else None,
        "train": int(train.sum()), "val": int(val.sum()), "test": int(test.sum()),
        "holdout": int(holdout.sum()),
        "holdout_choice": position,  # 0: the preferred group; k: the k-th fallback
    }
    if settings.holdout_value is not None and held_code < 0:
        info["holdout_missing"] = settings.holdout_value
    return SplitResult(train, val, test, holdout, info)
