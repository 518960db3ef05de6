"""Calibration and the flag threshold refer to the population's share of fakes."""

from __future__ import annotations

import numpy as np
import pytest

from sybilgnn.training.calibration import choose_threshold, prevalence_weights


def test_weights_set_the_positive_share() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    w = prevalence_weights(y, 0.1)
    assert w is not None
    assert w[y == 1].sum() / w.sum() == pytest.approx(0.1)
    assert w.sum() == pytest.approx(len(y))
    assert prevalence_weights(y, None) is None
    assert prevalence_weights(np.array([0, 0]), 0.1) is None


def test_threshold_rises_when_fakes_are_rare_in_the_population() -> None:
    # 4 positives at 0.9, 0.8, 0.7, 0.6; 4 negatives at 0.65, 0.3, 0.2, 0.1.
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.65, 0.3, 0.2, 0.1])
    # As labelled (half fakes): at 0.6 precision is 4/5 = 0.8 >= 0.75, the lowest such cut.
    assert choose_threshold(y, p, 0.75)["threshold"] == pytest.approx(0.6)
    # With 1% fakes a single false positive sinks precision: the cut moves above 0.65.
    chosen = choose_threshold(y, p, 0.75, prevalence_weights(y, 0.01))
    assert chosen["threshold"] == pytest.approx(0.7)
    assert chosen["precision"] == pytest.approx(1.0)


def test_a_refit_is_mapped_onto_the_selection_runs_logits_before_its_calibration() -> None:
    from sybilgnn.training.calibration import apply_calibrator
    from sybilgnn.training.refit import quantile_map

    rng = np.random.default_rng(0)
    selection = rng.normal(size=5000)
    refit = 3.0 * selection + 2.0           # same ranking, another scale
    platt = {"method": "platt", "a": 1.5, "b": -4.0}
    mapped = quantile_map(refit, selection, platt)
    np.testing.assert_allclose(apply_calibrator(mapped, refit), apply_calibrator(platt, selection),
                               atol=2e-3)
    # so a threshold chosen for the selection run flags the same accounts of the refit
    threshold = float(np.quantile(apply_calibrator(platt, selection), 0.98))
    flagged_refit = apply_calibrator(mapped, refit) >= threshold
    flagged_selection = apply_calibrator(platt, selection) >= threshold
    assert abs(int(flagged_refit.sum()) - int(flagged_selection.sum())) <= 2


def test_a_random_audit_sets_the_prevalence_in_place_of_the_configured_guess() -> None:
    import torch

    from sybilgnn.config import load_settings
    from sybilgnn.training import train
    from tests.synthetic import planted_snapshot

    world = planted_snapshot(accounts=3000, fake_share=0.06, fleet_size=20, seed=4)
    store = world.data["account"]
    fake = store.fleet.numpy() >= 0
    y = store.y.numpy()
    rng = np.random.default_rng(0)
    audited = rng.choice(np.flatnonzero(y < 0), size=400, replace=False)
    audit_y = np.full(y.size, -1)
    audit_y[audited] = fake[audited]
    store.audit_y = torch.from_numpy(audit_y)
    overrides = ["model.hidden=16", "train.epochs=40", "train.device=cpu",
                 "train.prevalence=0.02", "train.bootstrap=0"]
    settings = load_settings(None, overrides, environ={})
    torch.set_num_threads(1)
    result = train(world, settings)
    info = result.threshold_info
    assert info["prevalence_source"].startswith(
        f"audit of 400 accounts ({int(fake[audited].sum())} fake), model-assisted: ")
    # the guess was 0.02; the world holds 6 % fakes, and the audit finds them
    assert abs(info["prevalence"] - fake.mean()) < 0.01
    # the interval the operating rule carries is the one the source names
    assert info["prevalence_lo"] < info["prevalence"] < info["prevalence_hi"]
    assert info["prevalence_source"].endswith(
        f"[{info['prevalence_lo']:.4f}, {info['prevalence_hi']:.4f}]")
    # the tuning objective weighs validation at the audit's plain share, which no trial's
    # model moves (the operating point's model-assisted estimate does)
    assert result.metrics["val"]["log_loss_prevalence"] == fake[audited].mean()
    # the registered refit estimates it again with its own cross-fitted probabilities
    from sybilgnn.training.refit import refit_on_all_labels

    refit = refit_on_all_labels(world, settings, result).threshold_info
    assert refit["prevalence_source"].startswith(
        f"audit of 400 accounts ({int(fake[audited].sum())} fake), model-assisted with the "
        "registered model's cross-fitted probabilities: ")
    assert abs(refit["prevalence"] - fake.mean()) < 0.01
    assert refit["prevalence_lo"] <= refit["prevalence"] <= refit["prevalence_hi"]
    assert refit["rule"].startswith("best expected F1 over ")
    # without the audit (or with the option off) the configured share stands
    plain = train(world, load_settings(None, [*overrides, "train.prevalence_from_audit=false"],
                                       environ={}))
    assert plain.threshold_info["prevalence"] == 0.02
    assert plain.threshold_info["prevalence_source"] == "train.prevalence"
    assert plain.threshold_info["prevalence_lo"] == plain.threshold_info["prevalence_hi"] == 0.02
    assert plain.metrics["val"]["log_loss_prevalence"] == 0.02
