"""Columnar reads inside one read transaction: a few large records instead of one per edge.

Each query works on a chunk of internal node ids and returns one record of parallel lists
(``collect``), so Bolt and the driver decode a handful of big lists rather than millions of
small records, and Python touches no row: numpy turns each list into an array at once.
Edge endpoints come back as internal ids and are mapped to rows with ``searchsorted``.

Neo4j isolates reads at read-committed level, so a write that commits during the export can
be visible to a later query of the same transaction. Torn snapshots are ruled out by
construction: node sets are fixed first, each chunk returns the ids it really found, and
edges whose endpoint is not in the fixed node set (created meanwhile) are dropped and
counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sybilgnn.errors import InputError
from sybilgnn.neo4j.export_schema import ResolvedNode, quote

__all__ = ["NodeColumns", "EdgeColumns", "IdIndex", "fetch_node_ids", "fetch_node_columns",
           "fetch_edges", "count_graph"]

MISSING = "\x1f<null>\x1f"  # no trailing NUL: numpy strips those in comparisons
NAN = float("nan")
Progress = Callable[[int], None]


@dataclass
class NodeColumns:
    """Columns of one node type, rows in key order."""

    internal_ids: np.ndarray
    keys: np.ndarray
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    strings: dict[str, np.ndarray] = field(default_factory=dict)
    times: dict[str, np.ndarray] = field(default_factory=dict)
    vanished: int = 0


@dataclass
class EdgeColumns:
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    dropped_late: int = 0


class IdIndex:
    """Maps internal ids to rows with a binary search over the sorted ids."""

    def __init__(self, internal_ids: np.ndarray) -> None:
        self.order = np.argsort(internal_ids, kind="stable")
        self.sorted = internal_ids[self.order]

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each id, and a mask of ids that are in the index."""
        if self.sorted.size == 0:
            return np.zeros(ids.shape, np.int64), np.zeros(ids.shape, bool)
        pos = np.searchsorted(self.sorted, ids)
        pos_clipped = np.minimum(pos, self.sorted.size - 1)
        found = self.sorted[pos_clipped] == ids
        return self.order[pos_clipped], found


def count_graph(tx: Any, labels: list[str], rel_types: list[str]) -> dict[str, int]:
    """Counts from the count store (constant time), for the meta and the fingerprint."""
    counts: dict[str, int] = {}
    for label in sorted(set(labels)):
        counts[f"node:{label}"] = tx.run(f"MATCH (n:{quote(label)}) RETURN count(n) AS c").single()["c"]
    for rel in sorted(set(rel_types)):
        counts[f"rel:{rel}"] = tx.run(
            f"MATCH ()-[r:{quote(rel)}]->() RETURN count(r) AS c").single()["c"]
    return counts


