"""Nothing separates fakes by construction, and the evasion knobs do what they say."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from sybilgnn.simulate import SCENARIOS, get_scenario, plan_campaigns, simulate_platform
from sybilgnn.simulate.vocab import COUNTRIES, COUNTRY_UTC_OFFSET
from sybilgnn.simulate.world import fake_plan_p
from tests.simulate.measures import TABLE_NAMES, fleet_prompt_similarity

ACCOUNT_ONLY = {"accounts": 20_000, "seed": 7, "events_scale": 0.02}   # signup attributes
EVASIVE = {"scenario": "evasive", "accounts": 20_000, "seed": 7, "events_scale": 0.3}
UTC_OFFSET = dict(zip(COUNTRIES, COUNTRY_UTC_OFFSET))


def signup_auroc(world) -> float:
    """Cross-validated AUROC of a shallow classifier on plan, country and signup hour alone."""
    accounts = world["accounts"].merge(world["ground_truth"], on="account_id")
    features = pd.DataFrame({"plan": accounts.plan.astype("category").cat.codes,
                             "country": accounts.country.astype("category").cat.codes,
                             "hour": accounts.created_at.dt.hour})
    model = HistGradientBoostingClassifier(max_depth=3, max_iter=100, early_stopping=False,
                                           categorical_features=[True, True, False])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    with threadpool_limits(1):     # small trees: threads only contend on a busy machine
        score = cross_val_predict(model, features, accounts.is_fake, cv=folds,
                                  method="predict_proba")[:, 1]
    return float(roc_auc_score(accounts.is_fake, score))


@pytest.fixture(scope="module")
def evasive(simulated):
    return simulated(**EVASIVE)


@pytest.fixture(scope="module")
def fleet_ips(evasive) -> pd.DataFrame:
    """Per fake: its fleet, how many IPs it used, and the most accounts any of them served."""
    ip = evasive["ip_events"]
    served = ip.groupby("ip").account_id.nunique()
    fakes = evasive["ground_truth"].query("is_fake")
    used = ip.merge(fakes[["account_id", "campaign", "fleet"]], on="account_id")
    return used.assign(served=used.ip.map(served)).groupby(
        ["campaign", "fleet", "account_id"]).agg(ips=("ip", "nunique"), served=("served", "max"),
                                                 datacenter=("is_datacenter", "any"))


def test_every_plan_holds_fakes_and_legit_users(simulated) -> None:
    for name in SCENARIOS:
        world = simulated(scenario=name, **ACCOUNT_ONLY)
        accounts = world["accounts"].merge(world["ground_truth"], on="account_id")
        mix = pd.crosstab(accounts.plan, accounts.is_fake)
        assert (mix > 0).all().all() and len(mix) == 4, name
    # the fakes' mix: the legit one with paid_plan_shift of it moved to pro and api
    assert fake_plan_p(0.3).round(3).tolist() == [0.42, 0.39, 0.049, 0.141]
    assert fake_plan_p(0.0).tolist() == [0.6, 0.3, 0.07, 0.03]


def test_signup_attributes_alone_do_not_find_the_fakes_on_medium(simulated) -> None:
    """Plan, country and signup hour overlap on medium; easy clusters each fleet in one
    country (country_mix 0) and a 2-hour burst, which is what it means, and the same
    classifier then finds the fakes: the measure can tell the two apart."""
    medium = signup_auroc(simulated(scenario="medium", **ACCOUNT_ONLY))
    easy = signup_auroc(simulated(scenario="easy", **ACCOUNT_ONLY))
    assert medium < 0.7 < 0.9 < easy


def test_isolated_fleets_share_no_ip_and_no_card(evasive, fleet_ips) -> None:
    sc = get_scenario("evasive")
    per_fleet = fleet_ips.groupby(["campaign", "fleet"]).agg(
        served=("served", "max"), ips=("ips", "max"), datacenter=("datacenter", "any"))
    isolated = per_fleet[per_fleet.served == 1]
    # floor(0.5 x fleets + 0.5) of each campaign's 1, 3 and 4 fleets
    fleets = {p.spec.name: p.fleets for p in plan_campaigns(20_000, sc)}
    assert fleets == {"cot_elicitation": 1, "agentic_reasoning": 3, "agentic_coding": 4}
    assert isolated.groupby("campaign").size().to_dict() == {
        "cot_elicitation": 1, "agentic_reasoning": 2, "agentic_coding": 2}
    assert (isolated.ips == 1).all() and not isolated.datacenter.any()   # one home address
    assert (per_fleet.drop(isolated.index).served >= 5).all()   # the others: shared proxies
    names = set(isolated.index.get_level_values("fleet"))
    pay = evasive["payments"].merge(evasive["ground_truth"], on="account_id")
    cards = pay.groupby("instrument_token").agg(accounts=("account_id", "nunique"),
                                                fleet=("fleet", "first"))
    assert (cards[cards.fleet.isin(names)].accounts == 1).all()
    assert (cards[~cards.fleet.isin(names) & cards.fleet.notna()].accounts.max()) >= 2


def test_aged_accounts_wait_weeks_then_start_together(evasive, simulated) -> None:
    """Creation spreads over aging_days; the first charge comes within two hours of the
    account's activation, and a fleet's originals activate in one burst (burst_hours)."""
    def first_charges(world) -> pd.DataFrame:
        accounts = world["accounts"].merge(world["ground_truth"].query("is_fake"),
                                           on="account_id")
        charged = accounts.account_id.map(world["payments"].groupby("account_id").timestamp.min())
        paid = accounts.assign(charged=charged).dropna(subset="charged")
        return paid.assign(wait=(paid.charged - paid.created_at).dt.total_seconds() / 86_400)

    aged = first_charges(evasive)
    fresh = first_charges(simulated(scenario="hydra", accounts=20_000, seed=7, events_scale=0.3))
    assert aged.wait.median() > 10 and aged.wait.max() < 30 + 2 / 24
    assert fresh.wait.max() < 2 / 24
    burst = aged.charged <= aged.groupby("fleet").charged.transform("min") + pd.Timedelta(hours=49)
    assert burst.mean() >= 0.75          # the originals; replacements start after a ban wave
    created = aged[burst].groupby("fleet").created_at.agg(lambda t: t.max() - t.min())
    assert (created > pd.Timedelta(days=20)).all()


def _local_hour(prompts: pd.DataFrame, accounts: pd.DataFrame) -> pd.Series:
    offset = prompts.account_id.map(accounts.set_index("account_id").country.map(UTC_OFFSET))
    return (prompts.timestamp.dt.hour + offset) % 24


def test_human_hours_fleets_sleep_like_people(evasive, simulated) -> None:
    """Share of prompts sent 01:00-05:59 local time: around the clock 5/24 = 0.21."""
    night = {}
    for name, world in (("evasive", evasive),
                        ("hydra", simulated(scenario="hydra", accounts=20_000, seed=7,
                                            events_scale=0.3))):
        prompts = world["prompts"].merge(world["ground_truth"], on="account_id")
        hour = _local_hour(prompts, world["accounts"])
        is_night = hour.between(1, 5)
        night[name] = {"fake": is_night[prompts.is_fake].mean(),
                       "legit": is_night[~prompts.is_fake & (prompts.lookalike == "")].mean()}
    assert night["hydra"]["fake"] > 0.18 > 0.06 > night["evasive"]["fake"]
    assert abs(night["evasive"]["fake"] - night["evasive"]["legit"]) < 0.02


def test_replacements_switch_style_after_a_ban(simulated) -> None:
    """With style_shift_after_ban a replacement no longer writes like the fleet it joined."""
    def similarity(shift: float) -> tuple[float, float]:
        sc = dataclasses.replace(get_scenario("easy"), style_shift_after_ban=shift)
        world = simulated(scenario=sc, accounts=5000, seed=3, events_scale=0.3)
        truth = world["ground_truth"].merge(world["accounts"], on="account_id").query("is_fake")
        burst_end = truth.groupby("fleet").created_at.transform("min") + pd.Timedelta(hours=2)
        later = truth.assign(fleet=np.where(truth.created_at > burst_end,
                                            truth.fleet + "-replacements", truth.fleet))
        within = fleet_prompt_similarity(world["prompts"], later)
        mixed = fleet_prompt_similarity(world["prompts"], truth)
        return within, mixed

    same_within, same_mixed = similarity(0.0)
    shift_within, shift_mixed = similarity(1.0)
    assert abs(same_within - same_mixed) < 0.02            # one style before and after bans
    assert shift_within > 0.8 and shift_mixed < shift_within - 0.15


def test_evasive_worlds_are_deterministic_per_seed(tmp_path) -> None:
    args = {"accounts": 3000, "scenario": "evasive", "events_scale": 0.2}
    first = simulate_platform(tmp_path / "a", seed=5, **args)
    again = simulate_platform(tmp_path / "b", seed=5, **args)
    other = simulate_platform(tmp_path / "c", seed=6, **args)
    for name in TABLE_NAMES:
        expected = (first.out_dir / f"{name}.parquet").read_bytes()
        assert (again.out_dir / f"{name}.parquet").read_bytes() == expected, name
        assert (other.out_dir / f"{name}.parquet").read_bytes() != expected, name
    assert again == dataclasses.replace(first, out_dir=again.out_dir,
                                        elapsed_s=again.elapsed_s)
