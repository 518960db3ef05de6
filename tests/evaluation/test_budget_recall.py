"""Recall within the expected-fakes queue: exact on hand-built rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sybilgnn.measures.population import recall_at_budget


def _ranked(order: str) -> np.ndarray:
    """Scores falling from the first character to the last (one account per character)."""
    return np.linspace(1.0, 0.0, len(order))


def test_recall_counts_positives_in_a_queue_of_prevalence_times_candidates() -> None:
    # 100 candidates at prevalence 0.1: a queue of 10. Of 12 positives, 8 rank in it; the
    # two others in the queue are legitimate (labelled or not: labels are not read).
    order = "PPPPLPPPLP" + "PPPP" + "L" * 86
    positives = np.array([c == "P" for c in order])
    out = recall_at_budget(_ranked(order), positives, np.ones(100, bool), 0.1, n_boot=200)
    assert out["budget"] == 10.0
    assert out["budget_positives"] == 12.0
    assert out["recall_at_budget"] == pytest.approx(8 / 12)
    assert out["recall_at_budget_lo"] <= 8 / 12 <= out["recall_at_budget_hi"]
    assert out["recall_at_budget_lo"] < out["recall_at_budget_hi"]


def test_accounts_the_model_learned_from_take_no_slot() -> None:
    # two training-labelled accounts score highest; outside the candidates they cost nothing
    order = "TT" + "P" * 10 + "L" * 88
    positives = np.array([c == "P" for c in order])
    candidates = np.array([c != "T" for c in order])
    out = recall_at_budget(_ranked(order), positives, candidates, 0.1, n_boot=0)
    assert out["budget"] == 10.0  # ceil(0.1 * 98)
    assert out["recall_at_budget"] == pytest.approx(1.0)
    assert math.isnan(out["recall_at_budget_lo"])
    # counted as candidates, they push two positives out of the queue of 10
    everyone = recall_at_budget(_ranked(order), positives, np.ones(100, bool), 0.1, n_boot=0)
    assert everyone["recall_at_budget"] == pytest.approx(8 / 10)


def test_ties_at_the_cut_share_the_remaining_slots() -> None:
    # a constant score: a queue of 2 among 20 tied accounts gives each positive 2/20
    positives = np.zeros(20, bool)
    positives[:10] = True
    out = recall_at_budget(np.full(20, 0.5), positives, np.ones(20, bool), 0.1, n_boot=0)
    assert out["recall_at_budget"] == pytest.approx(0.1)
    # one clear leader, then 19 tied for the one remaining slot
    scores = np.full(20, 0.5)
    scores[0] = 0.9
    out = recall_at_budget(scores, positives, np.ones(20, bool), 0.1, n_boot=0)
    assert out["recall_at_budget"] == pytest.approx((1 + 9 / 19) / 10)


def test_too_few_positives_is_not_measurable() -> None:
    positives = np.zeros(100, bool)
    positives[:9] = True
    out = recall_at_budget(_ranked("x" * 100), positives, np.ones(100, bool), 0.1)
    assert math.isnan(out["recall_at_budget"])
    assert out["budget_positives"] == 9.0
