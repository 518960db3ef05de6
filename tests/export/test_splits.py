"""The split on plain arrays: ties at a cutoff, and a holdout value that does not exist."""

from __future__ import annotations

import numpy as np

from sybilgnn.config import SplitSettings
from sybilgnn.data.splits import apply_verdicts, make_splits


def test_ties_at_the_cutoff_stay_on_one_side() -> None:
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    times = np.array([1, 2, 3, 3, 3, 3, 3, 8, 9, 10], dtype=float)
    split = make_splits(y, times, SplitSettings(holdout_property=None))
    train, test = times[split.train_mask], times[split.test_mask]
    assert train.max() < test.min()
    assert (split.train_mask | split.val_mask | split.test_mask).sum() == 10
    assert not (split.train_mask & split.val_mask).any()


def test_missing_holdout_value_holds_out_nothing() -> None:
    y = np.array([1, 1, 0])
    times = np.array([1.0, 2.0, 3.0])
    split = make_splits(y, times, SplitSettings(holdout_value="nope"), np.array([0, 0, -1]),
                        ["c1"])
    assert not split.holdout_mask.any() and split.info["holdout_missing"] == "nope"


def test_verdicts_replace_label_and_time() -> None:
    labels = apply_verdicts(np.array([0.0, 1.0, np.nan, 7.0]), np.array([1.0, 2.0, np.nan, 4.0]),
                            np.array(["confirmed", None, "false_positive", None], dtype=object),
                            np.array([5.0, np.nan, 6.0, np.nan]))
    assert labels.y.tolist() == [1, 1, 0, -1]
    assert labels.label_time[[0, 1, 2]].tolist() == [5.0, 2.0, 6.0]
    assert np.isnan(labels.label_time[3])
    assert labels.counts["invalid_label_values"] == 1
    assert labels.counts["verdict_changed_label"] == 2


def test_default_holdout_is_the_median_sized_group_scored_with_test_negatives() -> None:
    # groups: g0 has 1 labelled, g1 has 3, g2 has 2 -> median-sized is g2.
    group = np.array([0, 1, 1, 1, 2, 2, -1, -1, -1, -1])
    y = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    times = np.arange(10, dtype=float)
    split = make_splits(y, times, SplitSettings(), group, ["g0", "g1", "g2"])
    assert split.info["holdout_group"] == "g2"
    # pool times 0-3 and 6-9: the 0.8 quantile is 7.6 -> test holds rows 8, 9 (negatives)
    assert split.test_mask.nonzero()[0].tolist() == [8, 9]
    assert split.holdout_mask.nonzero()[0].tolist() == [4, 5, 8, 9]


def test_no_holdout_with_a_single_group() -> None:
    split = make_splits(np.array([1, 1, 0]), np.array([0.0, 1.0, 2.0]), SplitSettings(),
                        np.array([0, 0, -1]), ["only"])
    assert split.info["holdout_group"] is None and not split.holdout_mask.any()


def test_holdout_falls_back_when_the_preferred_group_leaves_training_no_fakes() -> None:
    # Campaign "early" (4 fakes, labelled first) and "late" (5 fakes, labelled last). The
    # median-sized group is "early"; holding it out would leave only late fakes, all after
    # the train cutoff, so "late" is held out instead and training keeps early's fakes.
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1])
    times = np.arange(15, dtype=float)
    group = np.array([0, -1, 0, -1, 0, -1, 0, -1, -1, -1, 1, 1, 1, 1, 1])
    split = make_splits(y, times, SplitSettings(train_fraction=0.5, val_fraction=0.2), group,
                        ["early", "late"])
    assert split.info["holdout_group"] == "late" and split.info["holdout_choice"] == 1
    assert y[split.train_mask].tolist() == [1, 0, 1, 0, 1]
    assert y[split.val_mask].tolist() == [0, 1]
    assert np.flatnonzero(split.holdout_mask & (y == 1)).tolist() == [10, 11, 12, 13, 14]
    # A configured group is held out as asked, even where that starves training.
    kept = make_splits(y, times, SplitSettings(train_fraction=0.5, val_fraction=0.2,
                                               holdout_value="early"), group, ["early", "late"])
    assert kept.info["holdout_group"] == "early" and kept.info["holdout_choice"] == 0
