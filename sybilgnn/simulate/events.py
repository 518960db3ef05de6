"""Event rows for a range of accounts: IP events, payments and prompts, as Arrow tables.

People act in daytime of their country at random moments; fleets run around the clock at
regular intervals (jitter set by the scenario), except human-hours fleets, whose evenly
spread days keep their ticks' dates but take a human hour of the day. Script developers'
scripts tick around the clock too. Rows are sorted by account, then time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sybilgnn.simulate.infra import SOURCES, CardRegistry, IpRegistry
from sybilgnn.simulate.schema import IP_EVENTS, PAYMENTS, PROMPTS
from sybilgnn.simulate.textgen import (
    MAX_SEGMENTS,
    HouseStyle,
    render_campaign,
    render_groups,
    render_legit,
)
from sybilgnn.simulate.lookalikes import COMPANY_TEAM, SCRIPT_DEVELOPER
from sybilgnn.simulate.vocab import CAMPAIGN_TEMPLATES, COUNTRY_UTC_OFFSET, LOOKALIKE_TEMPLATES
from sybilgnn.simulate.world import DAY, HOUR, PLANS, World

__all__ = ["FleetStyles", "build_fleet_styles", "ip_events_chunk", "payments_chunk",
           "prompts_chunk"]

# share of people's activity per local hour (quiet at night, busy in the evening)
_DIURNAL = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.5, 3.5, 4, 4, 3.8, 3.8, 4, 4,
                     3.8, 3.5, 3.5, 3.8, 4, 3.5, 2.5, 1.6])
_DIURNAL = _DIURNAL / _DIURNAL.sum()
_UTC_OFFSET = np.asarray(COUNTRY_UTC_OFFSET, dtype=np.int64) * HOUR
CHARGE_PERIOD_API, CHARGE_PERIOD = 14 * DAY, 30 * DAY
SCRIPT_JITTER = 0.1            # a cron job's ticks: regular
TEAM_STYLE = (0.05, 0.5)       # look-alikes' (paraphrase_rate, slot_diversity): pasted templates
SCRIPT_STYLE = (0.0, 0.3)
TEAM_OTHER_PROMPTS = 0.2       # a team member's prompts that are ordinary requests


@dataclass(frozen=True)
class FleetStyles:
    """House styles and templates of fleets and look-alikes, drawn once per world."""

    preferred: np.ndarray          # [fleets, MAX_SEGMENTS]
    templates: np.ndarray          # [fleets, 3] the campaign's templates in the fleet's order
    shifted_preferred: np.ndarray  # [fleets, MAX_SEGMENTS] replacements of shifting fleets...
    shifted_templates: np.ndarray  # [fleets, 3] ...write in this style, templates in this order
    team_preferred: np.ndarray     # [teams, MAX_SEGMENTS] company teams
    team_template: np.ndarray      # [teams] the team's topic (index into LOOKALIKE_TEMPLATES)
    script_accounts: np.ndarray    # sorted account indices of the script developers
    script_preferred: np.ndarray   # [script developers, MAX_SEGMENTS]
    script_template: np.ndarray    # [script developers]


def build_fleet_styles(rng: np.random.Generator, w: World) -> FleetStyles:
    n_fleets = len(w.fleet_names)
    preferred = rng.integers(0, 1 << 20, size=(n_fleets, MAX_SEGMENTS))
    templates = np.argsort(rng.random((n_fleets, 3)), axis=1)
    # after a ban wave: new wordings and slot windows, and the templates rotated by one, so a
    # fleet that used one template now leads with another
    shifted = rng.integers(0, 1 << 20, size=(n_fleets, MAX_SEGMENTS))
    scripts = np.flatnonzero(w.lookalike == SCRIPT_DEVELOPER)
    n_kinds = len(LOOKALIKE_TEMPLATES)
    return FleetStyles(
        preferred, templates, shifted, np.roll(templates, 1, axis=1),
        team_preferred=rng.integers(0, 1 << 20, size=(w.n_teams, MAX_SEGMENTS)),
        team_template=rng.integers(0, n_kinds, w.n_teams),
        script_accounts=scripts,
        script_preferred=rng.integers(0, 1 << 20, size=(scripts.size, MAX_SEGMENTS)),
        script_template=rng.integers(0, n_kinds, scripts.size))


def _rows(counts: np.ndarray, lo: int) -> tuple[np.ndarray, np.ndarray]:
    """Account index and position (0..count-1) of every row."""
    account = np.repeat(np.arange(lo, lo + counts.size), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return account, np.arange(account.size) - starts


def _times(rng: np.random.Generator, w: World, account: np.ndarray, k: np.ndarray,
           counts: np.ndarray) -> np.ndarray:
    """Seconds since epoch: diurnal random times for people, regular ticks for fleets and
    scripts; a human-hours fleet's tick keeps its local day and takes a diurnal hour."""
    a, b = w.active_start[account], w.active_end[account]
    span = (b - a).astype(np.float64)
    m = rng.random(account.size)
    offset = _UTC_OFFSET[w.country[account]]
    hour = rng.choice(24, size=account.size, p=_DIURNAL)
    within = rng.random(account.size) * HOUR

    def daytime(t: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((t + offset) / DAY) * DAY - offset + hour * HOUR + within, a, b)

    people = daytime(a + m * span)
    gap = span / np.maximum(1, counts)
    fake = w.campaign[account] >= 0
    script = w.lookalike[account] == SCRIPT_DEVELOPER
    jitter = np.where(script, SCRIPT_JITTER, w.scenario.timing_jitter) \
        * rng.standard_normal(account.size)
    ticks = np.clip(a + (k + 0.5 + jitter) * gap, a, b)
    human = fake & w.fleet_human[np.maximum(w.fleet[account], 0)]
    if human.any():
        ticks = np.where(human, daytime(ticks), ticks)
    return np.where(fake | script, ticks, people).astype(np.int64)


