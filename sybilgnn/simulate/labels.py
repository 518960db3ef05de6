"""Labels as a platform holds them: partial, dated, attributed, and slightly wrong.

Per campaign, ``round(accounts x label_fraction)`` fakes are labelled 1: every banned
account at its ban time (trust & safety acted on it), the rest when the campaign's
investigation concludes (campaign start + lag, so older campaigns are labelled earlier).
Noise both ways: a few legit accounts labelled 1 (abuse reports), a few fakes labelled 0 (a
reviewer passed them). A sample of ordinary legit accounts is labelled 0 as the
reviewed-benign set. Benign look-alikes are reviewed late: a share of the company teams
(every member at once) and of the script developers is labelled 0 ``lookalike_review_lag_days``
after they start, because a team behind one egress and one card is exactly what an analyst
must look at before clearing it. Last, a prevalence audit: a uniform sample of the accounts
no other label names, reviewed and labelled with the truth (source ``audit``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sybilgnn.simulate.schema import ACCOUNTS, GROUND_TRUTH, LABELS
from sybilgnn.simulate.vocab import COUNTRIES
from sybilgnn.simulate.lookalikes import COMPANY_TEAM, LOOKALIKES, SCRIPT_DEVELOPER
from sybilgnn.simulate.world import DAY, HOUR, PLANS, World

__all__ = ["accounts_table", "labels_table", "ground_truth_table", "labelled_per_campaign"]

INVESTIGATION_SOURCES = ("trust_safety_investigation", "abuse_report", "manual_review")
INVESTIGATION_P = (0.6, 0.25, 0.15)
AUDIT_SOURCE = "audit"


def _ts(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64) * 1_000_000,
                    type=pa.timestamp("us", tz="UTC"))


def labelled_per_campaign(w: World) -> list[int]:
    return [round(cp.accounts * w.scenario.label_fraction) for cp in w.plans]


def accounts_table(w: World, ids: pa.Array) -> pa.Table:
    return pa.table([ids, _ts(w.created), pa.array(COUNTRIES).take(pa.array(w.country)),
                     pa.array(PLANS).take(pa.array(w.plan))], schema=ACCOUNTS)


def _names(w: World) -> tuple[pa.Array, pa.Array]:
    """Campaign and fleet name per account, null for legit."""
    fake = w.is_fake
    campaigns = pa.array([cp.spec.name for cp in w.plans])
    fleets = pa.array(w.fleet_names, type=pa.string())
    campaign = campaigns.take(pa.array(np.maximum(w.campaign, 0), mask=~fake))
    fleet = fleets.take(pa.array(np.maximum(w.fleet, 0), mask=~fake)) if len(w.fleet_names) \
        else pa.nulls(w.n, pa.string())
    return campaign, fleet


def team_names(n_teams: int) -> pa.Array:
    return pa.array([f"team-{t:03d}" for t in range(n_teams)] + [""], type=pa.string())


def ground_truth_table(w: World, ids: pa.Array) -> pa.Table:
    campaign, fleet = _names(w)
    lookalike = pa.array(LOOKALIKES).take(pa.array(w.lookalike))
    team = team_names(w.n_teams).take(pa.array(np.where(w.team >= 0, w.team, w.n_teams)))
    return pa.table([ids, pa.array(w.is_fake), campaign, fleet, lookalike, team],
                    schema=GROUND_TRUTH)


def _clip_time(w: World, t: np.ndarray, account: np.ndarray) -> np.ndarray:
    """Labels come after the account exists and inside the simulated window."""
    return np.clip(np.maximum(t, w.created[account] + DAY), w.start, w.end - HOUR)


def labels_table(rng: np.random.Generator, w: World, ids: pa.Array) -> pa.Table:
    """Every label row (see the module docstring), sorted by account. The draws' order is
    fixed: the same seed gives the same labels."""
    rows = _LabelRows(w)
    labelled = _campaign_labels(rng, w, rows)
    _noisy_and_reviewed_labels(rng, w, rows, labelled)
    # Drawn last, so the labels above are those of a world without an audit.
    audited = _audit_sample(rng, w, exclude=np.unique(np.concatenate(rows.account)))
    for verdict, accounts in ((1, audited[w.is_fake[audited]]),
                              (0, audited[~w.is_fake[audited]])):
        rows.add(accounts, verdict, np.full(accounts.size, AUDIT_SOURCE),
                 _uniform_time(rng, w, accounts), False)
    return rows.table(ids)


class _LabelRows:
    """Label rows collected batch by batch, then written as one table sorted by account."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.account: list[np.ndarray] = []
        self.label: list[np.ndarray] = []
        self.source: list[np.ndarray] = []
        self.time: list[np.ndarray] = []
        self.attributed: list[np.ndarray] = []

    def add(self, account: np.ndarray, label: int, source: np.ndarray, t: np.ndarray,
            attributed: bool) -> None:
        """Label ``account`` at ``t`` (clipped to the account's life); ``attributed`` rows
        name the campaign and fleet."""
        self.account.append(account)
        self.label.append(np.full(account.size, label, dtype=np.int64))
        self.source.append(source)
        self.time.append(_clip_time(self.w, t, account))
        self.attributed.append(np.full(account.size, attributed))

    def table(self, ids: pa.Array) -> pa.Table:
        """The ``LABELS`` table, rows in account order (stable within an account)."""
        account = np.concatenate(self.account).astype(np.int64)
        order = np.argsort(account, kind="stable")
        account = account[order]
        attributed = np.concatenate(self.attributed)[order]
        campaign, fleet = _names(self.w)
        idx = pa.array(account)
        null_mask = pa.array(~attributed)
        return pa.table([
            ids.take(idx), pa.array(np.concatenate(self.label)[order]),
            pa.array(np.concatenate(self.source)[order].astype(str)),
            _ts(np.concatenate(self.time)[order]),
            pc.if_else(null_mask, pa.scalar(None, pa.string()), campaign.take(idx)),
            pc.if_else(null_mask, pa.scalar(None, pa.string()), fleet.take(idx)),
        ], schema=LABELS)


