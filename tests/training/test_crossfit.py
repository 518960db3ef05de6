"""Cross-fitted operating point: every labelled account scored by a model that never saw it."""

from __future__ import annotations

import numpy as np
import pytest

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.training import TrainResult
from sybilgnn.training.crossfit import crossfit_folds, operating_point, out_of_fold_logits
from sybilgnn.training.inputs import AccountLabels, account_labels


def _labels(n_fleets: int = 6, fleet_size: int = 5, n_legit: int = 60,
            unlabelled: int = 10) -> AccountLabels:
    n_fake = n_fleets * fleet_size
    y = np.r_[np.ones(n_fake, np.int64), np.zeros(n_legit, np.int64),
              -np.ones(unlabelled, np.int64)]
    fleets = np.r_[np.repeat(np.arange(n_fleets), fleet_size), -np.ones(n_legit + unlabelled,
                                                                         np.int64)]
    return AccountLabels(y, {}, fleets.astype(np.int64))


def test_folds_cover_every_label_once_keep_fleets_whole_and_hold_both_classes() -> None:
    labels = _labels()
    folds = crossfit_folds(labels, 5, seed=0, group_fleets=True)
    assert folds is not None and len(folds) == 5
    held = np.concatenate(folds)
    assert sorted(held.tolist()) == list(range(90))          # labelled, once each
    for fold in folds:
        assert set(labels.y[fold]) == {0, 1}
        fleets_here = set(labels.fleets[fold][labels.fleets[fold] >= 0].tolist())
        for fleet in fleets_here:                             # whole fleets only
            assert (labels.fleets[fold] == fleet).sum() == 5


def test_folds_shrink_to_the_labelled_fleets_and_give_up_below_two() -> None:
    folds = crossfit_folds(_labels(n_fleets=3), 5, seed=0, group_fleets=True)
    assert folds is not None and len(folds) == 3
    assert crossfit_folds(_labels(n_fleets=1), 5, seed=0, group_fleets=True) is None
    # without grouping, fleet-mates are split across folds like any account
    folds = crossfit_folds(_labels(n_fleets=1), 5, seed=0)
    assert folds is not None and len(folds) == 5
    assert all((_labels(n_fleets=1).y[f] == 1).sum() == 1 for f in folds)


def test_out_of_fold_logits_are_mapped_onto_one_scale_before_the_threshold() -> None:
    labels = _labels()
    rng = np.random.default_rng(0)
    truth = np.where(labels.y == 1, 2.0, -2.0) + rng.normal(0, 0.5, len(labels.y))
    selection_logits = truth.copy()
    calls: list[np.ndarray] = []

    def fit_fold(train_on: np.ndarray) -> np.ndarray:
        calls.append(train_on)
        scale = 1.0 + len(calls)                      # every fold model on its own scale
        return scale * truth + 10.0 * len(calls)

    fitted = out_of_fold_logits(labels, fit_fold, selection_logits, folds=5, seed=0)
    assert fitted is not None
    result = operating_point(labels, *fitted, selection_logits, method="platt",
                             target_precision=0.9, prevalence=0.3, n_boot=0, seed=0)
    assert result.folds == 5 == len(calls)
    assert (result.positives, result.negatives) == (30, 60)
    for train_on in calls:                            # never an unlabelled account
        assert (labels.y[train_on] >= 0).all()
    # mapped back onto the selection scale the folds agree, so the ranking is perfect
    assert result.metrics["auprc"] == pytest.approx(1.0)
    assert result.metrics["recall_at_threshold"] == pytest.approx(1.0)
    assert result.threshold_info["source"] == "cross-fitted, 5 folds"


