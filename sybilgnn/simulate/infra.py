"""Network and payment infrastructure: IP pools and payment cards, and who uses which.

IP registry layout (one row per address): every account's own address (home broadband, a
script developer's cloud VM, or a fake's sticky residential exit), office/university egress
IPs, mobile-carrier NAT pools, VPN exits, the pools of commercial proxy services, and the
egress IPs of company teams. Fleets rent a slice of a proxy pool; legit customers of the
same service draw from the whole pool, so fleet IPs also carry ordinary traffic. Isolated
fleets rent nothing: each account uses its own residential address only. Each account
gets, per traffic source, a range ``[lo, lo + size)`` of registry rows to draw from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sybilgnn.simulate.formatting import format_ipv4, format_tokens, unique_public_ipv4
from sybilgnn.simulate.vocab import (
    COUNTRIES,
    ENTERPRISE_ASNS,
    HOSTING_ASNS,
    MOBILE_ASNS,
    RESIDENTIAL_ASNS,
)
from sybilgnn.simulate.lookalikes import COMPANY_TEAM, SCRIPT_DEVELOPER
from sybilgnn.simulate.world import PLANS, World, country_p

__all__ = ["IpRegistry", "CardRegistry", "build_ip_registry", "build_cards", "SOURCES"]

SOURCES = ("own", "venue", "mobile", "vpn", "proxy", "team")
N_CARRIERS, N_VPNS, N_PROXY_SERVICES = len(MOBILE_ASNS), 6, 4
DATACENTER_SERVICES = (0, 1)   # the other proxy services sell residential exits
ACCOUNTS_PER_NAT_IP = 40       # draws per carrier NAT address: strangers share them
ACCOUNTS_PER_VPN_IP = 25
TEAM_EGRESS_IPS = (2, 4)       # a company team's egress range, inclusive
TEAM_CLOUD_EGRESS = 0.3        # teams whose egress is a cloud NAT (datacenter ASN)
TEAM_WEIGHT, SCRIPT_OWN_WEIGHT = 6.0, 4.0   # most of their sessions: team egress / the script host


@dataclass
class IpRegistry:
    ip: pa.Array                 # dotted quad
    asn: np.ndarray              # int64
    is_datacenter: np.ndarray    # bool
    source_cum: np.ndarray       # float64 [accounts, sources] cumulative source probabilities
    lo: np.ndarray               # int64 [accounts, sources] first registry row per source
    size: np.ndarray             # int64 [accounts, sources] rows available per source


@dataclass
class CardRegistry:
    token: pa.Array
    bin: pa.Array
    issuer_country: pa.Array
    is_prepaid: np.ndarray
    first_card: np.ndarray       # per account, -1 for unpaid
    second_card: np.ndarray      # per account, -1 when the card is never replaced
    switch_at: np.ndarray        # when second_card takes over


def _offsets(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def build_ip_registry(rng: np.random.Generator, w: World) -> IpRegistry:
    n, sc, fake = w.n, w.scenario, w.is_fake
    isolated = fake & w.fleet_isolated[np.maximum(w.fleet, 0)]
    proxied = np.where(isolated, 0.0, sc.proxy_event_share)
    team_member = w.lookalike == COMPANY_TEAM
    weights = np.zeros((n, len(SOURCES)))
    weights[:, 0] = np.where(fake, 1.0 - proxied,
                             np.where(w.lookalike == SCRIPT_DEVELOPER, SCRIPT_OWN_WEIGHT, 1.0))
    weights[:, 1] = np.where(w.venue >= 0, 1.5, 0.0)
    weights[:, 2] = np.where(w.mobile, 0.8, 0.0)
    weights[:, 3] = np.where(w.vpn_user, 0.4, 0.0)
    weights[:, 4] = np.where(fake, proxied, np.where(w.proxy_customer, 1.5, 0.0))
    weights[:, 5] = np.where(team_member, TEAM_WEIGHT, 0.0)
    share = weights / weights.sum(axis=1, keepdims=True)
    draws = share * w.n_ip_events[:, None]

    venue_members = np.bincount(w.venue[w.venue >= 0], minlength=w.n_venues)
    venue_sizes = 1 + np.minimum(15, venue_members // 40)
    carrier = rng.integers(0, N_CARRIERS, n)
    mobile_draws = np.bincount(carrier, weights=draws[:, 2], minlength=N_CARRIERS)
    carrier_sizes = np.maximum(4, np.round(mobile_draws / ACCOUNTS_PER_NAT_IP)).astype(np.int64)
    vpn = rng.integers(0, N_VPNS, n)
    vpn_draws = np.bincount(vpn, weights=draws[:, 3], minlength=N_VPNS)
    vpn_sizes = np.maximum(4, np.round(vpn_draws / ACCOUNTS_PER_VPN_IP)).astype(np.int64)
    proxy_sizes = np.full(N_PROXY_SERVICES, max(64, round(n * 0.004)), dtype=np.int64)
    team_sizes = rng.integers(TEAM_EGRESS_IPS[0], TEAM_EGRESS_IPS[1] + 1, w.n_teams)

    blocks = [np.array([n]), venue_sizes, carrier_sizes, vpn_sizes, proxy_sizes, team_sizes]
    starts = np.cumsum([0] + [int(b.sum()) for b in blocks])
    total = int(starts[-1])
    venue_off, carrier_off, vpn_off, proxy_off, team_off = (
        _offsets(b) + starts[i] for i, b in enumerate(blocks) if i > 0)

    asn = np.empty(total, dtype=np.int64)
    dc = np.zeros(total, dtype=bool)
    asn[: n] = rng.choice(RESIDENTIAL_ASNS, size=n)
    asn[starts[1]:starts[2]] = np.repeat(rng.choice(ENTERPRISE_ASNS, size=w.n_venues), venue_sizes)
    asn[starts[2]:starts[3]] = np.repeat(np.asarray(MOBILE_ASNS), carrier_sizes)
    asn[starts[3]:starts[4]] = np.repeat(rng.choice(HOSTING_ASNS, size=N_VPNS), vpn_sizes)
    dc[starts[3]:starts[4]] = True
    service = np.repeat(np.arange(N_PROXY_SERVICES), proxy_sizes)
    is_dc_service = np.isin(service, DATACENTER_SERVICES)
    proxy_dc = rng.random(service.size) < np.where(is_dc_service, 0.9, 0.05)
    asn[starts[4]:starts[5]] = np.where(proxy_dc, rng.choice(HOSTING_ASNS, size=service.size),
                                        rng.choice(RESIDENTIAL_ASNS, size=service.size))
    dc[starts[4]:starts[5]] = proxy_dc

    lo = np.zeros((n, len(SOURCES)), dtype=np.int64)
    size = np.ones((n, len(SOURCES)), dtype=np.int64)
    lo[:, 0] = np.arange(n)
    vidx = np.maximum(w.venue, 0)
    lo[:, 1], size[:, 1] = venue_off[vidx], venue_sizes[vidx]
    lo[:, 2], size[:, 2] = carrier_off[carrier], carrier_sizes[carrier]
    lo[:, 3], size[:, 3] = vpn_off[vpn], vpn_sizes[vpn]
    # legit customers: anywhere in a service's pool; fleets: their rented slice of it
    customer_service = rng.integers(0, N_PROXY_SERVICES, n)
    lo[:, 4], size[:, 4] = proxy_off[customer_service], proxy_sizes[customer_service]
    n_fleets = len(w.fleet_names)
    fleet_accounts = np.bincount(w.fleet[fake], minlength=n_fleets)
    wants_dc = rng.random(n_fleets) < sc.proxy_datacenter_pref
    fleet_service = np.where(wants_dc, rng.choice(DATACENTER_SERVICES, n_fleets),
                             rng.integers(len(DATACENTER_SERVICES), N_PROXY_SERVICES, n_fleets))
    pool = proxy_sizes[fleet_service]
    slice_size = np.minimum(pool, np.ceil(sc.proxy_ips_per_account * fleet_accounts)).astype(np.int64)
    slice_size = np.maximum(slice_size, 1)
    slice_start = proxy_off[fleet_service] + (rng.random(n_fleets) * (pool - slice_size + 1)).astype(np.int64)
    f = w.fleet[fake]
    lo[fake, 4], size[fake, 4] = slice_start[f], slice_size[f]

    ip = format_ipv4(unique_public_ipv4(rng, total))
    # look-alikes last (their egress sizes above draw nothing without teams), so a world
    # without them draws what it drew before they existed
    _lookalike_addresses(rng, w, asn, dc, starts[5], team_sizes)
    tidx = np.maximum(w.team, 0)
    lo[:, 5], size[:, 5] = (team_off[tidx], team_sizes[tidx]) if w.n_teams else (0, 1)
    return IpRegistry(ip=ip, asn=asn, is_datacenter=dc, source_cum=np.cumsum(share, axis=1),
                      lo=lo, size=size)


def _lookalike_addresses(rng: np.random.Generator, w: World, asn: np.ndarray, dc: np.ndarray,
                         team_start: int, team_sizes: np.ndarray) -> None:
    """Company egress (enterprise ASN, or a cloud NAT) and script developers' cloud VMs."""
    cloud_nat = rng.random(w.n_teams) < TEAM_CLOUD_EGRESS
    team_asn = np.where(cloud_nat, rng.choice(HOSTING_ASNS, size=w.n_teams),
                        rng.choice(ENTERPRISE_ASNS, size=w.n_teams))
    asn[team_start:] = np.repeat(team_asn, team_sizes)
    dc[team_start:] = np.repeat(cloud_nat, team_sizes)
    vm = np.flatnonzero(w.cloud_host)      # row i of the registry is account i's own address
    asn[vm] = rng.choice(HOSTING_ASNS, size=vm.size)
    dc[vm] = True


