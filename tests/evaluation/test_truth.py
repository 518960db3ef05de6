"""Flags against a simulated world's ground truth: exact counts on a hand-made world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sybilgnn.errors import InputError
from sybilgnn.evaluation import read_truth, truth_report

TRUTH = pd.DataFrame({
    "account_id": ["a", "b", "c", "d", "e", "f", "g", "h"],
    "is_fake": [True, True, True, True, False, False, False, False],
    "campaign": ["c1", "c1", "c2", "c2", None, None, None, None],
    "fleet": ["c1-f0", "c1-f0", "c2-f0", "c2-f0", None, None, None, None],
})


def test_population_precision_recall_campaigns_and_fleets() -> None:
    ids = np.array(["h", "g", "f", "e", "d", "c", "b", "a"], dtype=object)  # any row order
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 0.7])
    report = truth_report(ids, scores, scores >= 0.5, TRUTH,
                          {"F1": ["a", "b"], "F2": ["c", "h"], "F3": ["zz"]})
    # flagged: h (legit), c, b, a -> 3 of 4 flags true, 3 of 4 fakes found
    assert (report.accounts, report.fakes, report.flagged, report.true_flags) == (8, 4, 4, 3)
    assert report.precision == 0.75 and report.recall == 0.75
    # ranking: h(.9) b(.8) a(.7) c(.6) d(.4) e(.3) f(.2) g(.1)
    assert report.auprc == pytest.approx((1 / 2 + 2 / 3 + 3 / 4 + 4 / 5) / 4)
    assert report.campaign_recall == {"c1": (2, 2), "c2": (2, 1)}
    # F3's member is unknown to the truth: counted as not fake
    assert report.fleets_written == 3 and report.pure_fleets == 1
    assert report.fleet_purity == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert (report.true_fleets, report.true_fleets_found) == (2, 2)  # c2-f0: half flagged
    assert report.lines()[1] == ("  flagged 4: precision 0.750, recall 0.750; scores' AUPRC "
                                 f"{report.auprc:.3f}")


def test_the_same_measures_among_accounts_without_a_label() -> None:
    ids = np.array(["h", "g", "f", "e", "d", "c", "b", "a"], dtype=object)
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 0.7])
    # labelled: a (fake) and g (legit); the rest the model had to find on its own
    labelled = np.isin(ids, ["a", "g"])
    report = truth_report(ids, scores, scores >= 0.5, TRUTH, labelled=labelled)
    # unlabelled flags: h (legit), c, b -> 2 of 3 true; unlabelled fakes b, c, d -> 2 of 3
    assert (report.unlabelled, report.unlabelled_fakes) == (6, 3)
    assert report.unlabelled_precision == pytest.approx(2 / 3)
    assert report.unlabelled_recall == pytest.approx(2 / 3)
    assert report.unlabelled_campaign_recall == {"c1": (1, 1), "c2": (2, 1)}
    assert report.lines()[4] == ("  among the 6 accounts without a label (3 fake): precision "
                                 "0.667, recall 0.667; by campaign c1 1/1, c2 1/2")
    assert truth_report(ids, scores, scores >= 0.5, TRUTH).unlabelled == 0


def test_accounts_the_truth_does_not_know_are_an_error() -> None:
    with pytest.raises(InputError, match="1 scored accounts are not in the ground truth"):
        truth_report(np.array(["a", "x"], dtype=object), np.array([0.1, 0.2]),
                     np.array([False, False]), TRUTH)


LOOKALIKE_TRUTH = TRUTH.assign(
    lookalike=["", "", "", "", "company_team", "company_team", "company_team",
               "script_developer"],
    team=["", "", "", "", "team-000", "team-000", "team-001", ""])


def test_benign_lookalikes_flagged_per_kind_and_teams_flagged_together() -> None:
    ids = LOOKALIKE_TRUTH.account_id.to_numpy(dtype=object)
    flags = np.array([True, False, True, False, True, True, False, True])
    report = truth_report(ids, flags.astype(float), flags, LOOKALIKE_TRUTH)
    assert report.lookalike_flagged == {"company_team": (3, 2), "script_developer": (1, 1)}
    assert (report.teams, report.teams_flagged) == (2, 1)    # team-000: both members flagged
    assert report.lines()[-2:] == [
        "  benign look-alikes company_team: 2 of 3 flagged (share 0.667); teams with half "
        "their members flagged 1 of 2",
        "  benign look-alikes script_developer: 1 of 1 flagged (share 1.000)"]


def test_truth_files_with_and_without_lookalike_columns_read(tmp_path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    TRUTH.to_parquet(old / "ground_truth.parquet")           # written before look-alikes
    LOOKALIKE_TRUTH.assign(delivered_day=1).to_parquet(new / "truth.parquet")
    assert read_truth(tmp_path) is None
    before = read_truth(old)
    assert list(before.columns) == ["account_id", "is_fake", "campaign", "fleet", "lookalike",
                                    "team"]
    assert (before.lookalike == "").all() and (before.team == "").all()
    pd.testing.assert_frame_equal(read_truth(new), LOOKALIKE_TRUTH)
    ids = TRUTH.account_id.to_numpy(dtype=object)
    report = truth_report(ids, np.zeros(8), np.zeros(8, dtype=bool), before)
    assert report.lookalike_flagged == {} and report.teams == 0
    assert not any("look-alike" in line for line in report.lines())
