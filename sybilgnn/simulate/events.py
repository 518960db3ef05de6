"""Event rows for a range of accounts: IP events, payments and prompts, as Arrow tables.

People act in daytime of their country at random moments; fleets run around the clock at
regular intervals (jitter set by the scenario). Rows are sorted by account, then time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sybilgnn.simulate.infra import CardRegistry, IpRegistry
from sybilgnn.simulate.schema import IP_EVENTS, PAYMENTS, PROMPTS
from sybilgnn.simulate.textgen import (
    MAX_SEGMENTS,
    HouseStyle,
    render_campaign,
    render_groups,
    render_legit,
)
from sybilgnn.simulate.vocab import CAMPAIGN_TEMPLATES, COUNTRY_UTC_OFFSET
from sybilgnn.simulate.world import DAY, HOUR, PLANS, World

__all__ = ["FleetStyles", "build_fleet_styles", "ip_events_chunk", "payments_chunk",
           "prompts_chunk"]

# share of people's activity per local hour (quiet at night, busy in the evening)
_DIURNAL = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.5, 3.5, 4, 4, 3.8, 3.8, 4, 4,
                     3.8, 3.5, 3.5, 3.8, 4, 3.5, 2.5, 1.6])
_DIURNAL = _DIURNAL / _DIURNAL.sum()
_UTC_OFFSET = np.asarray(COUNTRY_UTC_OFFSET, dtype=np.int64) * HOUR
CHARGE_PERIOD_API, CHARGE_PERIOD = 14 * DAY, 30 * DAY


@dataclass(frozen=True)
class FleetStyles:
    """Each fleet's house style and the templates it uses, drawn once per world."""

    preferred: np.ndarray    # [fleets, MAX_SEGMENTS]
    templates: np.ndarray    # [fleets, 3] the campaign's templates in the fleet's order


def build_fleet_styles(rng: np.random.Generator, w: World) -> FleetStyles:
    n_fleets = len(w.fleet_names)
    preferred = rng.integers(0, 1 << 20, size=(n_fleets, MAX_SEGMENTS))
    templates = np.argsort(rng.random((n_fleets, 3)), axis=1)
    return FleetStyles(preferred, templates)


def _rows(counts: np.ndarray, lo: int) -> tuple[np.ndarray, np.ndarray]:
    """Account index and position (0..count-1) of every row."""
    account = np.repeat(np.arange(lo, lo + counts.size), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return account, np.arange(account.size) - starts


def _times(rng: np.random.Generator, w: World, account: np.ndarray, k: np.ndarray,
           counts: np.ndarray) -> np.ndarray:
    """Seconds since epoch: diurnal random times for people, regular ticks for fleets."""
    a, b = w.active_start[account], w.active_end[account]
    span = (b - a).astype(np.float64)
    m = rng.random(account.size)
    people = a + m * span
    offset = _UTC_OFFSET[w.country[account]]
    day = np.floor((people + offset) / DAY) * DAY - offset
    hour = rng.choice(24, size=account.size, p=_DIURNAL)
    people = np.clip(day + hour * HOUR + rng.random(account.size) * HOUR, a, b)
    gap = span / np.maximum(1, counts)
    jitter = w.scenario.timing_jitter * rng.standard_normal(account.size)
    ticks = np.clip(a + (k + 0.5 + jitter) * gap, a, b)
    return np.where(w.campaign[account] >= 0, ticks, people).astype(np.int64)


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
    source = (u[:, None] > reg.source_cum[account]).sum(axis=1).clip(0, 4)
    row = (reg.lo[account, source]
           + rng.integers(0, 1 << 40, account.size) % reg.size[account, source])
    order = _sorted(account, ts, w.start)
    account, ts, row = account[order], ts[order], row[order]
    return pa.table([ids.take(pa.array(account - lo)), reg.ip.take(pa.array(row)), _ts(ts),
                     pa.array(reg.asn[row]), pa.array(reg.is_datacenter[row])],
                    schema=IP_EVENTS)


def payments_chunk(rng: np.random.Generator, w: World, cards: CardRegistry, ids: pa.Array,
                   lo: int, hi: int) -> pa.Table:
    """Recurring charges while the account is active; fleets pay within the hour."""
    sl = slice(lo, hi)
    paid = cards.first_card[sl] >= 0
    period = np.where(w.plan[sl] == PLANS.index("api"), CHARGE_PERIOD_API, CHARGE_PERIOD)
    fake = w.campaign[sl] >= 0
    delay = np.where(fake, rng.integers(60, HOUR, hi - lo), rng.integers(60, DAY, hi - lo))
    created_in_window = w.created[sl] >= w.start
    first = np.where(created_in_window, w.created[sl] + delay,
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
    campaign = w.campaign[account]
    sc = w.scenario
    names = [cp.spec.name for cp in w.plans]

    def campaign_renderer(c: int):  # noqa: ANN202
        def render(rows: np.ndarray) -> pa.Array:
            fleet = w.fleet[account[rows]]
            pick = rng.integers(0, sc.templates_per_fleet, rows.size)
            style = HouseStyle(styles.preferred[fleet], sc.paraphrase_rate, sc.slot_diversity)
            return render_campaign(rng, CAMPAIGN_TEMPLATES[names[c]],
                                   styles.templates[fleet, pick], style,
                                   cover_share=sc.cover_prompt_share,
                                   prefix_share=sc.context_prefix_share)
        return render

    renderers = [lambda rows: render_legit(rng, rows.size)]
    renderers += [campaign_renderer(c) for c in range(len(names))]
    text = render_groups(campaign + 1, renderers)
    return pa.table([ids.take(pa.array(account - lo)), _ts(ts), text], schema=PROMPTS)