def _sorted(account: np.ndarray, ts: np.ndarray, start: int) -> np.ndarray:
    """Order by account, then time (one int64 key: account in the high bits)."""
    return np.argsort((account.astype(np.int64) << 32) | (ts - start), kind="stable")


def _ts(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds * 1_000_000, type=pa.timestamp("us", tz="UTC"))


def ip_events_chunk(rng: np.random.Generator, w: World, reg: IpRegistry, ids: pa.Array,
                    lo: int, hi: int) -> pa.Table:
    counts = w.n_ip_events[lo:hi]
    account, k = _rows(counts, lo)
    ts = _times(rng, w, account, k, counts[account - lo])
    u = rng.random(account.size)
    source = (u[:, None] > reg.source_cum[account]).sum(axis=1).clip(0, len(SOURCES) - 1)
    row = (reg.lo[account, source]
           + rng.integers(0, 1 << 40, account.size) % reg.size[account, source])
    order = _sorted(account, ts, w.start)
    account, ts, row = account[order], ts[order], row[order]
    return pa.table([ids.take(pa.array(account - lo)), reg.ip.take(pa.array(row)), _ts(ts),
                     pa.array(reg.asn[row]), pa.array(reg.is_datacenter[row])],
                    schema=IP_EVENTS)


def payments_chunk(rng: np.random.Generator, w: World, cards: CardRegistry, ids: pa.Array,
                   lo: int, hi: int) -> pa.Table:
    """Recurring charges while the account is active; fleets pay within the hour of
    activation (an aged account pays when it is put to work)."""
    sl = slice(lo, hi)
    paid = cards.first_card[sl] >= 0
    period = np.where(w.plan[sl] == PLANS.index("api"), CHARGE_PERIOD_API, CHARGE_PERIOD)
    fake = w.campaign[sl] >= 0
    delay = np.where(fake, rng.integers(60, HOUR, hi - lo), rng.integers(60, DAY, hi - lo))
    anchor = np.where(fake, w.active_start[sl], w.created[sl])
    first = np.where(anchor >= w.start, anchor + delay,
                     w.start + (rng.random(hi - lo) * period).astype(np.int64))
    end = w.active_end[sl]
    counts = np.where(paid & (first <= end), (end - first) // period + 1, 0).astype(np.int64)
    account, k = _rows(counts, lo)
    ts = first[account - lo] + k * period[account - lo] + rng.integers(0, HOUR, account.size)
    card = cards.first_card[account]
    switched = (cards.second_card[account] >= 0) & (ts >= cards.switch_at[account])
    card = np.where(switched, cards.second_card[account], card)
    keep = ts <= end[account - lo]
    account, ts, card = account[keep], ts[keep], card[keep]
    cidx = pa.array(card)
    return pa.table([ids.take(pa.array(account - lo)), cards.token.take(cidx),
                     cards.bin.take(cidx), cards.issuer_country.take(cidx),
                     pa.array(cards.is_prepaid[card]), _ts(ts)], schema=PAYMENTS)


def prompts_chunk(rng: np.random.Generator, w: World, styles: FleetStyles, ids: pa.Array,
                  lo: int, hi: int) -> pa.Table:
    counts = w.n_prompts[lo:hi]
    account, k = _rows(counts, lo)
    ts = _times(rng, w, account, k, counts[account - lo])
    order = _sorted(account, ts, w.start)
    account, ts = account[order], ts[order]
    sc = w.scenario
    names = [cp.spec.name for cp in w.plans]

    def campaign_renderer(c: int):  # noqa: ANN202
        def render(rows: np.ndarray) -> pa.Array:
            acc = account[rows]
            fleet = w.fleet[acc]
            shifted = (w.replacement[acc] & w.fleet_shifted[fleet])[:, None]
            pick = rng.integers(0, sc.templates_per_fleet, rows.size)
            preferred = np.where(shifted, styles.shifted_preferred[fleet], styles.preferred[fleet])
            templates = np.where(shifted, styles.shifted_templates[fleet], styles.templates[fleet])
            style = HouseStyle(preferred, sc.paraphrase_rate, sc.slot_diversity)
            return render_campaign(rng, CAMPAIGN_TEMPLATES[names[c]],
                                   templates[np.arange(rows.size), pick], style,
                                   cover_share=sc.cover_prompt_share,
                                   prefix_share=sc.context_prefix_share)
        return render

    def lookalike_renderer(preferred: np.ndarray, template: np.ndarray, paraphrase: float,
                           slots: float, other: float):  # noqa: ANN202
        def render(rows: np.ndarray, who: np.ndarray) -> pa.Array:
            return render_campaign(rng, LOOKALIKE_TEMPLATES, template[who],
                                   HouseStyle(preferred[who], paraphrase, slots),
                                   cover_share=other, prefix_share=0.0)
        return render

    team = lookalike_renderer(styles.team_preferred, styles.team_template, *TEAM_STYLE,
                              TEAM_OTHER_PROMPTS)
    script = lookalike_renderer(styles.script_preferred, styles.script_template, *SCRIPT_STYLE,
                                0.0)
    renderers = [lambda rows: render_legit(rng, rows.size)]
    renderers += [campaign_renderer(c) for c in range(len(names))]
    renderers += [lambda rows: team(rows, w.team[account[rows]]),
                  lambda rows: script(rows, np.searchsorted(styles.script_accounts,
                                                            account[rows]))]
    kind = w.lookalike[account]
    group = np.where(kind == COMPANY_TEAM, len(names) + 1,
                     np.where(kind == SCRIPT_DEVELOPER, len(names) + 2, w.campaign[account] + 1))
    text = render_groups(group, renderers)
    return pa.table([ids.take(pa.array(account - lo)), _ts(ts), text], schema=PROMPTS)
