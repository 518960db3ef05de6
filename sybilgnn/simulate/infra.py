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
    """The registry's addresses by pool (see the module docstring) and each account's
    source mix and row ranges. The draws' order is fixed: the same seed gives the same
    world."""
    n = w.n
    share = _source_shares(w)
    pools = _pool_sizes(rng, w, share * w.n_ip_events[:, None])
    asn, dc = _pool_asns(rng, w, pools)
    lo = np.zeros((n, len(SOURCES)), dtype=np.int64)
    size = np.ones((n, len(SOURCES)), dtype=np.int64)
    lo[:, 0] = np.arange(n)
    for source, member in ((1, np.maximum(w.venue, 0)), (2, pools.carrier), (3, pools.vpn)):
        lo[:, source], size[:, source] = pools.offsets(source)[member], pools.sizes[source][member]
    _proxy_ranges(rng, w, pools, lo, size)
    ip = format_ipv4(unique_public_ipv4(rng, pools.total))
    # look-alikes last (their egress sizes above draw nothing without teams), so a world
    # without them draws what it drew before they existed
    team_sizes = pools.sizes[5]
    _lookalike_addresses(rng, w, asn, dc, int(pools.starts[5]), team_sizes)
    tidx = np.maximum(w.team, 0)
    lo[:, 5], size[:, 5] = (pools.offsets(5)[tidx], team_sizes[tidx]) if w.n_teams else (0, 1)
    return IpRegistry(ip=ip, asn=asn, is_datacenter=dc, source_cum=np.cumsum(share, axis=1),
                      lo=lo, size=size)


@dataclass
class _Pools:
    """The registry's rows by source (``SOURCES``): the sizes of each source's pools (one
    block of every account's own address, then one pool per venue, carrier, VPN, proxy
    service and team), where each source's block starts, and each account's carrier and VPN."""

    sizes: list[np.ndarray]
    starts: np.ndarray            # first row of each source's block, then the total
    carrier: np.ndarray
    vpn: np.ndarray

    @property
    def total(self) -> int:
        return int(self.starts[-1])

    def offsets(self, source: int) -> np.ndarray:
        """The first registry row of each of ``source``'s pools."""
        offsets: np.ndarray = _offsets(self.sizes[source]) + self.starts[source]
        return offsets


def _source_shares(w: World) -> np.ndarray:
    """Each account's share of IP events per source: fakes split between their own address
    and the proxy (an isolated fleet uses its own only), script developers stay mostly on
    their host and team members on their team's egress."""
    fake = w.is_fake
    isolated = fake & w.fleet_isolated[np.maximum(w.fleet, 0)]
    proxied = np.where(isolated, 0.0, w.scenario.proxy_event_share)
    weights = np.zeros((w.n, len(SOURCES)))
    weights[:, 0] = np.where(fake, 1.0 - proxied,
                             np.where(w.lookalike == SCRIPT_DEVELOPER, SCRIPT_OWN_WEIGHT, 1.0))
    weights[:, 1] = np.where(w.venue >= 0, 1.5, 0.0)
    weights[:, 2] = np.where(w.mobile, 0.8, 0.0)
    weights[:, 3] = np.where(w.vpn_user, 0.4, 0.0)
    weights[:, 4] = np.where(fake, proxied, np.where(w.proxy_customer, 1.5, 0.0))
    weights[:, 5] = np.where(w.lookalike == COMPANY_TEAM, TEAM_WEIGHT, 0.0)
    share: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return share


def _pool_sizes(rng: np.random.Generator, w: World, draws: np.ndarray) -> _Pools:
    """Pool sizes that follow the traffic (``draws``: expected events per account and
    source): a venue's egress grows with its members, carrier NAT and VPN pools with the
    draws they serve, so strangers share addresses at realistic rates."""
    n = w.n
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
    return _Pools(blocks, starts, carrier, vpn)


def _pool_asns(rng: np.random.Generator, w: World, pools: _Pools
               ) -> tuple[np.ndarray, np.ndarray]:
    """ASN and datacenter flag per registry row (team egress is left to
    ``_lookalike_addresses``): residential own addresses, enterprise venues, carriers,
    hosted VPN exits, and proxy services that sell datacenter or residential exits."""
    starts = pools.starts
    asn = np.empty(pools.total, dtype=np.int64)
    dc = np.zeros(pools.total, dtype=bool)
    asn[: w.n] = rng.choice(RESIDENTIAL_ASNS, size=w.n)
    asn[starts[1]:starts[2]] = np.repeat(rng.choice(ENTERPRISE_ASNS, size=w.n_venues),
                                         pools.sizes[1])
    asn[starts[2]:starts[3]] = np.repeat(np.asarray(MOBILE_ASNS), pools.sizes[2])
    asn[starts[3]:starts[4]] = np.repeat(rng.choice(HOSTING_ASNS, size=N_VPNS), pools.sizes[3])
    dc[starts[3]:starts[4]] = True
    service = np.repeat(np.arange(N_PROXY_SERVICES), pools.sizes[4])
    is_dc_service = np.isin(service, DATACENTER_SERVICES)
    proxy_dc = rng.random(service.size) < np.where(is_dc_service, 0.9, 0.05)
    asn[starts[4]:starts[5]] = np.where(proxy_dc, rng.choice(HOSTING_ASNS, size=service.size),
                                        rng.choice(RESIDENTIAL_ASNS, size=service.size))
    dc[starts[4]:starts[5]] = proxy_dc
    return asn, dc


