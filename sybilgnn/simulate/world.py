"""Who exists and how active they are: legit population, campaigns, fleets, bans.

Everything here is one array per account (vectorised; no loop per account). Accounts are
built in construction order (legit, then each campaign's fleets, then replacements); some
legit accounts then become benign look-alikes (``lookalikes``, drawn from a stream of their
own so the rest of the population does not move), and all are finally sorted by creation
time, so ids are sequential in signup order as on a real platform and fleet members
interleave with legit signups of the same hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sybilgnn.simulate.common import (
    DAY,
    HOUR,
    IP_EVENT_CAP,
    PLANS,
    PROMPT_CAP,
    PROMPT_SAMPLE_RATE,
    WORLD_DAYS,
    WORLD_END,
    country_p,
    sampled_prompts,
    sessions,
)
from sybilgnn.simulate.lookalikes import LOOKALIKES, assign_lookalikes, lookalike_volumes
from sybilgnn.simulate.scenarios import CampaignPlan, Scenario, plan_campaigns
from sybilgnn.simulate.vocab import COUNTRIES

__all__ = [
    "World", "build_population", "WORLD_END", "WORLD_DAYS", "DAY", "HOUR", "PLANS",
    "PROMPT_SAMPLE_RATE", "PROMPT_CAP", "IP_EVENT_CAP", "LOOKALIKES", "country_p",
    "fake_plan_p",
]

LEGIT_PLAN_P = (0.6, 0.3, 0.07, 0.03)
# What a campaign buys when it pays beyond the legit mix: pro seats, and the API for volume.
PAID_PLAN_P = (0.0, 0.6, 0.0, 0.4)
LEGIT_MEDIAN_INTERACTIONS = 25.0
LEGIT_SIGMA = 1.3
VENUE_SHARE, MOBILE_SHARE, VPN_SHARE = 0.3, 0.45, 0.06
VENUE_MEAN_SIZE = 25


def fake_plan_p(paid_plan_shift: float) -> np.ndarray:
    """Fakes' plan mix: the legit mix with ``paid_plan_shift`` of it moved to pro/api.

    A free plan's rate limits cost a distillation campaign accounts, so it leans to paid
    plans, but some campaigns run many free accounts: the mixes overlap, and no plan is
    fake-only or legit-only.
    """
    legit, paid = np.asarray(LEGIT_PLAN_P), np.asarray(PAID_PLAN_P)
    return (1.0 - paid_plan_shift) * legit + paid_plan_shift * paid


@dataclass
class World:
    """Per-account arrays (row i = account ``i``, ids in signup order) plus fleet tables."""

    scenario: Scenario
    plans: list[CampaignPlan]
    start: int
    end: int
    created: np.ndarray          # int64 seconds
    active_start: np.ndarray     # aged fakes: when their fleet activates them
    active_end: np.ndarray       # ban time for banned fakes
    banned_at: np.ndarray        # -1 when not banned
    replacement: np.ndarray      # bool: a fake created to replace a banned one
    country: np.ndarray          # index into COUNTRIES
    plan: np.ndarray             # index into PLANS
    campaign: np.ndarray         # -1 legit
    fleet: np.ndarray            # global fleet index, -1 legit
    venue: np.ndarray            # -1 none
    mobile: np.ndarray           # bool
    vpn_user: np.ndarray         # bool
    proxy_customer: np.ndarray   # bool (legit customers of the proxy services)
    lookalike: np.ndarray        # index into LOOKALIKES (0: an ordinary account)
    team: np.ndarray             # company team of a look-alike, -1 none
    cloud_host: np.ndarray       # bool: a script developer whose scripts run on a cloud VM
    n_prompts: np.ndarray        # stored prompts
    n_ip_events: np.ndarray
    interactions: np.ndarray     # modelled interactions (prompts are a sample of these)
    fleet_campaign: np.ndarray   # campaign of each fleet
    fleet_names: list[str]
    fleet_isolated: np.ndarray   # bool per fleet: no proxy slice, no shared card
    fleet_human: np.ndarray      # bool per fleet: active in human hours
    fleet_shifted: np.ndarray    # bool per fleet: replacements write in a new style
    n_venues: int
    n_teams: int

    @property
    def n(self) -> int:
        return int(self.created.size)

    @property
    def is_fake(self) -> np.ndarray:
        return self.campaign >= 0


def _legit(rng: np.random.Generator, n: int, start: int, end: int) -> dict[str, np.ndarray]:
    country = rng.choice(len(COUNTRIES), size=n, p=country_p())
    plan = rng.choice(len(PLANS), size=n, p=LEGIT_PLAN_P)
    existing = rng.random(n) < 0.7
    created = np.where(existing, start - rng.integers(DAY, 730 * DAY, n),
                       start + rng.integers(0, end - start - HOUR, n))
    # offices and universities: a few big, many small (Zipf-like membership)
    n_venues = max(3, round(n * VENUE_SHARE / VENUE_MEAN_SIZE))
    weight = 1.0 / (np.arange(n_venues) + 8.0) ** 1.3
    venue = np.where(rng.random(n) < VENUE_SHARE,
                     rng.choice(n_venues, size=n, p=weight / weight.sum()), -1)
    venue_country = rng.choice(len(COUNTRIES), size=n_venues, p=country_p())
    member = venue >= 0
    country = np.where(member, venue_country[np.maximum(venue, 0)], country)
    # a course or a team onboarding: many members of one venue sign up within hours
    onboarding = start - rng.integers(0, 365 * DAY, n_venues)
    onboarding = np.where(rng.random(n_venues) < 0.5,
                          start + rng.integers(0, end - start - 7 * DAY, n_venues), onboarding)
    burst = member & (rng.random(n) < 0.3)
    created = np.where(burst, onboarding[np.maximum(venue, 0)] + rng.integers(0, 6 * HOUR, n),
                       created)
    return {
        "created": created.astype(np.int64), "country": country, "plan": plan,
        "venue": venue, "mobile": rng.random(n) < MOBILE_SHARE,
        "vpn_user": rng.random(n) < VPN_SHARE, "n_venues": np.array([n_venues]),
    }


def _fakes(rng: np.random.Generator, plans: list[CampaignPlan], sc: Scenario, start: int,
           end: int) -> dict[str, np.ndarray]:
    """Fleets activate in bursts; ban waves are answered with replacement bursts.

    Without aging an account is created when it activates; with ``aging_days`` it was
    created up to that many days earlier and waited (replacements too: a warm reserve).
    """
    cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("active", "banned_at", "campaign", "fleet",
                                          "replacement")}
    fleet_campaign: list[int] = []
    fleet_names: list[str] = []
    for c, cp in enumerate(plans):
        first = len(fleet_campaign)
        fleet_campaign += [c] * cp.fleets
        fleet_names += [f"{cp.spec.name}-f{i:03d}" for i in range(cp.fleets)]
        for key, arrays in _campaign_fakes(rng, cp, c, first, sc, start, end).items():
            cols[key] += arrays
    out = {k: np.concatenate(v).astype(np.int64) for k, v in cols.items()}
    out["replacement"] = out["replacement"].astype(bool)
    n = out["active"].size
    fleet_country = rng.choice(len(COUNTRIES), size=len(fleet_names), p=country_p())
    out["country"] = np.where(rng.random(n) < sc.country_mix,
                              rng.choice(len(COUNTRIES), size=n, p=country_p()),
                              fleet_country[out["fleet"]])
    out["plan"] = rng.choice(len(PLANS), size=n, p=fake_plan_p(sc.paid_plan_shift))
    out["created"] = out["active"]
    if sc.aging_days > 0:
        waited = rng.integers(HOUR, max(2 * HOUR, int(sc.aging_days * DAY)), n)
        out["created"] = out["active"] - waited
    out["fleet_campaign"] = np.asarray(fleet_campaign, dtype=np.int64)
    out["fleet_names"] = np.asarray(fleet_names, dtype=object)
    return out


def _campaign_fakes(rng: np.random.Generator, cp: CampaignPlan, c: int, first: int,
                    sc: Scenario, start: int, end: int) -> dict[str, list[np.ndarray]]:
    """One campaign's originals and replacements: activation, ban, fleet (global numbers
    from ``first``); the originals' columns first, then the replacements'."""
    fleets = np.arange(first, first + cp.fleets)
    cstart = start + cp.spec.start_day * DAY
    fleet_start = cstart + rng.integers(0, int(0.35 * (end - cstart)), cp.fleets)
    fleet_start[0] = cstart
    burst = max(1, int(sc.burst_hours * HOUR))
    wave = np.minimum(fleet_start + burst + rng.integers(10 * DAY, 30 * DAY, cp.fleets),
                      end - 3 * DAY)
    fleet_of = np.repeat(fleets, np.diff(np.linspace(0, cp.originals, cp.fleets + 1)
                                         .round().astype(np.int64)))
    active = fleet_start[fleet_of - first] + rng.integers(0, burst, cp.originals)
    banned_at = np.full(cp.originals, -1, dtype=np.int64)
    banned = rng.choice(cp.originals, size=cp.replacements, replace=False)
    banned_at[banned] = wave[fleet_of[banned] - first] + rng.integers(0, 2 * HOUR, banned.size)
    repl_fleet = fleet_of[banned]
    repl_active = (wave[repl_fleet - first] + HOUR
                   + rng.integers(0, max(2 * HOUR, burst // 4), banned.size))
    return {"active": [active, repl_active],
            "banned_at": [banned_at, np.full(banned.size, -1, dtype=np.int64)],
            "campaign": [np.full(cp.accounts, c)],
            "fleet": [fleet_of, repl_fleet],
            "replacement": [np.zeros(cp.originals), np.ones(banned.size)]}


def _volumes(rng: np.random.Generator, w: dict[str, np.ndarray], plans: list[CampaignPlan],
             sc: Scenario, end: int, events_scale: float) -> None:
    """Heavy-tailed legit usage; flat, evenly spread fleet load over each account's life."""
    n = w["created"].size
    fake = w["campaign"] >= 0
    active_days = (w["active_end"] - w["active_start"]) / DAY
    legit = rng.lognormal(np.log(LEGIT_MEDIAN_INTERACTIONS), LEGIT_SIGMA, n) * active_days / WORLD_DAYS
    per_account = np.array([cp.spec.interactions_per_account for cp in plans])
    cstart = np.array([WORLD_END - (WORLD_DAYS - cp.spec.start_day) * DAY for cp in plans])
    camp = np.maximum(w["campaign"], 0)
    rate = per_account[camp] / ((end - cstart[camp]) / DAY)
    sigma = np.sqrt(np.log1p(sc.load_cv ** 2))
    fake_volume = rate * active_days * rng.lognormal(-sigma ** 2 / 2, sigma, n)
    # calibrate: each campaign's total is accounts x interactions_per_account (the public case)
    target = np.array([cp.accounts * cp.spec.interactions_per_account for cp in plans])
    modelled = np.bincount(camp[fake], weights=fake_volume[fake], minlength=len(plans))
    fake_volume = fake_volume * (target / np.maximum(modelled, 1e-9))[camp]
    interactions = np.maximum(1.0, np.where(fake, fake_volume, legit) * events_scale)
    stored = np.where(fake, np.round(interactions * PROMPT_SAMPLE_RATE),
                      sampled_prompts(rng, interactions))
    w["interactions"] = np.round(interactions).astype(np.int64)
    w["n_prompts"] = np.clip(stored, 0, PROMPT_CAP).astype(np.int64)
    w["n_ip_events"] = sessions(rng, w["n_prompts"], fake)


