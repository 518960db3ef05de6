"""Benign look-alikes: legit accounts that share what fleets share, for honest reasons.

* **Company / evaluation teams** (``company_teams``): 10-40 colleagues sign up within hours
  on the team's onboarding day, work behind a few egress IPs of their company (or of a cloud
  NAT), all pay with the one company card, and send high-volume templated prompts on the
  team's topic, in office hours.
* **Script developers** (``script_developers``): one person's scripts send regular,
  high-volume requests around the clock, mostly from one address (often a cloud VM).

Both are chosen among the legit accounts after the legit population is drawn, from a
random stream of their own, so a scenario without look-alikes draws exactly what it drew
before they existed; ``lookalike_volumes`` then gives them their volume.
"""

from __future__ import annotations

import numpy as np

from sybilgnn.simulate.common import (
    DAY,
    HOUR,
    PLANS,
    PROMPT_CAP,
    country_p,
    sampled_prompts,
    sessions,
)
from sybilgnn.simulate.scenarios import Scenario
from sybilgnn.simulate.vocab import COUNTRIES

__all__ = ["LOOKALIKES", "COMPANY_TEAM", "SCRIPT_DEVELOPER", "TEAM_MEAN_SIZE",
           "assign_lookalikes", "lookalike_volumes"]

LOOKALIKES = ("", "company_team", "script_developer")   # truth's ``lookalike`` values
COMPANY_TEAM, SCRIPT_DEVELOPER = 1, 2
TEAM_MIN, TEAM_MAX = 10, 40
TEAM_MEAN_SIZE = (TEAM_MIN + TEAM_MAX) / 2
TEAM_SIGNUP_HOURS = 6          # a team's accounts are created within this many hours
TEAM_IN_WINDOW = 0.6           # teams onboarded inside the window (the rest before it)
TEAM_API_SHARE = 0.3           # evaluation teams on the API plan; the others buy team seats
TEAM_DAILY, SCRIPT_DAILY = 6.0, 10.0   # median interactions per active day
VOLUME_SIGMA = 0.5             # log-normal spread of those volumes
SCRIPT_API_SHARE = 0.6         # script developers on the API plan (the others: pro)
SCRIPT_CLOUD_SHARE = 0.5       # script developers whose scripts run on a cloud VM


def assign_lookalikes(rng: np.random.Generator, w: dict[str, np.ndarray], sc: Scenario, *,
                      n_legit: int, start: int, end: int) -> int:
    """Turn legit accounts (rows below ``n_legit``) into look-alikes; the number of teams.

    ``round(accounts x company_teams / 25)`` teams of 10-40 members (uniform), at most half
    of the legit accounts; then ``round(other legit x script_developers)`` developers.
    Adds the ``lookalike``, ``team`` and ``cloud_host`` columns to ``w``.
    """
    n = w["created"].size
    w["lookalike"] = np.zeros(n, dtype=np.int64)
    w["team"] = np.full(n, -1, dtype=np.int64)
    w["cloud_host"] = np.zeros(n, dtype=bool)
    sizes = rng.integers(TEAM_MIN, TEAM_MAX + 1, round(n * sc.company_teams / TEAM_MEAN_SIZE))
    sizes = sizes[np.cumsum(sizes) <= n_legit // 2]
    n_teams = sizes.size
    members = rng.choice(n_legit, size=int(sizes.sum()), replace=False)
    team = np.repeat(np.arange(n_teams), sizes)
    onboarding = np.where(rng.random(n_teams) < TEAM_IN_WINDOW,
                          start + rng.integers(0, end - start - 14 * DAY, n_teams),
                          start - rng.integers(DAY, 365 * DAY, n_teams))
    created = onboarding[team] + rng.integers(0, TEAM_SIGNUP_HOURS * HOUR, members.size)
    team_plan = np.where(rng.random(n_teams) < TEAM_API_SHARE, PLANS.index("api"),
                         PLANS.index("team"))
    w["created"][members] = w["active"][members] = created
    w["country"][members] = rng.choice(len(COUNTRIES), size=n_teams, p=country_p())[team]
    w["plan"][members] = team_plan[team]
    w["venue"][members] = -1              # the team's egress replaces any campus address
    w["proxy_customer"][members] = False
    w["lookalike"][members] = COMPANY_TEAM
    w["team"][members] = team

    others = np.setdiff1d(np.arange(n_legit), members)
    devs = rng.choice(others, size=round(others.size * sc.script_developers), replace=False)
    w["lookalike"][devs] = SCRIPT_DEVELOPER
    w["plan"][devs] = np.where(rng.random(devs.size) < SCRIPT_API_SHARE, PLANS.index("api"),
                               PLANS.index("pro"))
    w["cloud_host"][devs] = rng.random(devs.size) < SCRIPT_CLOUD_SHARE
    return n_teams


def lookalike_volumes(rng: np.random.Generator, w: dict[str, np.ndarray],
                      events_scale: float) -> None:
    """High volume for look-alikes: a steady daily rate over their active days."""
    idx = np.flatnonzero(w["lookalike"] > 0)
    kind = w["lookalike"][idx]
    days = (w["active_end"][idx] - w["active_start"][idx]) / DAY
    daily = np.where(kind == COMPANY_TEAM, TEAM_DAILY, SCRIPT_DAILY)
    interactions = np.maximum(
        1.0, daily * days * rng.lognormal(0.0, VOLUME_SIGMA, idx.size) * events_scale)
    n_prompts = np.clip(sampled_prompts(rng, interactions), 0, PROMPT_CAP).astype(np.int64)
    w["interactions"][idx] = np.round(interactions).astype(np.int64)
    w["n_prompts"][idx] = n_prompts
    w["n_ip_events"][idx] = sessions(rng, n_prompts, kind == SCRIPT_DEVELOPER)