def _proxy_ranges(rng: np.random.Generator, w: World, pools: _Pools, lo: np.ndarray,
                  size: np.ndarray) -> None:
    """The proxy source's rows per account, in place: legit customers draw anywhere in a
    service's pool; a fleet rents a slice of one service (datacenter or residential by
    ``proxy_datacenter_pref``) sized by its accounts."""
    sc, fake = w.scenario, w.is_fake
    proxy_sizes, proxy_off = pools.sizes[4], pools.offsets(4)
    customer_service = rng.integers(0, N_PROXY_SERVICES, w.n)
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
    """Personal cards, team cards shared by colleagues, fleet card batches, company cards.
    The draws' order is fixed: the same seed gives the same world."""
    n = w.n
    bins, countries, bin_prepaid, first_prepaid = _bins(rng)
    cards = _Cards(first_prepaid)
    company = w.lookalike == COMPANY_TEAM
    first = np.full(n, -1, dtype=np.int64)
    paid = w.plan != PLANS.index("free")
    legit_paid = np.flatnonzero(paid & ~w.is_fake & ~company)
    _legit_cards(rng, w, cards, legit_paid, first)
    _fleet_cards(rng, w, cards, np.flatnonzero(w.is_fake & paid), first)
    second, switch = _replaced_cards(rng, w, cards, legit_paid)
    # company / evaluation teams (look-alikes): every member on the one company card
    company_cards = cards.issue(rng.integers(0, first_prepaid, w.n_teams))
    first[company] = company_cards[w.team[company]]

    all_bins = np.concatenate(cards.bins)
    return CardRegistry(
        token=format_tokens(rng, all_bins.size),
        bin=pa.array(bins).take(pa.array(all_bins)),
        issuer_country=pa.array(countries).take(pa.array(all_bins)),
        is_prepaid=bin_prepaid[all_bins],
        first_card=first, second_card=second, switch_at=switch,
    )


class _Cards:
    """The cards issued so far, as BIN indices in issue order: a card's id is its place
    in that order."""

    def __init__(self, first_prepaid: int) -> None:
        self.bins: list[np.ndarray] = []
        self.first_prepaid = first_prepaid   # BIN indices from here on are prepaid/virtual

    def issue(self, bin_idx: np.ndarray) -> np.ndarray:
        """New cards on ``bin_idx``; their ids."""
        start = sum(b.size for b in self.bins)
        self.bins.append(bin_idx.astype(np.int64))
        return np.arange(start, start + bin_idx.size)


def _legit_cards(rng: np.random.Generator, w: World, cards: _Cards, legit_paid: np.ndarray,
                 first: np.ndarray) -> None:
    """Ordinary paying accounts, in place: a card of their own (a few prepaid), except
    team-plan colleagues, who share one company card in groups of about five."""
    first_prepaid = cards.first_prepaid
    team = legit_paid[w.plan[legit_paid] == PLANS.index("team")]
    solo = legit_paid[w.plan[legit_paid] != PLANS.index("team")]
    prepaid_user = rng.random(solo.size) < w.scenario.legit_prepaid_share
    solo_bins = np.where(prepaid_user, first_prepaid + rng.integers(0, 12, solo.size),
                         rng.integers(0, first_prepaid, solo.size))
    first[solo] = cards.issue(solo_bins)
    team = rng.permutation(team)
    team_id = np.cumsum(rng.random(team.size) < 1 / 5) if team.size else team
    team_cards = cards.issue(rng.integers(0, first_prepaid, int(team_id.max(initial=0)) + 1))
    first[team] = team_cards[team_id]


def _fleet_cards(rng: np.random.Generator, w: World, cards: _Cards, fake_idx: np.ndarray,
                 first: np.ndarray) -> None:
    """Paying fakes (``fake_idx``), in place: each fleet buys a batch of virtual cards from
    a few BINs and reuses each card for several accounts, spread over the batch
    round-robin in random order; an isolated fleet buys one card per account."""
    sc = w.scenario
    n_fleets = len(w.fleet_names)
    f = w.fleet[fake_idx]
    fleet_accounts = np.bincount(f, minlength=n_fleets)
    per_card = np.where(w.fleet_isolated, 1.0, sc.accounts_per_card)
    fleet_cards = np.ceil(fleet_accounts / per_card).astype(np.int64)
    fleet_bins = np.stack([rng.permutation(6)[: sc.bins_per_fleet] for _ in range(n_fleets)]) \
        if n_fleets else np.zeros((0, sc.bins_per_fleet), np.int64)
    card_fleet = np.repeat(np.arange(n_fleets), fleet_cards)
    batch_bins = cards.first_prepaid + fleet_bins[card_fleet, rng.integers(
        0, sc.bins_per_fleet, card_fleet.size)]
    batch = cards.issue(batch_bins)
    batch_off = np.concatenate([[0], np.cumsum(fleet_cards)[:-1]])
    order = np.lexsort((rng.random(fake_idx.size), f))
    rank = np.empty(fake_idx.size, dtype=np.int64)
    rank[order] = np.arange(fake_idx.size) - np.repeat(
        np.concatenate([[0], np.cumsum(fleet_accounts)[:-1]]), fleet_accounts)
    first[fake_idx] = batch[batch_off[f] + rank % fleet_cards[f]]


def _replaced_cards(rng: np.random.Generator, w: World, cards: _Cards, legit_paid: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Some people replace an expired or lost card halfway: per account, the second card
    (-1 for none) and when it takes over."""
    second = np.full(w.n, -1, dtype=np.int64)
    switch = np.full(w.n, -1, dtype=np.int64)
    switches = legit_paid[rng.random(legit_paid.size) < 0.08]
    second[switches] = cards.issue(rng.integers(0, cards.first_prepaid, switches.size))
    span = w.active_end[switches] - w.active_start[switches]
    switch[switches] = w.active_start[switches] + (rng.random(switches.size) * span).astype(np.int64)
    return second, switch
