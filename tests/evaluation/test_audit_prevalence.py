"""Prevalence from a random audit, model-assisted and post-stratified: exact on hand-built
populations, and an interval that holds where the model misses fakes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sybilgnn.measures.population import audit_prevalence, clopper_pearson


def _population() -> tuple[np.ndarray, np.ndarray]:
    # 1,000 accounts: 20 labelled fakes, 80 labelled legitimate, 900 without a label of
    # which the first 300 were audited (6 fakes among them).
    y = np.full(1000, -1)
    y[:20], y[20:100] = 1, 0
    audit_y = np.full(1000, -1)
    audit_y[100:400] = 0
    audit_y[100:106] = 1
    return y, audit_y


def test_clopper_pearson_meets_its_definition() -> None:
    from scipy.stats import binom

    lo, hi = clopper_pearson(np.array([0, 3, 6]), np.array([294, 297, 6]))
    # no success: lower end 0, upper end where 0 of 294 has probability 2.5 %
    assert lo[0] == 0.0 and hi[0] == pytest.approx(1 - 0.025 ** (1 / 294))
    # all successes: upper end 1, lower end where 6 of 6 has probability 2.5 %
    assert hi[2] == 1.0 and lo[2] == pytest.approx(0.025 ** (1 / 6))
    # in between: each end leaves 2.5 % in its tail
    assert binom.cdf(3, 297, hi[1]) == pytest.approx(0.025)
    assert binom.sf(2, 297, lo[1]) == pytest.approx(0.025)


def test_a_model_right_on_every_audited_account_still_leaves_room_for_misses() -> None:
    y, audit_y = _population()
    predicted = np.zeros(1000)
    predicted[100:106] = 1.0      # the audited fakes
    predicted[500:518] = 1.0      # 18 unaudited accounts it calls fake
    estimate, lo, hi = audit_prevalence(predicted, y, audit_y)
    # 20 labelled + (24 predicted among 900, no residual) -> 44 of 1,000
    assert estimate == pytest.approx(0.044)
    # Two strata among the 900: 876 at probability 0 (294 audited, no fake) and 24 at 1
    # (6 audited, 6 fakes). No residual does not prove no miss: the low stratum may hold
    # up to the exact bound of 0 in 294 of fakes, the high one as few as that of 6 in 6.
    assert hi == pytest.approx((44 + 876 * (1 - 0.025 ** (1 / 294))) / 1000)
    assert lo == pytest.approx((44 - 24 * (1 - 0.025 ** (1 / 6))) / 1000)


def test_the_audit_corrects_a_model_that_misses_fakes() -> None:
    y, audit_y = _population()
    predicted = np.zeros(1000)
    predicted[100:103] = 1.0      # finds 3 of the 6 audited fakes
    predicted[500:509] = 1.0
    estimate, lo, hi = audit_prevalence(predicted, y, audit_y)
    # low stratum: 888 accounts at 0, 297 audited, 3 fakes (the misses); high stratum: 12
    # accounts at 1, 3 audited, 3 fakes. Each: mean prediction + audited mean residual.
    low, high = 888 / 900 * (0 + 3 / 297), 12 / 900 * (1 + 0 / 3)
    assert estimate == pytest.approx((20 + 900 * (low + high)) / 1000)
    # each side: the root of the sum of squares of the strata's weighted distances
    (lo_low, lo_high), (hi_low, hi_high) = clopper_pearson(np.array([3, 3]),
                                                           np.array([297, 3]))
    below = math.hypot(888 / 900 * (3 / 297 - lo_low), 12 / 900 * (1 - lo_high))
    above = math.hypot(888 / 900 * (hi_low - 3 / 297), 12 / 900 * (hi_high - 1))
    assert hi_high == 1.0
    assert lo == pytest.approx((20 + 900 * (low + high - below)) / 1000)
    assert hi == pytest.approx((20 + 900 * (low + high + above)) / 1000)
    # skewed as the misses are: more room above than below
    assert hi - estimate > estimate - lo


def test_a_stratum_the_audit_missed_joins_the_one_below() -> None:
    y, audit_y = _population()
    predicted = np.zeros(1000)
    predicted[100:106] = 0.9      # the audited fakes, in the top stratum
    predicted[700:730] = 0.3      # 30 unaudited accounts in a stratum no audit reached
    estimate, _, _ = audit_prevalence(predicted, y, audit_y)
    # low stratum (with the 0.3 ones): 894 accounts, mean prediction 9/894, 294 audited
    # at 0, no fake; top: 6 accounts at 0.9, all audited, all fakes (residual 0.1 each)
    low = 894 / 900 * (9 / 894 + 0.0)
    high = 6 / 900 * (0.9 + 0.1)
    assert estimate == pytest.approx((20 + 900 * (low + high)) / 1000)


def test_the_estimate_never_falls_below_the_labelled_fakes() -> None:
    y, audit_y = _population()
    audit_y[100:106] = 0          # the audit found no fake ...
    predicted = np.full(1000, 0.0)
    predicted[100:400] = 0.5      # ... where the model said one in two
    estimate, lo, _ = audit_prevalence(predicted, y, audit_y)
    # mean prediction 1/6 among the 900 less a residual of 1/2: below zero, clipped
    assert estimate == pytest.approx(20 / 1000)
    assert lo == pytest.approx(20 / 1000)


def test_an_empty_audit_is_refused() -> None:
    y, audit_y = _population()
    with pytest.raises(ValueError, match="audited account"):
        audit_prevalence(np.zeros(1000), y, np.full(1000, -1))


def test_the_interval_holds_where_the_model_misses_rare_fakes() -> None:
    # 2 % fakes, 60 % of them labelled; the model misses 20 % of the others and scores
    # them like legitimate accounts, so an audit of 500 holds four fakes, one of them
    # missed, on average (the world: 8 fakes in 1,000, recall 0.78).
    rng = np.random.default_rng(15)
    draws, n, size = 300, 20_000, 500
    covered = {"normal": 0, "post-stratified": 0}
    for _ in range(draws):
        fake = rng.random(n) < 0.02
        predicted = np.where(fake & (rng.random(n) < 0.8), rng.beta(8.0, 1.5, n),
                             rng.beta(0.3, 150.0, n))
        y = np.where(fake & (rng.random(n) < 0.6), 1, -1)
        rest = np.flatnonzero(y < 0)
        audit_y = np.full(n, -1)
        drawn = rng.choice(rest, size, replace=False)
        audit_y[drawn] = fake[drawn]
        _, lo, hi = audit_prevalence(predicted, y, audit_y)
        covered["post-stratified"] += lo <= fake.mean() <= hi
        # the normal interval of the mean residual, on the unlabelled accounts' share
        residual = fake[drawn] - predicted[drawn]
        error = predicted[rest].mean() + residual.mean() - fake[rest].mean()
        covered["normal"] += abs(error) <= 1.96 * residual.std(ddof=1) / math.sqrt(size)
    assert covered["post-stratified"] / draws >= 0.9
    assert covered["normal"] / draws < 0.9