def _bins(rng: np.random.Generator) -> tuple[list[str], list[str], np.ndarray, int]:
    """Ordinary bank BINs, then prepaid/virtual-card BINs (the first six sell to fleets)."""
    ordinary = rng.choice(np.arange(400000, 560000), size=240, replace=False)
    ordinary_country = [COUNTRIES[i] for i in rng.choice(len(COUNTRIES), 240, p=country_p())]
    prepaid = rng.choice(np.arange(400000, 560000), size=12, replace=False)
    prepaid_country = ["US", "US", "GB", "SG", "HK", "US", "LT", "EE", "US", "CA", "AU", "GB"]
    bins = [str(b) for b in np.concatenate([ordinary, prepaid])]
    is_prepaid = np.concatenate([np.zeros(240, bool), np.ones(12, bool)])
    is_prepaid[240 + 4: 240 + 6] = False    # virtual debit cards
    return bins, ordinary_country + prepaid_country, is_prepaid, 240


def build_cards(rng: np.random.Generator, w: World) -> CardRegistry:
    """Personal cards, team cards shared by colleagues, fleet card batches, company cards."""
    n, sc, fake = w.n, w.scenario, w.is_fake
    bins, countries, bin_prepaid, first_prepaid = _bins(rng)
    paid = w.plan != PLANS.index("free")
    company = w.lookalike == COMPANY_TEAM
    card_bin: list[np.ndarray] = []
    first = np.full(n, -1, dtype=np.int64)

    def new_cards(bin_idx: np.ndarray) -> np.ndarray:
        start = sum(b.size for b in card_bin)
        card_bin.append(bin_idx.astype(np.int64))
        return np.arange(start, start + bin_idx.size)

    legit_paid = np.flatnonzero(paid & ~fake & ~company)
    team = legit_paid[w.plan[legit_paid] == PLANS.index("team")]
    solo = legit_paid[w.plan[legit_paid] != PLANS.index("team")]
    prepaid_user = rng.random(solo.size) < sc.legit_prepaid_share
    solo_bins = np.where(prepaid_user, first_prepaid + rng.integers(0, 12, solo.size),
                         rng.integers(0, first_prepaid, solo.size))
    first[solo] = new_cards(solo_bins)
    # teams of colleagues pay with one company card
    team = rng.permutation(team)
    team_id = np.cumsum(rng.random(team.size) < 1 / 5) if team.size else team
    team_cards = new_cards(rng.integers(0, first_prepaid, int(team_id.max(initial=0)) + 1))
    first[team] = team_cards[team_id]
    # fleets: a batch of virtual cards from a few BINs, each card reused by several paying
    # accounts; an isolated fleet buys one card per account
    n_fleets = len(w.fleet_names)
    fake_idx = np.flatnonzero(fake & paid)
    f = w.fleet[fake_idx]
    fleet_accounts = np.bincount(f, minlength=n_fleets)
    per_card = np.where(w.fleet_isolated, 1.0, sc.accounts_per_card)
    fleet_cards = np.ceil(fleet_accounts / per_card).astype(np.int64)
    fleet_bins = np.stack([rng.permutation(6)[: sc.bins_per_fleet] for _ in range(n_fleets)]) \
        if n_fleets else np.zeros((0, sc.bins_per_fleet), np.int64)
    card_fleet = np.repeat(np.arange(n_fleets), fleet_cards)
    batch_bins = first_prepaid + fleet_bins[card_fleet, rng.integers(0, sc.bins_per_fleet,
                                                                      card_fleet.size)]
    batch = new_cards(batch_bins)
    batch_off = np.concatenate([[0], np.cumsum(fleet_cards)[:-1]])
    # spread accounts over the batch round-robin, in random order inside the fleet
    order = np.lexsort((rng.random(fake_idx.size), f))
    rank = np.empty(fake_idx.size, dtype=np.int64)
    rank[order] = np.arange(fake_idx.size) - np.repeat(
        np.concatenate([[0], np.cumsum(fleet_accounts)[:-1]]), fleet_accounts)
    first[fake_idx] = batch[batch_off[f] + rank % fleet_cards[f]]
    # some people replace an expired or lost card halfway
    second = np.full(n, -1, dtype=np.int64)
    switch = np.full(n, -1, dtype=np.int64)
    switches = legit_paid[rng.random(legit_paid.size) < 0.08]
    second[switches] = new_cards(rng.integers(0, first_prepaid, switches.size))
    span = w.active_end[switches] - w.active_start[switches]
    switch[switches] = w.active_start[switches] + (rng.random(switches.size) * span).astype(np.int64)
    # company / evaluation teams (look-alikes): every member on the one company card
    company_cards = new_cards(rng.integers(0, first_prepaid, w.n_teams))
    first[company] = company_cards[w.team[company]]

    all_bins = np.concatenate(card_bin)
    return CardRegistry(
        token=format_tokens(rng, all_bins.size),
        bin=pa.array(bins).take(pa.array(all_bins)),
        issuer_country=pa.array(countries).take(pa.array(all_bins)),
        is_prepaid=bin_prepaid[all_bins],
        first_card=first, second_card=second, switch_at=switch,
    )
