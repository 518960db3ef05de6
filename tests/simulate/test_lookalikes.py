"""Benign look-alikes: company teams and script developers share what fleets share, are legit
in the ground truth, and are reviewed late."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from sybilgnn.simulate import get_scenario, simulate_deliveries
from tests.simulate.measures import fleet_prompt_similarity

EVASIVE = {"scenario": "evasive", "accounts": 20_000, "seed": 7, "events_scale": 0.3}


@pytest.fixture(scope="module")
def evasive(simulated):
    return simulated(**EVASIVE)


@pytest.fixture(scope="module")
def truth(evasive) -> pd.DataFrame:
    return evasive["ground_truth"].merge(evasive["accounts"], on="account_id")


def _members(truth: pd.DataFrame, kind: str) -> pd.DataFrame:
    return truth[truth.lookalike == kind]


def test_truth_names_every_lookalike_and_they_are_legit(evasive, truth) -> None:
    # round(20,000 x 0.03 / 25) = 24 teams of 10-40; round((19,520 - 613) x 0.02) = 378
    assert evasive.summary.lookalikes == {"company_team": 613, "script_developer": 378}
    assert evasive.summary.company_teams == 24
    assert truth.lookalike.value_counts().to_dict() == {
        "": 19_009, "company_team": 613, "script_developer": 378}
    look = truth[truth.lookalike != ""]
    assert not look.is_fake.any() and look.campaign.isna().all() and look.fleet.isna().all()
    team = _members(truth, "company_team")
    assert team.team.str.fullmatch(r"team-\d{3}").all() and team.team.nunique() == 24
    assert (truth[truth.lookalike != "company_team"].team == "").all()
    sizes = team.groupby("team").size()
    assert sizes.sum() == 613 and sizes.min() >= 10 and sizes.max() <= 40


def test_medium_and_hydra_hold_a_few_lookalikes(simulated) -> None:
    counts = {name: simulated(scenario=name, accounts=20_000, seed=7, events_scale=0.02).summary
              for name in ("easy", "medium", "hard", "hydra")}
    assert {n: (s.lookalikes["company_team"], s.company_teams, s.lookalikes["script_developer"])
            for n, s in counts.items()} == {
        "easy": (0, 0, 0), "medium": (125, 4, 97), "hard": (0, 0, 0), "hydra": (247, 8, 193)}


def test_company_teams_sign_up_together_and_share_one_card(evasive, truth) -> None:
    team = _members(truth, "company_team")
    span = team.groupby("team").created_at.agg(lambda t: t.max() - t.min())
    assert (span <= pd.Timedelta(hours=6)).all()
    pay = evasive["payments"].merge(truth[["account_id", "team"]], on="account_id")
    in_team = pay[pay.team != ""]
    assert in_team.groupby("team").instrument_token.nunique().eq(1).all()
    assert in_team.groupby("team").account_id.nunique().to_dict() == \
        team.groupby("team").size().to_dict()                 # every member pays with it
    outsiders = pay[(pay.team == "") & pay.instrument_token.isin(in_team.instrument_token)]
    assert outsiders.empty


def test_company_teams_work_behind_a_few_egress_ips(evasive, truth) -> None:
    ip = evasive["ip_events"].merge(truth[["account_id", "team"]], on="account_id")
    users = ip.groupby("ip").agg(teams=("team", "nunique"), team=("team", "first"),
                                 members=("account_id", "nunique"))
    egress = users[(users.teams == 1) & (users.team != "") & (users.members >= 3)]
    per_team = egress.groupby("team").size()
    assert per_team.index.size == 24 and per_team.between(2, 4).all()
    sessions = ip[ip.team != ""]
    through = sessions.ip.isin(egress.index).groupby(sessions.team).mean()
    assert through.min() > 0.7 and through.mean() > 0.8       # the rest: home and mobile
    cloud = ip[ip.ip.isin(egress.index)].groupby("team").is_datacenter.all()
    assert 0 < cloud.sum() < cloud.size                       # some egress through a cloud NAT


def test_company_teams_send_templated_high_volume_prompts(evasive, truth) -> None:
    prompts = evasive["prompts"]
    team = _members(truth, "company_team")
    as_fleets = team.assign(is_fake=True, fleet=team.team)
    assert fleet_prompt_similarity(prompts, as_fleets) > 0.3
    per_account = prompts.groupby("account_id").size()
    ordinary = truth[(truth.lookalike == "") & ~truth.is_fake].account_id
    assert per_account.reindex(team.account_id).median() > \
        5 * per_account.reindex(ordinary).fillna(0).median()


def test_script_developers_run_around_the_clock(evasive, truth) -> None:
    devs = _members(truth, "script_developer")
    prompts = evasive["prompts"].merge(truth[["account_id", "lookalike", "is_fake"]],
                                       on="account_id").sort_values(["account_id", "timestamp"])
    gaps = prompts.groupby("account_id").timestamp.diff().dt.total_seconds()
    cv = gaps.groupby(prompts.account_id).agg(lambda g: g.std() / g.mean())
    ordinary = truth[(truth.lookalike == "") & ~truth.is_fake].account_id
    assert cv.reindex(devs.account_id).median() < 0.3 < 0.8 < cv.reindex(ordinary).median()
    utc_hours = prompts[prompts.lookalike == "script_developer"].timestamp.dt.hour
    assert utc_hours.value_counts(normalize=True).between(0.03, 0.055).all()   # flat: 1/24
    own = evasive["ip_events"].merge(devs[["account_id"]], on="account_id")
    main_ip = own.groupby(["account_id", "ip"]).size().groupby("account_id").max() \
        / own.groupby("account_id").size()
    assert main_ip.median() > 0.6                              # one script host
    on_vm = own.groupby("account_id").is_datacenter.mean() > 0.5
    assert 0.4 < on_vm.mean() < 0.6                            # half on a cloud VM


def test_lookalikes_are_reviewed_late_and_as_legit(evasive, truth) -> None:
    sc = get_scenario("evasive")
    labels = evasive["labels"].merge(truth, on="account_id", suffixes=("", "_true"))
    labels = labels[labels.source != "audit"]  # the prevalence audit samples them too
    look = labels[labels.lookalike != ""]
    assert (look.label == 0).all() and (look.source == "manual_review").all()
    assert look.campaign.isna().all()
    start = pd.Timestamp("2026-10-01", tz="UTC") - pd.Timedelta(days=180)
    began = look.created_at.where(look.created_at > start, start)
    lag = (look.labelled_at - began) / pd.Timedelta(days=1)
    assert lag.min() >= sc.lookalike_review_lag_days and lag.max() <= 60 + 14
    reviewed = look[look.lookalike == "company_team"]
    assert reviewed.groupby("team").labelled_at.nunique().eq(1).all()   # a team at once
    sizes = truth[truth.team != ""].groupby("team").size()
    assert reviewed.groupby("team").size().equals(sizes[reviewed.team.unique()].sort_index())
    # round(24 x 0.5) = 12 teams and round(378 x 0.5) = 189 developers, less the reviews
    # that would conclude after the window
    assert (reviewed.team.nunique(), int((look.lookalike == "script_developer").sum())) == \
        (11, 165)


def test_review_lag_is_a_knob_and_deliveries_carry_the_lookalikes(tmp_path) -> None:
    """Deliveries hold the look-alike columns; with the default lag their reviews arrive
    weeks after they started, with no lag within days (the 0-14 day spread, signup + 1 day)."""
    args = {"accounts": 3000, "seed": 4, "events_scale": 0.1, "days": 30, "start_day": 150}
    late = simulate_deliveries(tmp_path / "late", scenario="evasive", **args)
    prompt = dataclasses.replace(get_scenario("evasive"), lookalike_review_lag_days=0.0)
    soon = simulate_deliveries(tmp_path / "soon", scenario=prompt, **args)
    assert late.lookalikes == soon.lookalikes == {"company_team": 77, "script_developer": 57}
    start = pd.Timestamp("2026-10-01", tz="UTC") - pd.Timedelta(days=180)
    lags, in_series = {}, {}
    for name, summary in (("late", late), ("soon", soon)):
        truth = pd.read_parquet(summary.out_dir / "truth.parquet")
        assert list(truth.columns[:6]) == ["account_id", "is_fake", "campaign", "fleet",
                                           "lookalike", "team"]
        labels = pd.concat([pd.read_parquet(d / "labels.parquet").assign(day=int(d.name[4:]))
                            for d in sorted(summary.out_dir.glob("day-*"))])
        reviewed = labels[labels.source != "audit"].merge(truth[truth.lookalike != ""],
                                                          on="account_id")
        began = reviewed.created_at.where(reviewed.created_at > start, start)
        lags[name] = (reviewed.labelled_at - began) / pd.Timedelta(days=1)
        in_series[name] = int((reviewed.day > 0).sum())
    assert lags["late"].min() >= 60 and lags["soon"].max() <= 15
    # the series is the window's last 30 days: reviews of look-alikes that started before it
    # arrive inside it when late, and before it (in day-000) when prompt
    assert in_series == {"late": 23, "soon": 1}
