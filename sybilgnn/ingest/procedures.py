"""Delta-ingest writes through sybilgnn's server-side procedures (``sybilgnn.ingest.*``).

The Cypher path sends a batch as a list of maps and lets Cypher's slotted runtime interpret
``MERGE ... ON MATCH SET CASE ...`` row by row. Here a batch goes as columns (one list per
property) to a Java procedure (``sybilgnn/neo4j/plugin/IngestProcedures.java``) that does the
same merges through the embedded API in the caller's transaction. Everything around the
write stays the Cypher path's: ``write_batches`` slices the rows, checks and creates the
batch markers in the same transaction, and the driver retries; only the body of a batch
changes. Used when ``neo4j.procedures`` allows it and the server has them
(``sybilgnn.neo4j.plugin.use_procedures``); the resulting graph is the same (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from neo4j import ManagedTransaction

__all__ = ["NodeWrite", "RelWrite", "column_rows", "feature_inputs", "read_properties"]

_NODES = """
CALL sybilgnn.ingest.nodes($label, $key, $keys, $create, $names, $columns, $times)
YIELD written RETURN written
"""
_RELS = """
CALL sybilgnn.ingest.relationships($type, $source_label, $source_key, $target_label,
                                   $target_key, $sources, $targets, $names, $rules, $columns)
YIELD written RETURN written
"""
_PROPERTIES = """
CALL sybilgnn.ingest.properties($label, $key, $keys, $names) YIELD ids, columns
RETURN ids, columns
"""
_FEATURE_INPUTS = """
CALL sybilgnn.ingest.featureInputs($ids) YIELD ids, columns, values
RETURN ids, columns, values
"""


def column_rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows as tuples of plain-Python values (NaN becomes None), for ``write_batches``; a
    batch of them is turned into columns by ``NodeWrite`` / ``RelWrite``."""
    lists = []
    for col in columns:
        series = frame[col]
        lists.append(series.astype(object).where(series.notna(), None).tolist()
                     if series.dtype == object or series.isna().any() else series.tolist())
    return list(zip(*lists))


def _columns(batch: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(c) for c in zip(*batch)] if batch else [[] for _ in range(width)]


@dataclass(frozen=True)
class NodeWrite:
    """``MERGE`` (``create``) or ``MATCH`` keyed nodes and set ``names``; a row is
    ``(key, *values)``; ``times`` are names whose values are epoch milliseconds."""

    label: str
    key: str
    names: tuple[str, ...]
    create: bool = False
    times: tuple[str, ...] = ()

    def run(self, tx: ManagedTransaction, batch: Sequence[tuple[Any, ...]]) -> int:
        cols = _columns(batch, len(self.names) + 1)
        record = tx.run(_NODES, label=self.label, key=self.key, keys=cols[0],
                        create=self.create, names=list(self.names), columns=cols[1:],
                        times=list(self.times)).single()
        return int(record["written"]) if record else 0

    def __call__(self, tx: ManagedTransaction, batch: list[Any]) -> int:
        self.run(tx, batch)
        return len(batch)


@dataclass(frozen=True)
class RelWrite:
    """``MERGE`` one relationship per row ``(source key, target key, *values)``; a new one
    takes the values, an existing one combines each by its rule (time_min, time_max, max,
    add), like the ``ON MATCH SET`` of the Cypher path."""

    type: str
    source: tuple[str, str]  # label, key
    target: tuple[str, str]
    names: tuple[str, ...]
    rules: tuple[str, ...]

    def __call__(self, tx: ManagedTransaction, batch: list[Any]) -> int:
        cols = _columns(batch, len(self.names) + 2)
        tx.run(_RELS, type=self.type, source_label=self.source[0], source_key=self.source[1],
               target_label=self.target[0], target_key=self.target[1], sources=cols[0],
               targets=cols[1], names=list(self.names), rules=list(self.rules),
               columns=cols[2:]).consume()
        return len(batch)


def read_properties(tx: ManagedTransaction, label: str, key: str, keys: list[str],
                    names: list[str]) -> dict[str, dict[str, Any]]:
    """``names`` of the keyed nodes found (None where absent), by key."""
    record = tx.run(_PROPERTIES, label=label, key=key, keys=keys, names=names).single()
    if record is None:
        return {}
    columns = record["columns"]
    return {k: {n: columns[c][i] for c, n in enumerate(names)}
            for i, k in enumerate(record["ids"])}


def feature_inputs(tx: ManagedTransaction, ids: list[str], state_names: list[str]
                   ) -> pd.DataFrame:
    """The inputs of ``compute_account_features`` for the accounts of ``ids`` that exist:
    relationship aggregates (NaN where Cypher gives null) and the prompt state
    ``state_names``, both read by the procedures."""
    record = tx.run(_FEATURE_INPUTS, ids=ids).single()
    found = list(record["ids"]) if record else []
    if not found:
        return pd.DataFrame()
    values = np.frombuffer(record["values"], dtype="<f8").reshape(len(found), -1)
    frame = pd.DataFrame(values, columns=list(record["columns"]))
    frame.insert(0, "account_id", found)
    state = read_properties(tx, "Account", "account_id", found, state_names)
    for name in state_names:
        frame[name] = pd.Series([state[i][name] for i in found], index=frame.index, dtype=object)
    return frame
