"""Group flagged accounts into fleets and keep each fleet's id stable across runs.

Two flagged accounts are linked when they used the same IP, paid with the same instrument
or wrote near-duplicate prompts; a fleet is a connected component of those links with at
least ``min_fleet_size`` accounts. An IP or instrument used by more than
``max_shared_accounts`` accounts in total (carrier NAT, a university, a shared office card)
links nobody: one such hub would merge unrelated fleets into one.

Ids: a new component takes the id of the previous active fleet it overlaps most
(Jaccard >= ``stability_jaccard``, greedy by best overlap); otherwise it gets
``fleet-<8 hex>`` from a hash of its sorted members. Previous fleets left unmatched become
``active = false`` and lose their ``MEMBER_OF`` edges; their nodes stay as history.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from neo4j import Driver, ManagedTransaction
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "Fleet",
    "FleetLinks",
    "assign_fleet_ids",
    "build_fleets",
    "find_fleet_components",
    "fleet_id_for",
    "read_active_fleets",
    "write_fleets",
]


@dataclass(frozen=True)
class FleetLinks:
    """Account-row links the grouping reads: (account row, IP row), (account row, instrument
    row) and (account row, account row) pairs, as int64 arrays."""

    ip_account: np.ndarray
    ip: np.ndarray
    num_ips: int
    pay_account: np.ndarray
    pay: np.ndarray
    num_instruments: int
    similar_src: np.ndarray
    similar_dst: np.ndarray


@dataclass(frozen=True)
class Fleet:
    fleet_id: str
    members: tuple[str, ...]
    mean_score: float
    n_shared_ips: int
    n_shared_instruments: int
    previous_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class _Component:
    rows: np.ndarray
    n_shared_ips: int
    n_shared_instruments: int


def fleet_id_for(members: tuple[str, ...] | list[str]) -> str:
    """``fleet-<8 hex>`` from the sorted member ids: the same first membership, the same id."""
    digest = hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()
    return f"fleet-{digest[:8]}"


def _hub_links(accounts: np.ndarray, hubs: np.ndarray, num_hubs: int, flagged: np.ndarray,
               max_shared: int) -> tuple[np.ndarray, np.ndarray]:
    """Link every flagged account on a hub to the first flagged account on that hub."""
    if accounts.size == 0:
        return accounts, accounts
    degree = np.bincount(hubs, minlength=num_hubs)
    keep = flagged[accounts] & (degree[hubs] <= max_shared)
    acc, hub = accounts[keep], hubs[keep]
    order = np.lexsort((acc, hub))
    acc, hub = acc[order], hub[order]
    starts = np.r_[0, np.flatnonzero(np.diff(hub)) + 1] if hub.size else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, hub.size])
    return np.repeat(acc[starts], lengths), acc


def _shared_counts(labels: np.ndarray, accounts: np.ndarray, hubs: np.ndarray,
                   num_hubs: int, max_shared: int, n_labels: int) -> np.ndarray:
    """Per component: linking hubs (not over ``max_shared``) used by two or more members."""
    if accounts.size == 0:
        return np.zeros(n_labels, dtype=np.int64)
    comp = labels[accounts]
    inside = (comp >= 0) & (np.bincount(hubs, minlength=num_hubs)[hubs] <= max_shared)
    if not inside.any():
        return np.zeros(n_labels, dtype=np.int64)
    triples = np.unique(np.stack([comp[inside], hubs[inside], accounts[inside]], axis=1), axis=0)
    pairs, counts = np.unique(triples[:, :2], axis=0, return_counts=True)
    shared = pairs[counts >= 2, 0]
    return np.bincount(shared, minlength=n_labels)


def find_fleet_components(flagged: np.ndarray, links: FleetLinks, *, min_size: int,
                          max_shared_accounts: int) -> list[_Component]:
    """Connected components over flagged accounts; those of ``min_size`` or more, sorted."""
    flagged = np.asarray(flagged, dtype=bool)
    ip_src, ip_dst = _hub_links(links.ip_account, links.ip, links.num_ips, flagged,
                                max_shared_accounts)
    pm_src, pm_dst = _hub_links(links.pay_account, links.pay, links.num_instruments, flagged,
                                max_shared_accounts)
    both = flagged[links.similar_src] & flagged[links.similar_dst]
    src = np.concatenate([ip_src, pm_src, links.similar_src[both]]).astype(np.int64)
    dst = np.concatenate([ip_dst, pm_dst, links.similar_dst[both]]).astype(np.int64)
    rows = np.flatnonzero(flagged)
    if rows.size == 0:
        return []
    compact = np.full(flagged.size, -1, dtype=np.int64)
    compact[rows] = np.arange(rows.size)
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (compact[src], compact[dst])),
                       shape=(rows.size, rows.size))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    big = np.flatnonzero(sizes >= min_size)
    if big.size == 0:
        return []
    relabel = np.full(sizes.size, -1, dtype=np.int64)
    relabel[big] = np.arange(big.size)
    labels = np.full(flagged.size, -1, dtype=np.int64)
    labels[rows] = relabel[comp]
    n_ips = _shared_counts(labels, links.ip_account, links.ip, links.num_ips,
                           max_shared_accounts, big.size)
    n_pms = _shared_counts(labels, links.pay_account, links.pay, links.num_instruments,
                           max_shared_accounts, big.size)
    order = np.argsort(labels[rows], kind="stable")
    grouped = rows[order][labels[rows][order] >= 0]
    bounds = np.cumsum(sizes[big])[:-1]
    return [_Component(rows=members, n_shared_ips=int(n_ips[k]),
                       n_shared_instruments=int(n_pms[k]))
            for k, members in enumerate(np.split(grouped, bounds))]


def assign_fleet_ids(components: list[tuple[str, ...]],
                     previous: Mapping[str, frozenset[str] | set[str]], *,
                     stability_jaccard: float) -> list[tuple[str, str | None]]:
    """For each component (sorted member ids): ``(fleet_id, previous fleet id or None)``."""
    owner: dict[str, str] = {}
    for fid, members in previous.items():
        for account in members:
            owner[account] = fid
    candidates: list[tuple[float, int, str, int]] = []
    for index, members in enumerate(components):
        overlaps = Counter(owner[a] for a in members if a in owner)
        for fid, inter in overlaps.items():
            jaccard = inter / (len(members) + len(previous[fid]) - inter)
            if jaccard >= stability_jaccard:
                candidates.append((-jaccard, -inter, fid, index))
    candidates.sort(key=lambda c: (c[0], c[1], c[2], components[c[3]]))
    matched: dict[int, str] = {}
    taken: set[str] = set()
    for _, _, fid, index in candidates:
        if index not in matched and fid not in taken:
            matched[index] = fid
            taken.add(fid)
    result: list[tuple[str, str | None]] = []
    used = set(taken)
    for index, members in enumerate(components):
        if index in matched:
            result.append((matched[index], matched[index]))
            continue
        fid = fleet_id_for(members)
        if fid in used:  # a hash shared with a fleet already taken this run: lengthen it
            fid = fid + "-" + hashlib.sha256(repr(members).encode()).hexdigest()[:6]
        used.add(fid)
        result.append((fid, None))
    return result


def build_fleets(flagged: np.ndarray, scores: np.ndarray, account_ids: np.ndarray,
                 links: FleetLinks, previous: Mapping[str, frozenset[str] | set[str]], *,
                 min_size: int, max_shared_accounts: int,
                 stability_jaccard: float) -> list[Fleet]:
    """Components of flagged accounts with ids matched against the previous active fleets."""
    comps = find_fleet_components(flagged, links, min_size=min_size,
                                  max_shared_accounts=max_shared_accounts)
    member_lists = [tuple(sorted(str(a) for a in account_ids[c.rows])) for c in comps]
    ids = assign_fleet_ids(member_lists, previous, stability_jaccard=stability_jaccard)
    fleets = [Fleet(fleet_id=fid, members=members, mean_score=float(np.mean(scores[c.rows])),
                    n_shared_ips=c.n_shared_ips, n_shared_instruments=c.n_shared_instruments,
                    previous_id=prev)
              for c, members, (fid, prev) in zip(comps, member_lists, ids)]
    return sorted(fleets, key=lambda f: f.fleet_id)


def read_active_fleets(driver: Driver, database: str | None = None) -> dict[str, frozenset[str]]:
    """Active fleets and their members, as the last finished run left them."""
    from sybilgnn.scoring.writeback import read_records

    records = read_records(
        driver, "MATCH (f:Fleet {active: true}) OPTIONAL MATCH (a:Account)-[:MEMBER_OF]->(f) "
        "RETURN f.fleet_id AS fleet_id, collect(a.account_id) AS members", database)
    return {r["fleet_id"]: frozenset(r["members"]) for r in records}


def write_fleets(tx: ManagedTransaction, run_id: str, fleets: list[Fleet],
                 previous_ids: set[str] | frozenset[str], seen_at: datetime) -> None:
    """Replace fleet memberships in one transaction; unmatched previous fleets go inactive."""
    kept = {f.fleet_id for f in fleets}
    gone = sorted(set(previous_ids) - kept)
    tx.run("MATCH (:Account)-[m:MEMBER_OF]->(:Fleet) DELETE m").consume()
    tx.run("UNWIND $gone AS fid MATCH (f:Fleet {fleet_id: fid}) "
           "SET f.active = false, f.deactivated_run_id = $run_id",
           gone=gone, run_id=run_id).consume()
    rows: list[dict[str, Any]] = [
        {"fleet_id": f.fleet_id, "size": f.size, "mean_score": f.mean_score,
         "n_shared_ips": f.n_shared_ips, "n_shared_instruments": f.n_shared_instruments}
        for f in fleets]
    tx.run(
        """
        UNWIND $rows AS row
        MERGE (f:Fleet {fleet_id: row.fleet_id})
        ON CREATE SET f.created_run_id = $run_id, f.first_seen = $seen_at
        SET f.size = row.size, f.mean_score = row.mean_score,
            f.n_shared_ips = row.n_shared_ips, f.n_shared_instruments = row.n_shared_instruments,
            f.last_seen = $seen_at, f.updated_run_id = $run_id, f.active = true
        REMOVE f.deactivated_run_id
        """, rows=rows, run_id=run_id, seen_at=seen_at).consume()
    members = [{"a": account, "f": f.fleet_id} for f in fleets for account in f.members]
    tx.run("UNWIND $rows AS row MATCH (a:Account {account_id: row.a}) "
           "MATCH (f:Fleet {fleet_id: row.f}) MERGE (a)-[:MEMBER_OF]->(f)",
           rows=members).consume()
