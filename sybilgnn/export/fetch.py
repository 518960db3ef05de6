"""Columnar reads inside one read transaction: a few large records instead of one per edge.

Each query works on a chunk of internal node ids and returns one record of parallel lists
(``collect``), so Bolt and the driver decode a handful of big flat lists rather than
millions of small records, and Python touches no row: numpy turns each list into an array at
once. Edge endpoints come back as internal ids and are mapped to rows with ``searchsorted``.

Where the server's time goes, and what the queries do about it (measured, see
``benchmarks/README.md``):

- A node's properties are a linked chain of small store records, and every ``n.prop`` walks
  that chain from its head, so reading ~25 properties one by one costs ~25 chain walks per
  node. ``properties(n)`` walks it once into a map; the columns are read from that map.
- ``collect`` skips nulls, so a column with gaps would misalign the parallel lists;
  ``coalesce(value, sentinel)`` fixes that but costs as much again as the ``collect``.
  Columns are therefore read *dense* (no ``coalesce``) and a chunk whose dense list comes
  back shorter than its id list is read again with that column padded, which it stays for
  the rest of the export. Columns known to be sparse (labels, verdicts) start padded.
- Nested lists (one list per node) would save the server work but cost the driver several
  times more to decode than flat lists; map-valued results are slower still.

Neo4j isolates reads at read-committed level, so a write that commits during the export can
be visible to a later query of the same transaction. Torn snapshots are ruled out by
construction: node sets are fixed first, each chunk returns the ids it really found, and
edges whose endpoint is not in the fixed node set (created meanwhile) are dropped and
counted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sybilgnn.errors import InputError
from sybilgnn.export.schema import ResolvedNode
from sybilgnn.neo4j.cypher import quote

__all__ = ["NodeColumns", "EdgeColumns", "IdIndex", "NodeReader", "EdgeReader", "EdgeSpec",
           "chunks", "fetch_node_ids", "count_graph", "count_ending_at"]

MISSING = "\x1f<null>\x1f"  # no trailing NUL: numpy strips those in comparisons
NAN = float("nan")


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
    """Maps internal ids to rows.

    Neo4j's internal ids are positions in the node store, so they are dense: a lookup table
    as long as the largest id turns each mapping into one gather, several times faster than
    a binary search over millions of ids. Ids sparser than ``_MAX_TABLE_SPREAD`` times the
    node count fall back to the binary search, so memory stays bounded.
    """

    _MAX_TABLE_SPREAD = 8

    def __init__(self, internal_ids: np.ndarray) -> None:
        self.size = int(internal_ids.size)
        self.table: np.ndarray | None = None
        self.order = self.sorted = np.empty(0, dtype=np.int64)
        if not self.size:
            return
        top = int(internal_ids.max()) + 1
        if internal_ids.min() >= 0 and top <= self._MAX_TABLE_SPREAD * self.size + 1024:
            self.table = np.full(top, -1, dtype=np.int64)
            self.table[internal_ids] = np.arange(self.size)
        else:
            self.order = np.argsort(internal_ids, kind="stable")
            self.sorted = internal_ids[self.order]

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each id, and a mask of ids that are in the index."""
        if not self.size:
            return np.zeros(ids.shape, np.int64), np.zeros(ids.shape, bool)
        if self.table is not None:
            inside = (ids >= 0) & (ids < self.table.size)
            rows = self.table[np.where(inside, ids, 0)]
            found = inside & (rows >= 0)
            return np.where(found, rows, 0), found
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


def count_ending_at(tx: Any, rel_type: str, label: str) -> int:
    """Relationships of ``rel_type`` that end at a ``label`` node (count store, constant time)."""
    query = f"MATCH ()-[r:{quote(rel_type)}]->(:{quote(label)}) RETURN count(r) AS c"
    return int(tx.run(query).single()["c"])