def test_the_queue_leaves_out_accounts_a_label_or_audit_has_decided() -> None:
    labels = _labels(unlabelled=60)
    n = len(labels.y)
    unlabelled = np.flatnonzero(labels.y < 0)
    audit = np.full(n, -1)
    audit[unlabelled[:10]] = 0
    audit[unlabelled[10:12]] = 1                      # two fakes the audit found
    labels.audit_y = audit
    logits = np.where(labels.y == 1, 3.0, -3.0)
    logits[unlabelled[12:20]] = 3.0                   # eight undecided accounts rank as fakes
    fitted = out_of_fold_logits(labels, lambda _: logits, logits, folds=5, seed=0)
    assert fitted is not None
    info = operating_point(labels, *fitted, logits, method="platt", target_precision=0.9,
                           prevalence=0.3, n_boot=0, seed=0).threshold_info
    # the queue: neither labelled nor audited
    assert info["queue"] == n - 90 - 12
    # expected fakes among them: 0.3 x n less the 30 labelled and 2 audited fakes
    assert info["rule"].startswith(f"lowest with estimated queue precision >= 0.9 "
                                   f"({0.3 * n - 32:.0f} expected fakes among {n - 102} ")
    assert info["expected_flags"] == 8              # the known fakes are not new flags


def test_the_population_threshold_ignores_mislabelled_legit_accounts() -> None:
    from sybilgnn.training.calibration import choose_threshold, population_threshold

    # 1,000 accounts, 50 fakes ranked above every legitimate account (perfect ranking)
    population = np.r_[np.linspace(0.60, 0.99, 50), np.linspace(0.01, 0.30, 950)]
    labelled_fakes = population[:50:2]                        # 25 held-out labelled fakes
    # the labelled legit accounts: 300 real ones and 2 fakes the platform labelled legit
    labelled_legit = np.r_[population[50:350], population[[44, 46]]]
    y = np.r_[np.ones(25), np.zeros(302)].astype(np.int64)
    probs = np.r_[labelled_fakes, labelled_legit]
    by_labels = choose_threshold(y, probs, 0.9, prevalence_weights_for(y, 0.05))
    # read off the labels, the threshold must clear both mislabelled fakes: 1 fake in 25
    assert by_labels["threshold"] > population[46] and by_labels["recall"] == 0.04
    chosen = population_threshold(labelled_fakes, population, 0.05 * 1000, 0.9)
    # 50 expected fakes x recall / flagged >= 0.9 holds down to 55 flags: 50 fakes, 5 legit
    assert chosen["expected_flags"] == 55
    assert chosen["threshold"] == pytest.approx(population[50:][np.argsort(-population[50:])][4])
    assert chosen["precision"] == pytest.approx(50 / 55)
    assert chosen["recall"] == 1.0


def test_expected_f1_holds_the_gap_where_the_precision_rule_follows_a_high_estimate() -> None:
    from sybilgnn.training.calibration import population_threshold

    # 1,000 accounts, 50 fakes ranked above every legitimate account; the audit's estimate
    # says 60 fakes, anywhere from 40 to 80
    population = np.r_[np.linspace(0.60, 0.99, 50), np.linspace(0.01, 0.30, 950)]
    labelled_fakes = population[:50:2]
    by_precision = population_threshold(labelled_fakes, population, 60, 0.9,
                                        expected_interval=(40, 80), rule="precision")
    # 60 x recall 1 / flagged >= 0.9 down to 66 flags: 16 legitimate accounts flagged
    assert by_precision["expected_flags"] == 66
    chosen = population_threshold(labelled_fakes, population, 60, 0.9,
                                  expected_interval=(40, 80), rule="expected_f1")
    # centred on the queue's own count, not the point 60: flagged / held-out recall at its
    # largest, 17 flags holding 8 of the 25 labelled fakes (53); three legitimate accounts
    # come in, against sixteen for the precision rule
    assert chosen["expected_fakes"] == pytest.approx(17 / (8 / 25))
    assert chosen["expected_flags"] == 53
    assert chosen["threshold"] == pytest.approx(np.sort(population[50:])[-3])
    assert (chosen["recall"], chosen["precision"]) == (1.0, 1.0)  # estimated at the centre
    assert (chosen["precision_lo"], chosen["precision_hi"]) == (pytest.approx(40 / 53), 1.0)
    assert chosen["rule"].startswith("best expected F1 over 40-80 expected fakes among 1000 "
                                     "undecided accounts, centred on 53 (the queue's own "
                                     "count 53, the prevalence's 60)")
    with pytest.raises(ValueError, match="unknown operating rule"):
        population_threshold(labelled_fakes, population, 60, 0.9, rule="recall")


