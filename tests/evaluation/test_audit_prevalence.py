"""Prevalence from a random audit, model-assisted: exact on hand-built populations."""

from __future__ import annotations

import numpy as np
import pytest

from sybilgnn.evaluation.population import audit_prevalence


def _population() -> tuple[np.ndarray, np.ndarray]:
    # 1,000 accounts: 20 labelled fakes, 80 labelled legitimate, 900 without a label of
    # which the first 300 were audited (6 fakes among them).
    y = np.full(1000, -1)
    y[:20], y[20:100] = 1, 0
    audit_y = np.full(1000, -1)
    audit_y[100:400] = 0
    audit_y[100:106] = 1
    return y, audit_y


def test_a_model_right_on_every_audited_account_gives_its_own_count() -> None:
    y, audit_y = _population()
    predicted = np.zeros(1000)
    predicted[100:106] = 1.0      # the audited fakes
    predicted[500:518] = 1.0      # 18 unaudited accounts it calls fake
    estimate, lo, hi = audit_prevalence(predicted, y, audit_y)
    # 20 labelled + (24 predicted among 900, no residual) -> 44 of 1,000
    assert estimate == pytest.approx(0.044)
    assert lo == pytest.approx(0.044) and hi == pytest.approx(0.044)


def test_the_audit_corrects_a_model_that_misses_fakes() -> None:
    y, audit_y = _population()
    predicted = np.zeros(1000)
    predicted[100:103] = 1.0      # finds 3 of the 6 audited fakes
    predicted[500:509] = 1.0
    estimate, lo, hi = audit_prevalence(predicted, y, audit_y)
    # mean prediction among the 900: 12/900; audit residual: 3 missed of 300
    share = 12 / 900 + 3 / 300
    assert estimate == pytest.approx((20 + 900 * share) / 1000)
    residual = np.r_[np.zeros(3), np.ones(3), np.zeros(294)]
    half = 1.96 * residual.std(ddof=1) / np.sqrt(300)
    assert lo == pytest.approx((20 + 900 * (share - half)) / 1000)
    assert hi == pytest.approx((20 + 900 * (share + half)) / 1000)


def test_the_estimate_never_falls_below_the_labelled_fakes() -> None:
    y, audit_y = _population()
    audit_y[100:106] = 0          # the audit found no fake ...
    predicted = np.full(1000, 0.0)
    predicted[100:400] = 0.5      # ... where the model said one in two
    estimate, lo, _ = audit_prevalence(predicted, y, audit_y)
    # mean prediction 1/6 among the 900 less a residual of 1/2: below zero, clipped
    assert estimate == pytest.approx(20 / 1000)
    assert lo == pytest.approx(20 / 1000)