def fetch_node_ids(tx: Any, label: str) -> np.ndarray:
    """All internal ids of a label, ascending: this fixes the node set of the snapshot.

    Ascending ids make every chunk a run of neighbouring store records for the seeks.
    """
    record = tx.run(f"MATCH (n:{quote(label)}) RETURN collect(id(n)) AS ids").single()
    return np.sort(np.asarray(record["ids"], dtype=np.int64))


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` bounds of consecutive chunks of ``size`` over ``n`` items."""
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


@dataclass(frozen=True)
class _Column:
    """One property column of a node query; ``kind`` says how it is read and padded."""

    field: str
    prop: str
    kind: str  # "key" | "numeric" | "string" | "time"

    def expression(self, padded: bool) -> str:
        value = f"p.{quote(self.prop)}"
        if self.kind in ("key", "string"):
            value = f"toString({value})"
        elif self.kind == "time":
            value = f"{value}.epochMillis"
        if padded:
            sentinel = "$nan" if self.kind in ("numeric", "time") else "$missing"
            value = f"coalesce({value}, {sentinel})"
        return f"collect({value}) AS {self.field}"


class _PaddedQuery:
    """A columnar query that pads exactly the columns found to have gaps.

    ``build(padded)`` returns the query text for a set of padded fields. Every field in
    ``fields`` must come back as long as the ``length_field`` list; otherwise the chunk is
    read again with the short fields padded, and they stay padded for later chunks (also
    those read by other threads: the set only grows, so a race costs one extra read).
    """

    def __init__(self, build: Callable[[frozenset[str]], str], fields: list[str],
                 length_field: str, padded: Collection[str] = ()) -> None:
        self.build, self.fields, self.length_field = build, fields, length_field
        self.padded = frozenset(padded)
        self.queries: dict[frozenset[str], str] = {}

    def run(self, tx: Any, **params: Any) -> Any:
        while True:
            padded = self.padded
            query = self.queries.setdefault(padded, self.build(padded))
            record = tx.run(query, nan=NAN, missing=MISSING, **params).single()
            n = len(record[self.length_field])
            short = {f for f in self.fields if f not in padded and len(record[f]) != n}
            if not short:
                return record
            self.padded = self.padded | short


_NODE_MATCH = ("MATCH (n) WHERE id(n) IN $ids AND n:{label} "
               "WITH id(n) AS nid, properties(n) AS p ")
_NODE_FIX = "list it under categorical in export.nodes or fix the ingest"
_EDGE_FIX = "fix export.relationships or the ingest"


class NodeReader:
    """Reads the key and property columns of one node type, chunk by chunk.

    ``sparse`` names properties most nodes lack (labels, verdicts): they are padded from
    the first chunk on instead of being discovered short and read twice.
    """

    def __init__(self, node: ResolvedNode, *, numeric: list[str], strings: list[str],
                 times: list[str], sparse: Collection[str] = (),
                 procedures: bool = False) -> None:
        self.node, self.procedures = node, procedures
        self.names = {"numeric": numeric, "strings": strings, "times": times}
        self.columns = [_Column("k", node.key, "key")]
        self.columns += [_Column(f"n{i}", p, "numeric") for i, p in enumerate(numeric)]
        self.columns += [_Column(f"s{i}", p, "string") for i, p in enumerate(strings)]
        self.columns += [_Column(f"t{i}", p, "time") for i, p in enumerate(times)]
        match = _NODE_MATCH.format(label=quote(node.label))

        def build(padded: frozenset[str]) -> str:
            returns = ["collect(nid) AS ids"] + [c.expression(c.field in padded)
                                                 for c in self.columns]
            return match + "RETURN " + ", ".join(returns)

        self.query = _PaddedQuery(build, [c.field for c in self.columns], "ids",
                                  [c.field for c in self.columns if c.prop in sparse])

    def read(self, tx: Any, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Columns of the nodes of ``ids`` that still exist; ``"ids"`` says which those are."""
        if self.procedures:
            return self._read_packed(tx, ids)
        record = self.query.run(tx, ids=ids.tolist())
        out: dict[str, np.ndarray] = {"ids": np.asarray(record["ids"], dtype=np.int64)}
        for column in self.columns:
            values = record[column.field]
            if column.kind == "numeric":
                out[column.field] = _as_float(values, f":{self.node.label}", column.prop,
                                              _NODE_FIX)
            elif column.kind == "time":
                out[column.field] = np.asarray(values, dtype=np.float64) / 1000.0
            else:
                out[column.field] = np.asarray(values, dtype=object)
        return out

    def _read_packed(self, tx: Any, ids: np.ndarray) -> dict[str, np.ndarray]:
        """The same columns through ``sybilgnn.export.nodes`` (packed arrays, see plugin)."""
        record = tx.run(_NODES_PROCEDURE, ids=_packed_ids(ids), label=self.node.label,
                        key=self.node.key, missing=MISSING, **self.names).single()
        _raise_bad(record["bad"], f":{self.node.label}", self.columns, _NODE_FIX)
        # read-only views of the received buffers: ``assemble`` concatenates (copies) them
        found = np.frombuffer(record["ids"], dtype="<i8")
        n = found.size
        by_kind = {
            "numeric": _unpack_floats(record["numeric"], n, len(self.names["numeric"])),
            "time": _unpack_floats(record["times"], n, len(self.names["times"])),
            "string": _unpack_texts(record["strings"], n, len(self.names["strings"])),
        }
        out: dict[str, np.ndarray] = {"ids": found, "k": _unpack_texts(record["keys"], n, 1)[0]}
        position = {"numeric": 0, "string": 0, "time": 0}
        for column in self.columns[1:]:
            out[column.field] = by_kind[column.kind][position[column.kind]]
            position[column.kind] += 1
        return out

    def assemble(self, fixed: np.ndarray, parts: list[dict[str, np.ndarray]]) -> NodeColumns:
        """Concatenate the chunks; rows sorted by key so hashes ignore id order."""
        empty = {"ids": np.empty(0, dtype=np.int64)}
        empty |= {c.field: np.empty(0, dtype=object if c.kind in ("key", "string")
                                    else np.float64) for c in self.columns}
        cat = {name: (np.concatenate([p[name] for p in parts]) if parts else array)
               for name, array in empty.items()}
        found = cat["ids"].astype(np.int64)
        keys = cat["k"].astype(object)
        if (keys == MISSING).any():
            raise InputError(f"{int((keys == MISSING).sum())} :{self.node.label} nodes have no "
                             f"{self.node.key!r}; every exported node needs its key "
                             "(fix the ingest)")
        order = np.argsort(keys.astype(str), kind="stable")
        result = NodeColumns(internal_ids=found[order], keys=keys[order],
                             vanished=int(len(fixed) - len(found)))
        for column in self.columns[1:]:
            values = cat[column.field][order]
            if column.kind == "numeric":
                result.numeric[column.prop] = values.astype(np.float64)
            elif column.kind == "time":
                result.times[column.prop] = values.astype(np.float64)
            else:
                text: Any = values.astype(object)
                text[text == MISSING] = None
                result.strings[column.prop] = text
        return result


_NODES_PROCEDURE = ("CALL sybilgnn.export.nodes($ids, $label, $key, $numeric, $strings, $times, "
                    "$missing) YIELD ids, keys, numeric, strings, times, bad "
                    "RETURN ids, keys, numeric, strings, times, bad")
_EDGES_PROCEDURE = ("CALL sybilgnn.export.edges($ids, $sourceLabel, $types, $targetLabels, "
                    "$weights) YIELD index, src, dst, weight, bad "
                    "RETURN index, src, dst, weight, bad")


def _unpack_floats(packed: bytes | bytearray, n: int, columns: int) -> list[np.ndarray]:
    """``columns`` float64 columns of ``n`` values packed one after another (little-endian)."""
    if n == 0 or columns == 0:
        return [np.empty(0) for _ in range(columns)]
    return list(np.frombuffer(packed, dtype="<f8").reshape(columns, n))


def _unpack_texts(packed: bytes | bytearray, n: int, columns: int) -> list[np.ndarray]:
    """``columns`` columns of ``n`` texts from the procedures' packing (NUL-terminated UTF-8)."""
    if n == 0 or columns == 0:
        return [np.empty(0, dtype=object) for _ in range(columns)]
    values = np.asarray(bytes(packed).decode("utf-8").split("\0")[:-1], dtype=object)
    return list(values.reshape(columns, n))


def _packed_ids(ids: np.ndarray) -> bytes:
    return np.ascontiguousarray(ids, dtype="<i8").tobytes()


def _raise_bad(bad: str | None, owner: str, columns: list[_Column], fix: str) -> None:
    """Turn the procedure's first wrong-typed value into the error the Cypher path gives."""
    if not bad:
        return
    prop, value = bad.split("\t", 1)
    kind = next((c.kind for c in columns if c.prop == prop), "numeric")
    wanted = {"numeric": "numeric", "time": "a date-time", "key": "a string or number",
              "string": "a string or number"}[kind]
    raise InputError(f"property {prop!r} of {owner} must be {wanted}, found {value!r}; {fix}")


def _as_float(values: list[Any], owner: str, prop: str, fix: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        bad = next(v for v in values if not isinstance(v, (int, float, bool)))
        raise InputError(f"property {prop!r} of {owner} must be numeric, found {bad!r}; "
                         f"{fix}") from None


@dataclass(frozen=True)
class EdgeSpec:
    """One relationship type to read from a source node type."""

    rel_type: str
    target: ResolvedNode
    weight: str | None
    check_target_label: bool = True


EdgeChunk = tuple[np.ndarray, np.ndarray, np.ndarray]


class EdgeReader:
    """Reads the edges of one or more relationship types from chunks of a source node set.

    Sources are sought by id and expanded; both endpoints come back as internal ids, mapped
    to rows only in ``assemble`` (after every node set is read), which keeps only targets in
    the fixed target node set. The server's own check of the target's label (a random read
    of its node record per edge, ~15% of the query) is therefore needed only to tell edges
    to other labels apart from late ones in the ``dropped_late`` count, and is left out
    (``check_target_label=False``) when the count store says every relationship of the
    type ends at the target label. The weight is read dense and padded only if it has gaps.

    Through the procedures, all types leaving the source type are read in one call per
    chunk: a node's relationships of every type sit on one chain, which the server then
    walks once instead of once per type. Cypher reads them one query per type.
    """

    def __init__(self, source: ResolvedNode, specs: list[EdgeSpec], *,
                 procedures: bool = False) -> None:
        self.specs, self.procedures = specs, procedures
        self.packed_params = {
            "sourceLabel": source.label, "types": [s.rel_type for s in specs],
            "targetLabels": [s.target.label if s.check_target_label else None for s in specs],
            "weights": [s.weight for s in specs]}
        self.queries = [self._cypher(source, spec) for spec in specs]

    @staticmethod
    def _cypher(source: ResolvedNode, spec: EdgeSpec) -> _PaddedQuery:
        end = f"(b:{quote(spec.target.label)})" if spec.check_target_label else "(b)"
        match = (f"MATCH (a) WHERE id(a) IN $ids AND a:{quote(source.label)} "
                 f"MATCH (a)-[r:{quote(spec.rel_type)}]->{end} "
                 "RETURN collect(id(a)) AS src, collect(id(b)) AS dst")

        def build(padded: frozenset[str]) -> str:
            if spec.weight is None:
                return match
            value = f"r.{quote(spec.weight)}"
            return match + (f", collect(coalesce({value}, $nan)) AS w" if "w" in padded
                            else f", collect({value}) AS w")

        return _PaddedQuery(build, ["w"] if spec.weight else [], "dst")

    def read(self, tx: Any, source_ids: np.ndarray) -> list[EdgeChunk]:
        """(source ids, target ids, weights) of the edges leaving ``source_ids``, per spec."""
        if self.procedures:
            out: list[EdgeChunk] = [None] * len(self.specs)  # type: ignore[list-item]
            for record in tx.run(_EDGES_PROCEDURE, ids=_packed_ids(source_ids),
                                 **self.packed_params):
                spec = self.specs[record["index"]]
                _raise_bad(record["bad"], f":{spec.rel_type}", [], _EDGE_FIX)
                src = np.frombuffer(record["src"], dtype="<i8")  # views; ``assemble`` copies
                dst = np.frombuffer(record["dst"], dtype="<i8")
                weight = (np.ones(src.size, dtype=np.float64) if spec.weight is None
                          else np.frombuffer(record["weight"], dtype="<f8"))
                out[record["index"]] = (src, dst, weight)
            return out
        return [self._read_cypher(tx, spec, query, source_ids)
                for spec, query in zip(self.specs, self.queries)]

    @staticmethod
    def _read_cypher(tx: Any, spec: EdgeSpec, query: _PaddedQuery,
                     source_ids: np.ndarray) -> EdgeChunk:
        record = query.run(tx, ids=source_ids.tolist())
        src = np.asarray(record["src"], dtype=np.int64)
        dst = np.asarray(record["dst"], dtype=np.int64)
        if spec.weight is None:
            return src, dst, np.ones(src.size, dtype=np.float64)
        return src, dst, _as_float(record["w"], f":{spec.rel_type}", spec.weight, _EDGE_FIX)

    @staticmethod
    def assemble(parts: list[EdgeChunk], source_index: IdIndex,
                 target_index: IdIndex) -> EdgeColumns:
        """Map endpoints to rows; an endpoint outside its node set was created (or deleted)
        after the node sets were fixed: the edge is dropped and counted."""
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return EdgeColumns(empty, empty.copy(), np.empty(0), 0)
        src_ids, dst_ids, weights = (np.concatenate([p[i] for p in parts]) for i in range(3))
        src, src_found = source_index.rows(src_ids)
        dst, dst_found = target_index.rows(dst_ids)
        keep = src_found & dst_found
        return EdgeColumns(src[keep], dst[keep], weights[keep], int((~keep).sum()))

