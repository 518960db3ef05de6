"""Splitting large components into Louvain communities: bridged fleets come out separate.

Hand-built links, no Neo4j. Rows 0-29 are fleet A (all on ip0 and ip1, all paying with pm0,
one prompt-similar pair), rows 30-59 fleet B (ip2, ip3, pm1, one similar pair); rows 60-61
are legit accounts that are never flagged. Together A and B have 60 accounts, above the
default ``FleetSplit.min_component_size`` of 50, so the defaults apply unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

from sybilgnn.config import Settings
from sybilgnn.scoring import (
    FleetLinks,
    FleetSplit,
    SharedNodes,
    build_fleets,
    find_fleet_components,
    fleet_id_for,
    fleet_split,
)

FLEET_A = list(range(30))
FLEET_B = list(range(30, 60))
NUM_ACCOUNTS = 62
BRIDGE_IP = 4
MAX_SHARED = 100
DEFAULTS = FleetSplit()


def _account_links(ip: np.ndarray, num_ips: int, pay: np.ndarray, num_instruments: int,
                   similar: np.ndarray) -> FleetLinks:
    """(account, IP) and (account, card) pairs shared, (account, account) pairs direct."""
    return FleetLinks(
        shared=(SharedNodes(ip[:, 0], ip[:, 1], num_ips, "n_shared_ips"),
                SharedNodes(pay[:, 0], pay[:, 1], num_instruments, "n_shared_instruments")),
        direct_src=similar[:, 0], direct_dst=similar[:, 1])


def _links(*, bridge: str | None, shuffle_seed: int | None = None) -> FleetLinks:
    """Fleets A and B, optionally bridged between rows 29 and 30 by one IP (which legit row
    60 also uses) or by one prompt-similarity link."""
    ip_pairs = ([(a, ip) for a in FLEET_A for ip in (0, 1)]
                + [(b, ip) for b in FLEET_B for ip in (2, 3)] + [(60, 5), (61, 5)])
    pay_pairs = [(a, 0) for a in FLEET_A] + [(b, 1) for b in FLEET_B]
    similar_pairs = [(0, 1), (30, 31)]
    if bridge == "ip":
        ip_pairs += [(29, BRIDGE_IP), (30, BRIDGE_IP), (60, BRIDGE_IP)]
    elif bridge == "similarity":
        similar_pairs += [(29, 30)]
    ip = np.array(ip_pairs, dtype=np.int64)
    pay = np.array(pay_pairs, dtype=np.int64)
    similar = np.array(similar_pairs, dtype=np.int64)
    if shuffle_seed is not None:  # the same links in another order, similarity reversed
        rng = np.random.default_rng(shuffle_seed)
        ip, pay = ip[rng.permutation(len(ip))], pay[rng.permutation(len(pay))]
        similar = similar[rng.permutation(len(similar))][:, ::-1]
    return _account_links(ip, 6, pay, 2, similar)


def _flagged(rows: list[int], num_accounts: int = NUM_ACCOUNTS) -> np.ndarray:
    mask = np.zeros(num_accounts, dtype=bool)
    mask[rows] = True
    return mask


def _groups(links: FleetLinks, split: FleetSplit | None, *, flagged: list[int] | None = None,
            min_size: int = 3, num_accounts: int = NUM_ACCOUNTS
            ) -> list[tuple[list[int], int, int]]:
    """(member rows, n_shared_ips, n_shared_instruments) per fleet, in output order."""
    rows = FLEET_A + FLEET_B if flagged is None else flagged
    comps = find_fleet_components(_flagged(rows, num_accounts), links, min_size=min_size,
                                  max_shared_accounts=MAX_SHARED, split=split)
    return [(c.rows.tolist(), c.shared["n_shared_ips"], c.shared["n_shared_instruments"])
            for c in comps]


@pytest.mark.parametrize("bridge", ["ip", "similarity"])
def test_bridged_fleets_split_into_the_two_fleets(bridge: str) -> None:
    links = _links(bridge=bridge)
    # Without splitting, one fleet; the bridge IP has two members, so it counts as shared.
    shared_ips = 5 if bridge == "ip" else 4
    assert _groups(links, None) == [(FLEET_A + FLEET_B, shared_ips, 2)]
    # Split: exactly A and B; the bridge IP has one member in each, so neither counts it.
    assert _groups(links, DEFAULTS) == [(FLEET_A, 2, 1), (FLEET_B, 2, 1)]


def test_unbridged_fleets_are_two_components_either_way() -> None:
    expected = [(FLEET_A, 2, 1), (FLEET_B, 2, 1)]
    assert _groups(_links(bridge=None), None) == expected
    assert _groups(_links(bridge=None), DEFAULTS) == expected


def test_split_is_deterministic_and_independent_of_link_order() -> None:
    first = _groups(_links(bridge="ip"), DEFAULTS)
    assert _groups(_links(bridge="ip"), DEFAULTS) == first
    for seed in range(3):
        assert _groups(_links(bridge="ip", shuffle_seed=seed), DEFAULTS) == first


def test_components_under_the_split_size_stay_whole() -> None:
    links = _links(bridge="ip")
    assert _groups(links, FleetSplit(min_component_size=61)) == [(FLEET_A + FLEET_B, 5, 2)]
    assert _groups(links, FleetSplit(min_component_size=60)) == [(FLEET_A, 2, 1),
                                                                 (FLEET_B, 2, 1)]


def test_communities_under_min_fleet_size_are_no_fleet() -> None:
    # min_fleet_size 31: the 60-account component is a fleet, its two 30-account halves not.
    links = _links(bridge="ip")
    assert _groups(links, None, min_size=31) == [(FLEET_A + FLEET_B, 5, 2)]
    assert _groups(links, DEFAULTS, min_size=31) == []


def _one_fleet() -> FleetLinks:
    """60 accounts on two common IPs and one common card; each pair (0,1), (2,3), ... also
    shares an IP nobody else uses, which weighs 1 on that pair against 3/59 elsewhere."""
    members = range(60)
    ip_pairs = [(a, ip) for a in members for ip in (0, 1)] + [(a, 2 + a // 2) for a in members]
    ip = np.array(ip_pairs, dtype=np.int64)
    pay = np.array([(a, 0) for a in members], dtype=np.int64)
    return _account_links(ip, 32, pay, 1, np.zeros((0, 2), dtype=np.int64))


def test_one_dense_fleet_is_not_split() -> None:
    members = list(range(60))
    assert _groups(_one_fleet(), DEFAULTS, flagged=members, num_accounts=60) == [
        (members, 32, 1)]
    # A resolution far above the default (Louvain resolution 2.4 here) cuts it into pairs.
    pairs = _groups(_one_fleet(), FleetSplit(resolution=40.0), flagged=members, min_size=2,
                    num_accounts=60)
    assert pairs == [([a, a + 1], 3, 1) for a in range(0, 60, 2)]


def test_split_fleets_keep_ids_and_previous_matches() -> None:
    account_ids = np.array([f"acct-{r:02d}" for r in range(NUM_ACCOUNTS)], dtype=object)
    members_a = tuple(str(a) for a in account_ids[FLEET_A])
    members_b = tuple(str(a) for a in account_ids[FLEET_B])
    scores = np.linspace(0.5, 1.0, NUM_ACCOUNTS)
    flagged = _flagged(FLEET_A + FLEET_B)
    # The last run saw A and B merged (Jaccard 1/2 with either half) and B on its own (1).
    previous = {"fleet-merged": frozenset(members_a + members_b),
                "fleet-b-old": frozenset(members_b)}
    fleets = build_fleets(flagged, scores, account_ids, _links(bridge="ip"), previous,
                          min_size=3, max_shared_accounts=MAX_SHARED, stability_jaccard=0.5,
                          split=DEFAULTS)
    by_members = {f.members: f for f in fleets}
    assert set(by_members) == {members_a, members_b}
    a, b = by_members[members_a], by_members[members_b]
    assert (b.fleet_id, b.previous_id) == ("fleet-b-old", "fleet-b-old")
    assert (a.fleet_id, a.previous_id) == ("fleet-merged", "fleet-merged")
    assert a.shared == {"n_shared_ips": 2, "n_shared_instruments": 1}
    assert a.mean_score == pytest.approx(float(np.mean(scores[FLEET_A])))
    fresh = build_fleets(flagged, scores, account_ids, _links(bridge="ip"), {}, min_size=3,
                         max_shared_accounts=MAX_SHARED, stability_jaccard=0.5, split=DEFAULTS)
    assert [(f.fleet_id, f.previous_id) for f in fresh] == sorted(
        [(fleet_id_for(members_a), None), (fleet_id_for(members_b), None)])


def test_settings_turn_splitting_on_and_off() -> None:
    settings = Settings()
    assert fleet_split(settings) == FleetSplit(min_component_size=50, resolution=2.0,
                                               similarity_weight=1.0)
    settings.scoring.fleet_split_min_size = 12
    settings.scoring.fleet_split_resolution = 1.5
    settings.scoring.fleet_split_similarity_weight = 3.0
    assert fleet_split(settings) == FleetSplit(min_component_size=12, resolution=1.5,
                                               similarity_weight=3.0)
    settings.scoring.fleet_split = False
    assert fleet_split(settings) is None
