"""Group flagged accounts into fleets and keep each fleet's id stable across runs.

Which relations link accounts is configuration (``export.fleet_relations``, read through
``GraphSchema``; accounts are the labelled node type): a relation to another node type links
the flagged accounts that share one of its nodes (on the default schema: used the same IP,
paid with the same instrument), a relation between two accounts links them directly (wrote
near-duplicate prompts). An IP or instrument used by more than
``max_shared_accounts`` accounts in total (carrier NAT, a university, a shared office card)
links nobody: one such hub would merge unrelated fleets into one.

Grouping takes two passes. First the connected components of those links (scipy; fast,
and enough for most fleets). But fleets that rent overlapping slices of one proxy pool, or
a few similar prompts between two fleets, bridge separate fleets into one component, so,
second, each component of at least ``FleetSplit.min_component_size`` accounts is split into
Louvain communities (networkx; fixed seed, nodes and edges added in sorted order, so the
same input gives the same fleets). The Louvain graph is weighted so that the evidence a
link carries counts, not how many links there are: an IP or instrument used by ``k``
accounts in all adds ``1/(k-1)`` to each pair of its users (a card three accounts share
links them firmly, a proxy IP used by two fleets and its legit customers links each pair
weakly), and a direct (prompt-similarity) link adds ``FleetSplit.similarity_weight``. Louvain's
resolution is ``FleetSplit.resolution`` per 1,000 accounts of the component, so that a
bigger world (bigger components) does not merge fleets that a smaller one keeps apart
(modularity's resolution limit). Each community that is not connected on its own is cut
into its connected parts. A fleet is a component or community of at least
``min_fleet_size`` accounts; smaller groups are no fleet.

Ids: a new fleet takes the id of the previous active fleet it overlaps most
(Jaccard >= ``stability_jaccard``, greedy by best overlap); otherwise it gets
``fleet-<8 hex>`` from a hash of its sorted members. Previous fleets left unmatched become
``active = false`` and lose their ``MEMBER_OF`` edges; their nodes stay as history.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import networkx as nx
import numpy as np
from neo4j import Driver, ManagedTransaction
from scipy.sparse import coo_matrix, csr_matrix, diags, triu
from scipy.sparse.csgraph import connected_components

from sybilgnn.graph_schema import NodeType
from sybilgnn.neo4j.cypher import quote

__all__ = [
    "Fleet",
    "FleetLinks",
    "FleetSplit",
    "SharedNodes",
    "assign_fleet_ids",
    "build_fleets",
    "find_fleet_components",
    "fleet_id_for",
    "read_active_fleets",
    "write_fleets",
]


def _no_rows() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class SharedNodes:
    """One fleet relation to another node type: (account row, node row) pairs as int64
    arrays (account-IP, account-instrument), the number of such nodes, and the (:Fleet)
    property that counts the nodes a fleet's members share."""

    accounts: np.ndarray
    nodes: np.ndarray
    num_nodes: int
    count_property: str


@dataclass(frozen=True)
class FleetLinks:
    """Account-row links the grouping reads: shared nodes per relation, and direct
    (account row, account row) pairs (prompt similarity), as int64 arrays."""

    shared: tuple[SharedNodes, ...] = ()
    direct_src: np.ndarray = field(default_factory=_no_rows)
    direct_dst: np.ndarray = field(default_factory=_no_rows)


@dataclass(frozen=True)
class FleetSplit:
    """How large components are split into Louvain communities (see the module docstring).

    ``min_component_size``: smaller components stay whole (a small component is rarely two
    fleets, and Louvain costs time). ``resolution``: Louvain's resolution per 1,000 accounts
    of the component; higher gives more, smaller fleets. Modularity at a fixed resolution
    merges ever larger groups as the graph grows (its resolution limit); scaled with the
    component's size, whether two fleets come apart depends on the links between them, not
    on how many other fleets share their component. ``similarity_weight``: what a
    prompt-similarity link adds to a pair's weight. ``seed``: Louvain's random seed, fixed so
    that runs agree. The defaults separated every true fleet of the ``medium`` simulator at
    20,000 and 100,000 accounts (docs/scoring.md).
    """

    min_component_size: int = 50
    resolution: float = 2.0
    similarity_weight: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class Fleet:
    fleet_id: str
    members: tuple[str, ...]
    mean_score: float
    shared: dict[str, int]  # (:Fleet) count property -> nodes shared by two or more members
    previous_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class _Component:
    rows: np.ndarray
    shared: dict[str, int]


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


