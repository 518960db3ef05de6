"""Scenario knobs and the campaign-size formula."""

from __future__ import annotations

import dataclasses

import pytest

from sybilgnn.errors import InputError
from sybilgnn.simulate import CAMPAIGNS, SCENARIOS, get_scenario, plan_campaigns


def test_unknown_scenario_names_the_valid_ones() -> None:
    with pytest.raises(InputError, match="unknown scenario 'nightmare'; valid scenarios: "
                                         "easy, medium, hard, hydra, evasive"):
        get_scenario("nightmare")


def test_scenarios_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SCENARIOS["easy"].paraphrase_rate = 0.9  # type: ignore[misc]


def test_campaign_plan_at_20k_medium() -> None:
    # 480 fakes = round(20,000 x 0.024); 8/27/65 % by largest remainder: 38.4, 129.6, 312
    plans = plan_campaigns(20_000, get_scenario("medium"))
    assert [p.spec.name for p in plans] == ["cot_elicitation", "agentic_reasoning",
                                            "agentic_coding"]
    assert [p.accounts for p in plans] == [38, 130, 312]
    assert [p.replacements for p in plans] == [9, 32, 78]      # floor(count x 0.25)
    assert [p.fleets for p in plans] == [1, 2, 4]              # round(originals / fleet_size)


def test_campaign_plan_at_full_scale_matches_the_public_case() -> None:
    plans = plan_campaigns(1_000_000, get_scenario("hydra"))
    assert [p.accounts for p in plans] == [1920, 6480, 15600]
    interactions = sum(p.accounts * p.spec.interactions_per_account for p in plans)
    assert interactions == 1920 * 80 + 6480 * 520 + 15600 * 830  # about 16.5 million


def test_campaigns_start_at_different_times() -> None:
    assert [c.start_day for c in CAMPAIGNS] == [30, 70, 110]


def test_too_few_accounts_is_an_input_error() -> None:
    with pytest.raises(InputError, match="at least 100 accounts"):
        plan_campaigns(50, get_scenario("easy"))


def test_hydra_is_the_sparsest_scenario() -> None:
    easy, hydra = get_scenario("easy"), get_scenario("hydra")
    assert hydra.proxy_ips_per_account > easy.proxy_ips_per_account
    assert hydra.proxy_event_share < easy.proxy_event_share
    assert hydra.paraphrase_rate > easy.paraphrase_rate
    assert hydra.label_fraction < easy.label_fraction