def _campaign_labels(rng: np.random.Generator, w: World, rows: _LabelRows) -> np.ndarray:
    """Per campaign, its banned accounts at their ban time and enough others to reach its
    labelled count when the investigation concludes; which accounts were labelled."""
    sources = np.asarray(INVESTIGATION_SOURCES)
    labelled = np.zeros(w.n, dtype=bool)
    for c, (cp, target) in enumerate(zip(w.plans, labelled_per_campaign(w))):
        members = np.flatnonzero(w.campaign == c)
        banned = members[w.banned_at[members] >= 0]
        rows.add(banned, 1, np.full(banned.size, INVESTIGATION_SOURCES[0]),
                 w.banned_at[banned], True)
        others = members[w.banned_at[members] < 0]
        picked = np.sort(rng.choice(others, size=max(0, target - banned.size), replace=False))
        concluded = (w.start + cp.spec.start_day * DAY
                     + int(w.scenario.investigation_lag_days * DAY)
                     + rng.integers(0, 14 * DAY, picked.size))
        rows.add(picked, 1, sources[rng.choice(3, picked.size, p=INVESTIGATION_P)], concluded,
                 True)
        labelled[banned] = labelled[picked] = True
    return labelled


def _noisy_and_reviewed_labels(rng: np.random.Generator, w: World, rows: _LabelRows,
                               labelled: np.ndarray) -> None:
    """Label noise both ways (legit accounts reported as fakes, fakes a reviewer passed),
    the reviewed-benign sample of ordinary legit accounts, and the reviewed look-alikes."""
    sc = w.scenario
    legit = np.flatnonzero(~w.is_fake)
    n_positive = int(labelled.sum())
    fp = rng.choice(legit, size=min(legit.size, max(1, round(n_positive * sc.false_positive_labels))),
                    replace=False)
    rows.add(fp, 1, np.full(fp.size, "abuse_report"), _uniform_time(rng, w, fp), False)
    unlabelled_fakes = np.flatnonzero(w.is_fake & ~labelled)
    n_fn = min(unlabelled_fakes.size, max(1, round(w.is_fake.sum() * sc.false_negative_labels)))
    fn = rng.choice(unlabelled_fakes, size=n_fn, replace=False)
    rows.add(fn, 0, np.full(fn.size, "manual_review"), _uniform_time(rng, w, fn), False)
    remaining = np.setdiff1d(legit, fp)
    remaining = remaining[w.lookalike[remaining] == 0]
    benign = rng.choice(remaining, size=round(legit.size * sc.reviewed_benign_share), replace=False)
    rows.add(benign, 0, np.full(benign.size, "manual_review"), _uniform_time(rng, w, benign),
             False)
    reviewed, at = _reviewed_lookalikes(rng, w, exclude=fp)
    rows.add(reviewed, 0, np.full(reviewed.size, "manual_review"), at, False)


def _reviewed_lookalikes(rng: np.random.Generator, w: World, *,
                         exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Look-alikes reviewed as legit, and when: ``round(teams x share)`` whole company teams
    (one review per team) and ``round(developers x share)`` script developers, each
    ``lookalike_review_lag_days`` + 0-14 days after they start; reviews that would conclude
    after the window, and accounts already labelled (``exclude``), are left out."""
    sc = w.scenario
    lag = int(sc.lookalike_review_lag_days * DAY)
    member = w.lookalike == COMPANY_TEAM
    team_start = np.full(w.n_teams, w.end, dtype=np.int64)
    np.minimum.at(team_start, w.team[member], w.active_start[member])
    teams = rng.choice(w.n_teams, size=round(w.n_teams * sc.lookalike_review_share), replace=False)
    team_at = np.zeros(w.n_teams, dtype=np.int64)
    team_at[teams] = team_start[teams] + lag + rng.integers(0, 14 * DAY, teams.size)
    members = np.flatnonzero(member & np.isin(w.team, teams))
    developers = np.flatnonzero(w.lookalike == SCRIPT_DEVELOPER)
    developers = np.sort(rng.choice(developers, size=round(developers.size
                                                           * sc.lookalike_review_share),
                                    replace=False))
    account = np.concatenate([members, developers])
    at = np.concatenate([team_at[w.team[members]],
                         w.active_start[developers] + lag
                         + rng.integers(0, 14 * DAY, developers.size)])
    keep = (at < w.end - HOUR) & ~np.isin(account, exclude)
    return account[keep], at[keep]


def _audit_sample(rng: np.random.Generator, w: World, *, exclude: np.ndarray) -> np.ndarray:
    """``round(accounts x audit_share)`` accounts drawn uniformly from those no other label
    names: a prevalence audit reviews a random sample, and its verdicts are the truth (a
    thorough review, unlike the triage behind ``false_negative_labels``)."""
    pool = np.setdiff1d(np.arange(w.n), exclude)
    size = min(pool.size, round(w.n * w.scenario.audit_share))
    return np.sort(rng.choice(pool, size=size, replace=False))


def _uniform_time(rng: np.random.Generator, w: World, account: np.ndarray) -> np.ndarray:
    a = np.maximum(w.active_start[account], w.start)
    span = (w.end - a).astype(np.float64)
    return a + (rng.random(account.size) * span).astype(np.int64)
