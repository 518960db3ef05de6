"""Who exists and how active they are: legit population, campaigns, fleets, bans.

Everything here is one array per account (vectorised; no loop per account). Accounts are
built in construction order (legit, then each campaign's fleets, then replacements) and
finally sorted by creation time, so ids are sequential in signup order as on a real
platform and fleet members interleave with legit signups of the same hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from sybilgnn.simulate.scenarios import CampaignPlan, Scenario, plan_campaigns
from sybilgnn.simulate.vocab import COUNTRIES, COUNTRY_WEIGHTS

__all__ = [
    "World", "build_population", "WORLD_END", "WORLD_DAYS", "DAY", "HOUR", "PLANS",
    "PROMPT_SAMPLE_RATE", "PROMPT_CAP", "IP_EVENT_CAP",
]

DAY, HOUR = 86_400, 3_600
WORLD_DAYS = 180
# Fixed, seed-independent end of the simulated window, so runs are reproducible.
WORLD_END = int(datetime(2026, 10, 1, tzinfo=timezone.utc).timestamp())
PLANS = ("free", "pro", "team", "api")
LEGIT_PLAN_P = (0.6, 0.3, 0.07, 0.03)
FAKE_PLAN_P = (0.0, 0.65, 0.0, 0.35)
PROMPT_SAMPLE_RATE = 0.2   # the prompts table keeps a uniform sample of interactions...
PROMPT_CAP = 300           # ...and at most this many per account
IP_EVENT_CAP = 150
LEGIT_MEDIAN_INTERACTIONS = 25.0
LEGIT_SIGMA = 1.3
VENUE_SHARE, MOBILE_SHARE, VPN_SHARE = 0.3, 0.45, 0.06
VENUE_MEAN_SIZE = 25


def country_p() -> np.ndarray:
    p = np.asarray(COUNTRY_WEIGHTS, dtype=np.float64)
    return p / p.sum()


@dataclass
class World:
    """Per-account arrays (row i = account ``i``, ids in signup order) plus fleet tables."""

    scenario: Scenario
    plans: list[CampaignPlan]
    start: int
    end: int
    created: np.ndarray          # int64 seconds
    active_start: np.ndarray
    active_end: np.ndarray       # ban time for banned fakes
    banned_at: np.ndarray        # -1 when not banned
    country: np.ndarray          # index into COUNTRIES
    plan: np.ndarray             # index into PLANS
    campaign: np.ndarray         # -1 legit
    fleet: np.ndarray            # global fleet index, -1 legit
    venue: np.ndarray            # -1 none
    mobile: np.ndarray           # bool
    vpn_user: np.ndarray         # bool
    proxy_customer: np.ndarray   # bool (legit customers of the proxy services)
    n_prompts: np.ndarray        # stored prompts
    n_ip_events: np.ndarray
    interactions: np.ndarray     # modelled interactions (prompts are a sample of these)
    fleet_campaign: np.ndarray   # campaign of each fleet
    fleet_names: list[str]
    n_venues: int

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
    """Fleets start in creation bursts; ban waves are answered with replacement bursts."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("created", "banned_at", "campaign", "fleet")}
    fleet_campaign: list[int] = []
    fleet_names: list[str] = []
    for c, cp in enumerate(plans):
        first = len(fleet_campaign)
        fleets = np.arange(first, first + cp.fleets)
        fleet_campaign += [c] * cp.fleets
        fleet_names += [f"{cp.spec.name}-f{i:03d}" for i in range(cp.fleets)]
        cstart = start + cp.spec.start_day * DAY
        fleet_start = cstart + rng.integers(0, int(0.35 * (end - cstart)), cp.fleets)
        fleet_start[0] = cstart
        burst = max(1, int(sc.burst_hours * HOUR))
        wave = np.minimum(fleet_start + burst + rng.integers(10 * DAY, 30 * DAY, cp.fleets),
                          end - 3 * DAY)
        fleet_of = np.repeat(fleets, np.diff(np.linspace(0, cp.originals, cp.fleets + 1)
                                             .round().astype(np.int64)))
        created = fleet_start[fleet_of - first] + rng.integers(0, burst, cp.originals)
        banned_at = np.full(cp.originals, -1, dtype=np.int64)
        banned = rng.choice(cp.originals, size=cp.replacements, replace=False)
        banned_at[banned] = wave[fleet_of[banned] - first] + rng.integers(0, 2 * HOUR, banned.size)
        repl_fleet = fleet_of[banned]
        repl_created = (wave[repl_fleet - first] + HOUR
                        + rng.integers(0, max(2 * HOUR, burst // 4), banned.size))
        cols["created"] += [created, repl_created]
        cols["banned_at"] += [banned_at, np.full(banned.size, -1, dtype=np.int64)]
        cols["campaign"] += [np.full(cp.accounts, c)]
        cols["fleet"] += [fleet_of, repl_fleet]
    out = {k: np.concatenate(v).astype(np.int64) for k, v in cols.items()}
    n = out["created"].size
    fleet_country = rng.choice(len(COUNTRIES), size=len(fleet_names), p=country_p())
    out["country"] = np.where(rng.random(n) < sc.country_mix,
                              rng.choice(len(COUNTRIES), size=n, p=country_p()),
                              fleet_country[out["fleet"]])
    out["plan"] = rng.choice(len(PLANS), size=n, p=FAKE_PLAN_P)
    out["fleet_campaign"] = np.asarray(fleet_campaign, dtype=np.int64)
    out["fleet_names"] = np.asarray(fleet_names, dtype=object)
    return out


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
                      rng.binomial(np.round(interactions).astype(np.int64), PROMPT_SAMPLE_RATE))
    w["interactions"] = np.round(interactions).astype(np.int64)
    w["n_prompts"] = np.clip(stored, 0, PROMPT_CAP).astype(np.int64)
    # automation keeps sessions open longer: fewer IP changes per prompt than people
    base = np.where(fake, 2.0 + 0.06 * w["n_prompts"], 1.0 + 0.3 * w["n_prompts"])
    w["n_ip_events"] = np.minimum(IP_EVENT_CAP, 1 + rng.poisson(base)).astype(np.int64)


def build_population(rng: np.random.Generator, accounts: int, sc: Scenario,
                     events_scale: float) -> World:
    """All accounts with their attributes and volumes, sorted into signup order."""
    plans = plan_campaigns(accounts, sc)
    n_fake = sum(cp.accounts for cp in plans)
    end, start = WORLD_END, WORLD_END - WORLD_DAYS * DAY
    legit = _legit(rng, accounts - n_fake, start, end)
    fakes = _fakes(rng, plans, sc, start, end)
    n_legit, n = accounts - n_fake, accounts
    w: dict[str, np.ndarray] = {
        "created": np.concatenate([legit["created"], fakes["created"]]),
        "banned_at": np.concatenate([np.full(n_legit, -1, np.int64), fakes["banned_at"]]),
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
    w["active_start"] = np.maximum(w["created"], start)
    w["active_end"] = np.where(w["banned_at"] >= 0, w["banned_at"], end)
    _volumes(rng, w, plans, sc, end, events_scale)
    order = np.argsort(w["created"], kind="stable")
    w = {k: v[order] for k, v in w.items()}
    return World(
        scenario=sc, plans=plans, start=start, end=end,
        fleet_campaign=fakes["fleet_campaign"], fleet_names=list(fakes["fleet_names"]),
        n_venues=int(legit["n_venues"][0]), **w,
    )