def test_expected_f1_still_flags_new_campaigns_that_score_below_the_labelled_ones() -> None:
    from sybilgnn.training.calibration import population_threshold, queue_fake_count

    # the labelled fakes (held out) score 0.60-0.99; the queue's 50 fakes, of a campaign
    # nobody labelled, only 0.20-0.50, still above its 950 legitimate accounts
    labelled_fakes = np.linspace(0.60, 0.99, 25)
    queue = np.r_[np.linspace(0.20, 0.50, 50), np.linspace(0.01, 0.15, 950)]
    chosen = population_threshold(labelled_fakes, queue, 50, 0.95, expected_interval=(40, 60),
                                  rule="expected_f1")
    # the labelled fakes' recall is 1 at every queue score; flags bound the true flags, so
    # flagging only 40 cannot mean recall 1: the rule goes down to the gap
    assert chosen["expected_flags"] == 50
    assert chosen["threshold"] == pytest.approx(0.20)
    assert "the queue's own count n/a" in chosen["rule"]  # no threshold in the 0.3-0.95 band
    by_precision = population_threshold(labelled_fakes, queue, 50, 0.95, rule="precision")
    assert by_precision["expected_flags"] == 52  # 50 / 52 >= 0.95: two legitimate flags
    # the count: flagged / recall where recall is 0.3-0.95
    recall = np.array([1.0, 0.9, 0.5, 0.2])
    flagged = np.array([400, 330, 160, 60])
    assert queue_fake_count(recall, flagged) == pytest.approx(max(330 / 0.9, 160 / 0.5))
    assert queue_fake_count(np.array([1.0, 0.1]), np.array([5, 1])) is None


def prevalence_weights_for(y: np.ndarray, prevalence: float) -> np.ndarray:
    from sybilgnn.training.calibration import prevalence_weights

    weights = prevalence_weights(y, prevalence)
    assert weights is not None
    return weights


def test_the_registered_refit_takes_its_operating_point_from_every_label(
        world: Snapshot, settings: Settings, trained: TrainResult) -> None:
    from sybilgnn.training.calibration import apply_calibrator
    from sybilgnn.training.predict import load_model, predict_logits
    from sybilgnn.training.refit import refit_on_all_labels

    labels = account_labels(trained.preprocessor.transform(world))
    refit = refit_on_all_labels(world, settings, trained)
    info = refit.threshold_info
    assert info["positives"] == int((labels.y == 1).sum())
    assert info["negatives"] == int((labels.y == 0).sum())
    assert info["validation_threshold"] == trained.threshold
    # train.prevalence, no audit: the expected fakes are a point
    expected = info["expected_fakes"]
    assert info["rule"].startswith(f"best expected F1 over {expected:.0f} expected fakes "
                                   f"among {info['queue']} undecided accounts, centred on "
                                   f"{expected:.0f} (the queue's own count ")
    assert info["precision_lo"] == info["precision"] == info["precision_hi"]
    assert refit.threshold == info["threshold"]
    assert "out-of-fold logits of all" in refit.fitted_on["calibration_and_threshold"]
    assert set(refit.metrics) == set(trained.metrics) | {"crossfit"}
    # the threshold read on the refit's own scores flags what the cross-fit measured
    snapshot = trained.preprocessor.transform(world)
    probs = apply_calibrator(refit.calibrator, predict_logits(
        load_model(refit.model_config, refit.state_dict), snapshot, "cpu"))
    labelled = labels.y >= 0
    recall = float(((probs >= refit.threshold) & (labels.y == 1)).sum() / (labels.y == 1).sum())
    assert recall >= refit.metrics["crossfit"]["recall_at_threshold"] - 0.05
    assert labelled.sum() == info["positives"] + info["negatives"]

    off = settings.model_copy(update={"train": settings.train.model_copy(
        update={"crossfit_folds": 0})})
    plain = refit_on_all_labels(world, off, trained)
    assert plain.threshold == trained.threshold and "crossfit" not in plain.metrics
