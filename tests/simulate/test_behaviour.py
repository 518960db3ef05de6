"""The simulated world shows what it claims: benign sharing, fleet tradecraft, scenario knobs."""

from __future__ import annotations

import pandas as pd
import pytest

from sybilgnn.simulate import get_scenario
from tests.simulate.measures import (
    fleet_ip_mates,
    fleet_prompt_similarity,
    legit_accounts_per_ip,
)

SCENARIO_ORDER = ("easy", "medium", "hard", "hydra")
KNOB_WORLD = {"accounts": 5000, "events_scale": 0.3, "seed": 3}


@pytest.fixture(scope="module")
def by_scenario(simulated):
    return {name: simulated(scenario=name, **KNOB_WORLD) for name in SCENARIO_ORDER}


def test_legit_users_share_ips_with_many_strangers(simulated) -> None:
    world = simulated()
    per_ip = legit_accounts_per_ip(world["ip_events"], world["ground_truth"])
    assert per_ip.max() >= 20                       # carrier NAT / campus egress
    ip = world["ip_events"]
    legit = set(world["ground_truth"].query("not is_fake").account_id)
    legit_dc = ip[ip.account_id.isin(legit) & ip.is_datacenter]
    assert legit_dc.account_id.nunique() >= 20      # VPN users look like datacenter traffic


def test_fleet_proxy_ips_also_carry_legit_traffic(by_scenario) -> None:
    for name in ("medium", "hydra"):
        world = by_scenario[name]
        ip = world["ip_events"].merge(world["ground_truth"], on="account_id")
        mixed = ip.groupby("ip").is_fake.agg(["any", "all"])
        assert ((mixed["any"]) & ~mixed["all"]).sum() >= 5, name


def test_teams_share_a_card_and_popular_prompts_repeat(simulated) -> None:
    world = simulated()
    legit = set(world["ground_truth"].query("not is_fake").account_id)
    pay = world["payments"][lambda d: d.account_id.isin(legit)]
    assert pay.groupby("instrument_token").account_id.nunique().max() >= 3
    prompts = world["prompts"][lambda d: d.account_id.isin(legit)]
    repeated = prompts.groupby("text").account_id.nunique()
    assert repeated.max() >= 20                     # e.g. "explain recursion ..." by strangers


def test_ip_sharing_inside_fleets_falls_from_easy_to_hydra(by_scenario) -> None:
    mates = [fleet_ip_mates(w["ip_events"], w["ground_truth"]) for w in by_scenario.values()]
    assert mates == sorted(mates, reverse=True)
    assert mates[-1] < 0.2 * mates[0]


def test_prompt_near_duplication_falls_from_easy_to_hydra(by_scenario) -> None:
    sims = [fleet_prompt_similarity(w["prompts"], w["ground_truth"]) for w in by_scenario.values()]
    assert sims == sorted(sims, reverse=True)
    assert sims[0] > 0.7 and sims[-1] < 0.2


def test_card_reuse_inside_fleets_follows_the_knob(by_scenario) -> None:
    reuse = {}
    for name, world in by_scenario.items():
        fakes = world["ground_truth"].query("is_fake")
        pay = world["payments"].merge(fakes, on="account_id")
        reuse[name] = pay.groupby("instrument_token").account_id.nunique().mean()
        assert pay.bin.nunique() <= 6                # a few virtual-card issuers only
    assert reuse["easy"] > 3.5 and reuse["hydra"] < 1.3


