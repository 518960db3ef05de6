"""Scenario knobs: how hard the campaigns try to look like ordinary users.

A scenario is a frozen dataclass so a run is fully described by ``(scenario, accounts, seed,
events_scale)``. The three campaigns are the same in every scenario (sizes, topics, start
dates modelled on the public case); the scenario changes their tradecraft, how many benign
look-alikes (company teams, script developers) live among the legit users, and how much of
both the platform has labelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sybilgnn.errors import InputError

__all__ = [
    "CampaignSpec",
    "CampaignPlan",
    "Scenario",
    "CAMPAIGNS",
    "SCENARIOS",
    "MIN_ACCOUNTS",
    "get_scenario",
    "plan_campaigns",
]

MIN_ACCOUNTS = 100


@dataclass(frozen=True)
class CampaignSpec:
    """One distillation campaign: its share of the fake accounts and its workload."""

    name: str
    topic: str
    account_share: float          # share of all fake accounts
    interactions_per_account: float  # at full scale (events_scale=1), over its whole run
    start_day: int                # day of the simulated window the first fleet starts
    fleet_size: int               # mean accounts per fleet (originals)


# About 24,000 fakes and 16.5M interactions at 1M accounts: 1,920 x 80 + 6,480 x 520 +
# 15,600 x 830. Older campaigns start earlier, so the platform labels them earlier.
CAMPAIGNS: tuple[CampaignSpec, ...] = (
    CampaignSpec("cot_elicitation", "chain-of-thought elicitation", 0.08, 80.0, 30, 25),
    CampaignSpec("agentic_reasoning", "agentic reasoning and tool use", 0.27, 520.0, 70, 40),
    CampaignSpec("agentic_coding", "agentic coding", 0.65, 830.0, 110, 60),
)


@dataclass(frozen=True)
class Scenario:
    """Tradecraft and labelling knobs; every field is used by the generator."""

    name: str
    description: str
    fake_fraction: float = 0.024
    # account creation and replacement
    burst_hours: float = 12.0            # spread of a fleet's creation (or, aged, activation) burst
    ban_replace_fraction: float = 0.25   # share of a campaign's accounts that replace banned ones
    aging_days: float = 0.0              # >0: accounts are created over this many days before
                                         # their fleet activates them together in its burst
    paid_plan_shift: float = 0.3         # fakes' plans: the legit mix, this share moved to pro/api
    # IP infrastructure
    proxy_event_share: float = 0.8       # share of fake sessions through the fleet's proxy slice
    proxy_ips_per_account: float = 0.25  # slice size = ceil(this x fleet accounts)
    proxy_datacenter_pref: float = 0.5   # chance a fleet rents a datacenter (not residential) pool
    legit_proxy_customer_share: float = 0.01  # legit accounts that use the same proxy services
    country_mix: float = 0.7             # chance a fake's country is drawn like a legit user's
                                         # (else its fleet's: low values cluster fleets by country)
    infra_isolation: float = 0.0         # share of a campaign's fleets sharing no infrastructure:
                                         # one home IP and one card per account, no proxy
    # payments
    accounts_per_card: float = 3.0       # mean reuse of a fleet card
    bins_per_fleet: int = 2              # BINs a fleet's card batch comes from
    legit_prepaid_share: float = 0.04    # paying legit accounts on the same prepaid BINs
    # prompts
    paraphrase_rate: float = 0.2         # chance a template phrase is swapped for a paraphrase
    slot_diversity: float = 0.3          # share of slot values a fleet fills templates with
    templates_per_fleet: int = 2         # templates of its campaign a fleet uses
    cover_prompt_share: float = 0.05     # fake prompts that copy legit traffic
    context_prefix_share: float = 0.1    # fake prompts with a persona prefix
    style_shift_after_ban: float = 0.0   # share of a campaign's fleets whose replacement accounts
                                         # switch to a new house style and template order
    # load
    load_cv: float = 0.1                 # coefficient of variation of volume inside a campaign
    timing_jitter: float = 0.15          # jitter of inter-arrival times (fraction of the gap)
    human_hours: float = 0.0             # share of a campaign's fleets active in the daytime of
                                         # their accounts' countries instead of around the clock
    # benign look-alikes (legit, is_fake false)
    company_teams: float = 0.0           # share of all accounts in company / evaluation teams of
                                         # 10-40: signup within hours, few egress IPs, one card,
                                         # templated high-volume prompts on one topic
    script_developers: float = 0.0       # share of legit accounts whose scripts send regular,
                                         # high-volume requests around the clock
    # labels as the platform has them
    label_fraction: float = 0.45         # share of each campaign's fakes labelled 1
    investigation_lag_days: float = 40.0  # campaign start -> investigation labels
    false_positive_labels: float = 0.02  # legit labelled 1, as a share of labelled fakes
    false_negative_labels: float = 0.01  # fakes labelled 0, as a share of all fakes
    reviewed_benign_share: float = 0.02  # ordinary legit accounts in the reviewed-benign set (0)
    lookalike_review_share: float = 0.3  # share of company teams (every member) and of script
                                         # developers reviewed as legit (label 0)...
    lookalike_review_lag_days: float = 45.0  # ...this many days (+0-14) after they start
    audit_share: float = 0.05            # accounts drawn uniformly from those without another
                                         # label and reviewed (source "audit", verdict = truth):
                                         # the platform's prevalence measurement

    def __post_init__(self) -> None:
        if self.label_fraction < self.ban_replace_fraction:
            raise ValueError("label_fraction must cover the banned accounts")
        shares = ("paid_plan_shift", "infra_isolation", "human_hours", "style_shift_after_ban",
                  "company_teams", "script_developers", "lookalike_review_share", "audit_share")
        for knob in shares:
            if not 0.0 <= getattr(self, knob) <= 1.0:
                raise ValueError(f"{knob} must be a share from 0 to 1")
        if self.aging_days < 0 or self.lookalike_review_lag_days < 0:
            raise ValueError("aging_days and lookalike_review_lag_days must be >= 0")


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "easy", "heavy sharing of IPs and cards, near-identical prompts, tight bursts",
            burst_hours=2.0, ban_replace_fraction=0.3, proxy_event_share=0.95,
            proxy_ips_per_account=0.08, proxy_datacenter_pref=0.8, legit_proxy_customer_share=0.005,
            country_mix=0.0, accounts_per_card=5.0, bins_per_fleet=1, legit_prepaid_share=0.02,
            paraphrase_rate=0.03, slot_diversity=0.1, templates_per_fleet=1,
            cover_prompt_share=0.0, context_prefix_share=0.0, load_cv=0.05, timing_jitter=0.05,
            label_fraction=0.6, investigation_lag_days=35.0,
        ),
        Scenario("medium", "moderate sharing and paraphrase, a few company teams and script "
                 "developers; the default", company_teams=0.005, script_developers=0.005),
        Scenario(
            "hard", "sparser sharing, more paraphrase and cover traffic, looser timing",
            burst_hours=24.0, ban_replace_fraction=0.2, proxy_event_share=0.6,
            proxy_ips_per_account=1.0, proxy_datacenter_pref=0.3, legit_proxy_customer_share=0.02,
            country_mix=0.8, accounts_per_card=1.5, bins_per_fleet=3, legit_prepaid_share=0.06,
            paraphrase_rate=0.45, slot_diversity=0.6, templates_per_fleet=3,
            cover_prompt_share=0.15, context_prefix_share=0.3, load_cv=0.2, timing_jitter=0.35,
            label_fraction=0.35, investigation_lag_days=45.0,
        ),
        Scenario(
            "hydra", "hydra clusters: sparse sharing inside big proxy pools mixed with legit "
            "customers, paraphrased prompts; no single rule catches a fleet",
            burst_hours=96.0, ban_replace_fraction=0.15, proxy_event_share=0.3,
            proxy_ips_per_account=8.0, proxy_datacenter_pref=0.1, legit_proxy_customer_share=0.04,
            country_mix=0.8, accounts_per_card=1.1, bins_per_fleet=4, legit_prepaid_share=0.08,
            paraphrase_rate=0.75, slot_diversity=1.0, templates_per_fleet=3,
            cover_prompt_share=0.3, context_prefix_share=0.6, load_cv=0.3, timing_jitter=0.6,
            label_fraction=0.25, investigation_lag_days=50.0,
            company_teams=0.01, script_developers=0.01,
        ),
        Scenario(
            "evasive", "hydra tradecraft, and half the fleets share no infrastructure; accounts "
            "aged for weeks, human hours, heavy paraphrase, new style after bans; many company "
            "teams and script developers look like fleets",
            burst_hours=48.0, ban_replace_fraction=0.2, aging_days=30.0, paid_plan_shift=0.15,
            proxy_event_share=0.3, proxy_ips_per_account=8.0, proxy_datacenter_pref=0.1,
            legit_proxy_customer_share=0.04, country_mix=0.9, infra_isolation=0.5,
            accounts_per_card=1.1, bins_per_fleet=4, legit_prepaid_share=0.08,
            paraphrase_rate=0.85, slot_diversity=1.0, templates_per_fleet=3,
            cover_prompt_share=0.3, context_prefix_share=0.6, style_shift_after_ban=1.0,
            load_cv=0.5, timing_jitter=0.6, human_hours=1.0,
            company_teams=0.03, script_developers=0.02,
            label_fraction=0.25, investigation_lag_days=50.0,
            lookalike_review_share=0.5, lookalike_review_lag_days=60.0,
        ),
    )
}


def get_scenario(name: str | Scenario) -> Scenario:
    """The scenario called ``name`` (a Scenario is returned as it is, so a variant made with
    ``dataclasses.replace`` runs too); an InputError lists the valid names otherwise."""
    if isinstance(name, Scenario):
        return name
    try:
        return SCENARIOS[name]
    except KeyError:
        valid = ", ".join(SCENARIOS)
        raise InputError(f"unknown scenario {name!r}; valid scenarios: {valid}") from None


@dataclass(frozen=True)
class CampaignPlan:
    """Account counts of one campaign for a given population size."""

    spec: CampaignSpec
    accounts: int       # originals + replacements
    replacements: int   # accounts created after a ban wave, one per banned original
    fleets: int

    @property
    def originals(self) -> int:
        return self.accounts - self.replacements


def plan_campaigns(accounts: int, scenario: Scenario) -> list[CampaignPlan]:
    """Fakes per campaign: round(accounts x fake_fraction) split by largest remainder.

    Each campaign gets at least one account; replacements are floor(count x
    ban_replace_fraction); fleets are max(1, round(originals / fleet_size)).
    """
    if accounts < MIN_ACCOUNTS:
        raise InputError(f"--accounts {accounts}: simulate at least {MIN_ACCOUNTS} accounts")
    total = max(len(CAMPAIGNS), round(accounts * scenario.fake_fraction))
    exact = [total * c.account_share for c in CAMPAIGNS]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    counts = [max(1, c) for c in counts]
    plans = []
    for spec, count in zip(CAMPAIGNS, counts):
        replacements = math.floor(count * scenario.ban_replace_fraction)
        fleets = max(1, round((count - replacements) / spec.fleet_size))
        plans.append(CampaignPlan(spec, count, replacements, fleets))
    return plans

