"""The paired log-loss gain: two models compared on the same rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sybilgnn.measures.population import log_loss_interval, paired_log_loss_gain


def test_one_row_per_class_gives_the_exact_gain_and_a_point_interval() -> None:
    # every stratified resample of one fake and one legitimate account is the set itself
    gain, lo, hi = paired_log_loss_gain(np.array([1, 0]), np.array([0.9, 0.1]),
                                        np.array([0.6, 0.4]), None, n_boot=20)
    assert gain == pytest.approx(math.log(0.9) - math.log(0.6))
    assert lo == pytest.approx(gain) and hi == pytest.approx(gain)


def test_identical_models_gain_nothing() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.2).astype(int)
    p = rng.random(300)
    assert paired_log_loss_gain(y, p, p, 0.02, n_boot=50) == (0.0, 0.0, 0.0)


def test_pairing_separates_what_overlapping_intervals_cannot() -> None:
    # hard and easy accounts shared by both models; model A is a little better on each
    rng = np.random.default_rng(7)
    y = (rng.random(400) < 0.25).astype(int)
    difficulty = rng.normal(0.0, 2.5, 400)
    margin_b = np.where(y == 1, 1.0, -1.0) * (2.0 + difficulty)
    probs_b = 1 / (1 + np.exp(-margin_b))
    probs_a = 1 / (1 + np.exp(-(margin_b + np.where(y == 1, 0.3, -0.3))))
    loss_a, lo_a, hi_a = log_loss_interval(y, probs_a, 0.03, n_boot=300, seed=0)
    loss_b, lo_b, hi_b = log_loss_interval(y, probs_b, 0.03, n_boot=300, seed=0)
    assert lo_b < hi_a  # on their own, the two intervals overlap
    gain, lo, hi = paired_log_loss_gain(y, probs_a, probs_b, 0.03, n_boot=300, seed=0)
    assert gain == pytest.approx(loss_b - loss_a)
    assert 0 < lo <= gain <= hi  # on the same rows, A is better beyond the noise


def test_unequal_rows_are_refused_and_one_class_is_not_measurable() -> None:
    with pytest.raises(ValueError, match="equal rows"):
        paired_log_loss_gain(np.array([1, 0]), np.array([0.5, 0.5]), np.array([0.5]), None)
    assert all(math.isnan(v) for v in paired_log_loss_gain(
        np.array([1, 1]), np.array([0.5, 0.6]), np.array([0.4, 0.6]), None))