def build_population(rng: np.random.Generator, accounts: int, sc: Scenario,
                     events_scale: float, *, lookalike_rng: np.random.Generator) -> World:
    """All accounts with their attributes and volumes, sorted into signup order.

    ``lookalike_rng`` draws the benign look-alikes, so a scenario without them leaves every
    other draw as it was.
    """
    plans = plan_campaigns(accounts, sc)
    n_fake = sum(cp.accounts for cp in plans)
    end, start = WORLD_END, WORLD_END - WORLD_DAYS * DAY
    legit = _legit(rng, accounts - n_fake, start, end)
    fakes = _fakes(rng, plans, sc, start, end)
    n_legit, n = accounts - n_fake, accounts
    w: dict[str, np.ndarray] = {
        "created": np.concatenate([legit["created"], fakes["created"]]),
        "active": np.concatenate([legit["created"], fakes["active"]]),
        "banned_at": np.concatenate([np.full(n_legit, -1, np.int64), fakes["banned_at"]]),
        "replacement": np.concatenate([np.zeros(n_legit, bool), fakes["replacement"]]),
        "country": np.concatenate([legit["country"], fakes["country"]]),
        "plan": np.concatenate([legit["plan"], fakes["plan"]]),
        "campaign": np.concatenate([np.full(n_legit, -1, np.int64), fakes["campaign"]]),
        "fleet": np.concatenate([np.full(n_legit, -1, np.int64), fakes["fleet"]]),
        "venue": np.concatenate([legit["venue"], np.full(n_fake, -1)]),
        "mobile": np.concatenate([legit["mobile"], np.zeros(n_fake, bool)]),
        "vpn_user": np.concatenate([legit["vpn_user"], np.zeros(n_fake, bool)]),
        "proxy_customer": np.concatenate([rng.random(n_legit) < sc.legit_proxy_customer_share,
                                          np.zeros(n_fake, bool)]),
    }
    n_teams = assign_lookalikes(lookalike_rng, w, sc, n_legit=n_legit, start=start, end=end)
    w["active_start"] = np.maximum(w.pop("active"), start)
    w["active_end"] = np.where(w["banned_at"] >= 0, w["banned_at"], end)
    _volumes(rng, w, plans, sc, end, events_scale)
    lookalike_volumes(lookalike_rng, w, events_scale)
    fleet_campaign = fakes["fleet_campaign"]
    flags = {name: _fleets_chosen(rng, fleet_campaign, share) for name, share in (
        ("isolated", sc.infra_isolation), ("human", sc.human_hours),
        ("shifted", sc.style_shift_after_ban))}
    order = np.argsort(w["created"], kind="stable")
    w = {k: v[order] for k, v in w.items()}
    return World(
        scenario=sc, plans=plans, start=start, end=end,
        fleet_campaign=fleet_campaign, fleet_names=list(fakes["fleet_names"]),
        fleet_isolated=flags["isolated"], fleet_human=flags["human"],
        fleet_shifted=flags["shifted"], n_venues=int(legit["n_venues"][0]), n_teams=n_teams,
        **w,
    )


def _fleets_chosen(rng: np.random.Generator, fleet_campaign: np.ndarray,
                   share: float) -> np.ndarray:
    """Per fleet, whether it is one of ``floor(share x fleets + 0.5)`` of its campaign's
    fleets, chosen at random: exact counts, even for a campaign of one fleet."""
    if share <= 0 or fleet_campaign.size == 0:
        return np.zeros(fleet_campaign.size, dtype=bool)
    order = np.lexsort((rng.random(fleet_campaign.size), fleet_campaign))
    ordered = fleet_campaign[order]
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size) - np.searchsorted(ordered, ordered)
    return rank < np.floor(share * np.bincount(fleet_campaign)[fleet_campaign] + 0.5)