def _pair_weights(rows: np.ndarray, num_accounts: int, links: FleetLinks, *,
                  max_shared_accounts: int, similarity_weight: float) -> csr_matrix:
    """Symmetric Louvain weights between ``rows`` (index i = account ``rows[i]``), empty
    diagonal. Each linking IP or instrument used by ``k`` accounts in all adds ``1/(k-1)``
    to every pair of its users here, so a card three accounts share links them firmly and a
    proxy IP behind which two fleets and their legit customers work links each pair weakly;
    a direct (prompt-similar) pair adds ``similarity_weight``."""
    n = rows.size
    local = np.full(num_accounts, -1, dtype=np.int64)
    local[rows] = np.arange(n)

    def shared(accounts: np.ndarray, hubs: np.ndarray, num_hubs: int) -> csr_matrix:
        degree = np.bincount(hubs, minlength=num_hubs)
        keep = (local[accounts] >= 0) & (degree[hubs] <= max_shared_accounts)
        incidence = csr_matrix((np.ones(int(keep.sum())), (local[accounts[keep]], hubs[keep])),
                               shape=(n, num_hubs))
        incidence.sum_duplicates()
        incidence.data[:] = 1.0  # an IP used in many sessions still counts once
        spread = diags(1.0 / np.maximum(degree - 1, 1))
        return csr_matrix(incidence @ spread @ incidence.T)

    both = (local[links.direct_src] >= 0) & (local[links.direct_dst] >= 0)
    src, dst = local[links.direct_src[both]], local[links.direct_dst[both]]
    similar = csr_matrix((np.ones(src.size), (src, dst)), shape=(n, n))
    similar = csr_matrix(similar + similar.T)
    similar.data[:] = similarity_weight  # one weight per pair, whichever way it was stored
    summed: csr_matrix | None = None  # in the order of the fleet relations, direct ones last
    for hubs in links.shared:
        pairs = shared(hubs.accounts, hubs.nodes, hubs.num_nodes)
        summed = pairs if summed is None else summed + pairs
    weights = (similar if summed is None else summed + similar).tocoo()
    off_diagonal = weights.row != weights.col
    return csr_matrix((weights.data[off_diagonal],
                       (weights.row[off_diagonal], weights.col[off_diagonal])), shape=(n, n))


def _louvain_groups(weights: csr_matrix, split: FleetSplit) -> list[np.ndarray]:
    """Louvain communities of one component (local indices), each cut into its connected
    parts; deterministic because nodes and edges enter the graph sorted."""
    upper = triu(weights, k=1).tocoo()
    order = np.lexsort((upper.col, upper.row))
    graph = nx.Graph()
    graph.add_nodes_from(range(weights.shape[0]))
    graph.add_weighted_edges_from(zip(upper.row[order].tolist(), upper.col[order].tolist(),
                                      upper.data[order].tolist()))
    communities = nx.community.louvain_communities(
        graph, weight="weight", resolution=split.resolution * weights.shape[0] / 1000,
        seed=split.seed)
    groups: list[np.ndarray] = []
    for community in communities:
        members = np.array(sorted(community), dtype=np.int64)
        inside = weights[members][:, members]
        n_parts, part = connected_components(inside, directed=False)
        groups.extend(members[part == k] for k in range(n_parts))
    return groups


def _split_components(rows: np.ndarray, comp: np.ndarray, sizes: np.ndarray,
                      num_accounts: int, links: FleetLinks, *, max_shared_accounts: int,
                      split: FleetSplit | None) -> list[np.ndarray]:
    """Account rows of each component; those of ``split.min_component_size`` or more
    replaced by their communities. Rows sorted within a group."""
    order = np.argsort(comp, kind="stable")
    groups = np.split(rows[order], np.cumsum(sizes)[:-1])
    if split is None:
        return groups
    large = [g for g in groups if g.size >= split.min_component_size]
    if not large:
        return groups
    large_rows = np.concatenate(large)
    weights = _pair_weights(large_rows, num_accounts, links,
                            max_shared_accounts=max_shared_accounts,
                            similarity_weight=split.similarity_weight)
    result = [g for g in groups if g.size < split.min_component_size]
    start = 0
    for group in large:  # each component is one diagonal block of ``weights``
        block = weights[start:start + group.size, start:start + group.size]
        result.extend(group[part] for part in _louvain_groups(block, split))
        start += group.size
    return result


