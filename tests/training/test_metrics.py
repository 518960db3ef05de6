from __future__ import annotations

import math

import numpy as np
import pytest

from sybilgnn.training.calibration import (apply_calibrator, choose_threshold, fit_calibrator,
                                           sigmoid)
from sybilgnn.training.metrics import evaluate, expected_calibration_error

Y = np.array([0, 0, 1, 1, -1])
S = np.array([0.1, 0.6, 0.4, 0.9, 0.99])


def test_evaluate_exact_values_ignores_unknown_labels() -> None:
    m = evaluate(Y, S, 0.5, fleets=np.array([-1, -1, 3, 3, 7]))
    assert m["auroc"] == pytest.approx(0.75)
    assert m["auprc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert m["recall_at_1pct_fpr"] == pytest.approx(0.5)
    assert m["precision_at_threshold"] == pytest.approx(0.5)
    assert m["recall_at_threshold"] == pytest.approx(0.5)
    assert m["ece"] == pytest.approx((0.1 + 0.6 + 0.6 + 0.1) / 4)
    assert m["fleet_recall"] == 0.0  # half of fleet 3 flagged is not more than half
    assert (m["n"], m["n_positive"], m["n_flagged"], m["n_fleets"]) == (4, 2, 2, 1)


def test_evaluate_lower_threshold_flags_whole_fleet() -> None:
    m = evaluate(Y, S, 0.35, fleets=np.array([-1, -1, 3, 3, 7]))
    assert m["precision_at_threshold"] == pytest.approx(2 / 3)
    assert m["recall_at_threshold"] == 1.0
    assert m["fleet_recall"] == 1.0


def test_evaluate_single_class_and_no_fleets_are_nan() -> None:
    m = evaluate(np.array([1, 1]), np.array([0.2, 0.8]), 0.5)
    assert math.isnan(m["auroc"]) and math.isnan(m["fleet_recall"])
    assert m["auprc"] == 1.0 and m["recall_at_threshold"] == 0.5


def test_ece_zero_when_perfect_and_bins_by_tenths() -> None:
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0
    # 0.95 and 1.0 share the top bin: |1 - 0.975| averaged with weight 2/3; 0.05 alone
    value = expected_calibration_error(np.array([1, 1, 0]), np.array([0.95, 1.0, 0.05]))
    assert value == pytest.approx((2 * 0.025 + 0.05) / 3)


def test_threshold_is_lowest_reaching_target_precision() -> None:
    y = np.array([0, 0, 1, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert choose_threshold(y, p, 1.0)["threshold"] == pytest.approx(0.7)
    chosen = choose_threshold(y, p, 0.6)  # 0.2 gives 4/6, 0.1 gives 4/7
    assert chosen["threshold"] == pytest.approx(0.2)
    assert chosen["precision"] == pytest.approx(4 / 6)


def test_threshold_falls_back_to_max_f1() -> None:
    chosen = choose_threshold(np.array([1, 0]), np.array([0.4, 0.9]), 0.9)
    assert chosen["threshold"] == pytest.approx(0.4)
    assert chosen["rule"].startswith("max F1")


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_maps_into_unit_interval_and_reduces_ece(method: str) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 20_000)
    y = (rng.random(z.size) < sigmoid(z / 3 - 2)).astype(int)  # raw sigmoid(z) is overconfident
    fit_idx, test_idx = np.arange(10_000), np.arange(10_000, 20_000)
    calibrator = fit_calibrator(z[fit_idx], y[fit_idx], method)
    probs = apply_calibrator(calibrator, z[test_idx])
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    raw = expected_calibration_error(y[test_idx], sigmoid(z[test_idx]))
    calibrated = expected_calibration_error(y[test_idx], probs)
    assert raw > 0.2 and calibrated < 0.02
    if method == "platt":
        assert calibrator["a"] == pytest.approx(1 / 3, abs=0.03)
        assert calibrator["b"] == pytest.approx(-2, abs=0.1)


def test_platt_never_inverts_the_ranking() -> None:
    from sybilgnn.training.calibration import apply_calibrator, fit_calibrator

    # one fake scored below most legitimate accounts: the fitted slope would be negative
    z = np.array([-1.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    y = np.array([1, 0, 0, 0, 0, 0])
    calibrator = fit_calibrator(z, y, "platt")
    assert calibrator["method"] == "identity" and calibrator["why"].startswith("platt slope -")
    probs = apply_calibrator(calibrator, z)
    assert (np.diff(probs) > 0).all()  # the order of the scores survives