def fetch_node_ids(tx: Any, label: str) -> np.ndarray:
    """All internal ids of a label in one list: this fixes the node set of the snapshot."""
    record = tx.run(f"MATCH (n:{quote(label)}) RETURN collect(id(n)) AS ids").single()
    return np.asarray(record["ids"], dtype=np.int64)


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def fetch_node_columns(tx: Any, node: ResolvedNode, ids: np.ndarray, *, chunk_size: int,
                       numeric: list[str], strings: list[str], times: list[str],
                       progress: Progress | None = None) -> NodeColumns:
    """Key and property columns for ``ids``; rows sorted by key so hashes ignore id order.

    Every value is wrapped in ``coalesce`` with a sentinel because ``collect`` skips nulls,
    which would misalign the parallel lists.
    """
    returns = ["collect(nid) AS ids", f"collect(coalesce(toString(n.{quote(node.key)}), $missing)) AS k"]
    returns += [f"collect(coalesce(n.{quote(p)}, $nan)) AS n{i}" for i, p in enumerate(numeric)]
    returns += [f"collect(coalesce(toString(n.{quote(p)}), $missing)) AS s{i}"
                for i, p in enumerate(strings)]
    returns += [f"collect(coalesce(n.{quote(p)}.epochMillis, $nan)) AS t{i}"
                for i, p in enumerate(times)]
    query = (f"UNWIND $ids AS nid MATCH (n:{quote(node.label)}) WHERE id(n) = nid "
             f"RETURN {', '.join(returns)}")
    parts: dict[str, list[np.ndarray]] = {"ids": [], "k": []}
    for lo, hi in _chunks(len(ids), chunk_size):
        record = tx.run(query, ids=ids[lo:hi].tolist(), nan=NAN, missing=MISSING).single()
        parts["ids"].append(np.asarray(record["ids"], dtype=np.int64))
        parts["k"].append(np.asarray(record["k"], dtype=object))
        for i in range(len(numeric)):
            parts.setdefault(f"n{i}", []).append(_as_float(record[f"n{i}"], node, numeric[i]))
        for i in range(len(strings)):
            parts.setdefault(f"s{i}", []).append(np.asarray(record[f"s{i}"], dtype=object))
        for i in range(len(times)):
            parts.setdefault(f"t{i}", []).append(
                np.asarray(record[f"t{i}"], dtype=np.float64) / 1000.0)
        if progress:
            progress(hi - lo)
    cat = {name: (np.concatenate(chunks) if chunks else np.empty(0))
           for name, chunks in parts.items()}
    found = cat["ids"].astype(np.int64)
    keys = cat["k"].astype(object)
    if (keys == MISSING).any():
        raise InputError(f"{int((keys == MISSING).sum())} :{node.label} nodes have no "
                         f"{node.key!r}; every exported node needs its key (fix the ingest)")
    order = np.argsort(keys.astype(str), kind="stable")
    columns = NodeColumns(internal_ids=found[order], keys=keys[order],
                          vanished=int(len(ids) - len(found)))
    for i, prop in enumerate(numeric):
        columns.numeric[prop] = cat.get(f"n{i}", np.empty(0))[order]
    for i, prop in enumerate(strings):
        values = cat.get(f"s{i}", np.empty(0, dtype=object))[order]
        values[values == MISSING] = None
        columns.strings[prop] = values
    for i, prop in enumerate(times):
        columns.times[prop] = cat.get(f"t{i}", np.empty(0))[order]
    return columns


def _as_float(values: list[Any], node: ResolvedNode, prop: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        bad = next(v for v in values if not isinstance(v, (int, float, bool)))
        raise InputError(f"property {prop!r} of :{node.label} must be numeric, found {bad!r}; "
                         "list it under categorical in export.nodes or fix the ingest") from None


def fetch_edges(tx: Any, rel_type: str, source: ResolvedNode, target: ResolvedNode,
                source_ids: np.ndarray, target_index: IdIndex, weight: str | None, *,
                chunk_size: int, progress: Progress | None = None) -> EdgeColumns:
    """Edges of one type as row-index arrays; source rows come back as chunk offsets."""
    weight_expr = f"coalesce(r.{quote(weight)}, $nan)" if weight else "1"
    query = (
        "UNWIND range(0, size($ids) - 1) AS k "
        f"MATCH (a:{quote(source.label)}) WHERE id(a) = $ids[k] "
        f"MATCH (a)-[r:{quote(rel_type)}]->(b:{quote(target.label)}) "
        f"RETURN collect(k) AS src, collect(id(b)) AS dst, collect({weight_expr}) AS w"
    )
    srcs, dsts, weights, dropped = [], [], [], 0
    for lo, hi in _chunks(len(source_ids), chunk_size):
        record = tx.run(query, ids=source_ids[lo:hi].tolist(), nan=NAN).single()
        src = np.asarray(record["src"], dtype=np.int64) + lo
        dst_rows, found = target_index.rows(np.asarray(record["dst"], dtype=np.int64))
        w = np.asarray(record["w"], dtype=np.float64)
        dropped += int((~found).sum())
        srcs.append(src[found])
        dsts.append(dst_rows[found])
        weights.append(w[found])
        if progress:
            progress(hi - lo)
    if not srcs:
        empty = np.empty(0, dtype=np.int64)
        return EdgeColumns(empty, empty.copy(), np.empty(0), 0)
    return EdgeColumns(np.concatenate(srcs), np.concatenate(dsts), np.concatenate(weights),
                       dropped)