def find_fleet_components(flagged: np.ndarray, links: FleetLinks, *, min_size: int,
                          max_shared_accounts: int,
                          split: FleetSplit | None = None) -> list[_Component]:
    """Fleets among flagged accounts: connected components, the large ones split into
    Louvain communities when ``split`` is given; groups of ``min_size`` or more, ordered by
    their first account row."""
    flagged = np.asarray(flagged, dtype=bool)
    hub_pairs = [_hub_links(h.accounts, h.nodes, h.num_nodes, flagged, max_shared_accounts)
                 for h in links.shared]
    both = flagged[links.direct_src] & flagged[links.direct_dst]
    src = np.concatenate([*(p[0] for p in hub_pairs), links.direct_src[both]]).astype(np.int64)
    dst = np.concatenate([*(p[1] for p in hub_pairs), links.direct_dst[both]]).astype(np.int64)
    rows = np.flatnonzero(flagged)
    if rows.size == 0:
        return []
    compact = np.full(flagged.size, -1, dtype=np.int64)
    compact[rows] = np.arange(rows.size)
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (compact[src], compact[dst])),
                       shape=(rows.size, rows.size))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    keep = sizes[comp] >= min_size
    if not keep.any():
        return []
    groups = _split_components(rows[keep], comp[keep], sizes[sizes >= min_size],
                               flagged.size, links,
                               max_shared_accounts=max_shared_accounts, split=split)
    groups = sorted((g for g in groups if g.size >= min_size), key=lambda g: int(g[0]))
    if not groups:
        return []
    labels = np.full(flagged.size, -1, dtype=np.int64)
    for k, group in enumerate(groups):
        labels[group] = k
    counts = {h.count_property: _shared_counts(labels, h.accounts, h.nodes, h.num_nodes,
                                               max_shared_accounts, len(groups))
              for h in links.shared}
    return [_Component(rows=group, shared={name: int(c[k]) for name, c in counts.items()})
            for k, group in enumerate(groups)]


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
                 min_size: int, max_shared_accounts: int, stability_jaccard: float,
                 split: FleetSplit | None = None) -> list[Fleet]:
    """Fleets of flagged accounts (``split``: see ``find_fleet_components``) with ids
    matched against the previous active fleets."""
    comps = find_fleet_components(flagged, links, min_size=min_size,
                                  max_shared_accounts=max_shared_accounts, split=split)
    member_lists = [tuple(sorted(str(a) for a in account_ids[c.rows])) for c in comps]
    ids = assign_fleet_ids(member_lists, previous, stability_jaccard=stability_jaccard)
    fleets = [Fleet(fleet_id=fid, members=members, mean_score=float(np.mean(scores[c.rows])),
                    shared=c.shared, previous_id=prev)
              for c, members, (fid, prev) in zip(comps, member_lists, ids)]
    return sorted(fleets, key=lambda f: f.fleet_id)


def read_active_fleets(driver: Driver, node: NodeType, database: str | None = None
                       ) -> dict[str, frozenset[str]]:
    """Active fleets and the keys of their members (nodes of ``node``, the labelled type),
    as the last finished run left them."""
    from sybilgnn.scoring.writeback import read_records

    records = read_records(
        driver, f"MATCH (f:Fleet {{active: true}}) OPTIONAL MATCH (a:{quote(node.label)})"
        f"-[:MEMBER_OF]->(f) RETURN f.fleet_id AS fleet_id, collect(a.{quote(node.key)}) "
        "AS members", database)
    return {r["fleet_id"]: frozenset(r["members"]) for r in records}


def write_fleets(tx: ManagedTransaction, run_id: str, fleets: list[Fleet],
                 previous_ids: set[str] | frozenset[str], seen_at: datetime, *,
                 node: NodeType) -> None:
    """Replace fleet memberships in one transaction; unmatched previous fleets go inactive.
    Members are nodes of ``node`` (the labelled type), matched by key."""
    kept = {f.fleet_id for f in fleets}
    gone = sorted(set(previous_ids) - kept)
    label, key = quote(node.label), quote(node.key)
    tx.run(f"MATCH (:{label})-[m:MEMBER_OF]->(:Fleet) DELETE m").consume()
    tx.run("UNWIND $gone AS fid MATCH (f:Fleet {fleet_id: fid}) "
           "SET f.active = false, f.deactivated_run_id = $run_id",
           gone=gone, run_id=run_id).consume()
    rows: list[dict[str, Any]] = [
        {"fleet_id": f.fleet_id, "size": f.size, "mean_score": f.mean_score,
         "shared": dict(f.shared)}
        for f in fleets]
    tx.run(
        """
        UNWIND $rows AS row
        MERGE (f:Fleet {fleet_id: row.fleet_id})
        ON CREATE SET f.created_run_id = $run_id, f.first_seen = $seen_at
        SET f.size = row.size, f.mean_score = row.mean_score, f += row.shared,
            f.last_seen = $seen_at, f.updated_run_id = $run_id, f.active = true
        REMOVE f.deactivated_run_id
        """, rows=rows, run_id=run_id, seen_at=seen_at).consume()
    members = [{"a": account, "f": f.fleet_id} for f in fleets for account in f.members]
    tx.run(f"UNWIND $rows AS row MATCH (a:{label} {{{key}: row.a}}) "
           "MATCH (f:Fleet {fleet_id: row.f}) MERGE (a)-[:MEMBER_OF]->(f)",
           rows=members).consume()