def test_fleet_load_is_even_and_regular(by_scenario) -> None:
    world = by_scenario["easy"]
    truth = world["ground_truth"]
    prompts = world["prompts"].merge(truth, on="account_id")
    # volume per active day: similar across a campaign's accounts, heavy-tailed for people
    span = prompts.groupby("account_id").timestamp.agg(lambda t: (t.max() - t.min()).days)
    per_account = prompts.groupby("account_id").agg(n=("text", "size"), fake=("is_fake", "first"),
                                                    campaign=("campaign", "first"))
    per_account = per_account[per_account.n >= 5]
    rate = per_account.n / span.reindex(per_account.index).clip(lower=1)
    legit = rate[~per_account.fake]
    coding = rate[per_account.campaign == "agentic_coding"]
    assert coding.quantile(0.75) / coding.quantile(0.25) < 1.5 < legit.quantile(0.75) / legit.quantile(0.25)
    assert legit.std() / legit.mean() > 3 * coding.std() / coding.mean()
    # timing: inter-arrival gaps are regular for fleets, irregular for people
    gaps = prompts.sort_values(["account_id", "timestamp"]).groupby("account_id").timestamp.diff()
    prompts["gap"] = gaps.dt.total_seconds()
    gap_cv = prompts.groupby(["account_id", "is_fake"]).gap.agg(lambda g: g.std() / g.mean())
    assert gap_cv.xs(True, level="is_fake").median() < 0.2
    assert gap_cv.xs(False, level="is_fake").median() > 0.8


def test_fleets_sign_up_in_bursts(by_scenario) -> None:
    for name in ("easy", "hydra"):
        world = by_scenario[name]
        accounts = world["accounts"].merge(world["ground_truth"].query("is_fake"), on="account_id")
        first = accounts.groupby("fleet").created_at.transform("min")
        in_burst = accounts.created_at - first <= pd.Timedelta(hours=get_scenario(name).burst_hours)
        assert in_burst.mean() >= 1 - get_scenario(name).ban_replace_fraction - 0.01


def test_labels_are_partial_dated_and_noisy(simulated) -> None:
    world = simulated(accounts=5000, seed=3, events_scale=0.3)
    sc = get_scenario("medium")
    labels = world["labels"].merge(world["ground_truth"], on="account_id",
                                   suffixes=("", "_true"))
    assert labels.account_id.is_unique
    attributed = labels[labels.campaign.notna()]
    assert (attributed.label == 1).all() and attributed.is_fake.all()
    assert (attributed.campaign == attributed.campaign_true).all()
    assert (attributed.fleet == attributed.fleet_true).all()
    expected = {k: round(v * sc.label_fraction)
                for k, v in world.summary.fakes_per_campaign.items()}
    assert attributed.groupby("campaign").size().to_dict() == expected
    for campaign, count in world.summary.fakes_per_campaign.items():
        assert expected[campaign] < count            # only part of the fakes are known
    when = attributed.groupby("campaign").labelled_at.median()
    assert when["cot_elicitation"] < when["agentic_reasoning"] < when["agentic_coding"]
    assert ((labels.label == 1) & ~labels.is_fake).sum() >= 1     # legit labelled fake
    reviewed = labels[labels.source != "audit"]
    assert ((reviewed.label == 0) & reviewed.is_fake).sum() >= 1  # fake passed review
    benign = reviewed[(reviewed.label == 0) & ~reviewed.is_fake & (reviewed.lookalike == "")]
    legit_total = int((~world["ground_truth"].is_fake).sum())
    assert len(benign) == round(legit_total * sc.reviewed_benign_share)
    assert set(labels.source) == {"trust_safety_investigation", "abuse_report", "manual_review",
                                  "audit"}
    # the prevalence audit: a uniform sample of the otherwise unlabelled, verdict = truth
    audit = labels[labels.source == "audit"]
    assert len(audit) == round(5000 * sc.audit_share)
    assert (audit.label == audit.is_fake.astype(int)).all()
    assert audit.campaign.isna().all()
    unlabelled_fake_share = (world["ground_truth"].is_fake.sum() - reviewed.is_fake.sum()) / (
        5000 - len(reviewed))
    assert abs(audit.is_fake.mean() - unlabelled_fake_share) < 0.02
    assert labels[labels.campaign.isna()].fleet.isna().all()
