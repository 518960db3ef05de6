"""What changed between two snapshots, and which accounts a change can reach.

A model with ``L`` message-passing layers reads, for each account, the inputs and edges of
the nodes within ``L`` hops. So between two runs of the same model an account's score may
move only if a node within ``L`` hops is new, has new inputs, or gained or lost an edge.
Everything is compared by node key (the id maps), never by row, since rows shift as the
graph grows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sybilgnn.data.snapshot import Snapshot

__all__ = ["changed_nodes", "within_reach"]


def _raw_frame(snapshot: Snapshot, node_type: str) -> pd.DataFrame:
    raw = snapshot.raw.get(node_type)
    ids = np.asarray(snapshot.id_maps[node_type], dtype=object)
    columns: dict[str, np.ndarray] = {}
    if raw is not None:
        columns.update({f"n:{k}": v for k, v in raw.numeric.items()})
        columns.update({f"c:{k}": v for k, v in raw.categorical.items()})
    elif "x" in snapshot.data[node_type]:
        matrix = snapshot.data[node_type].x.cpu().numpy()
        columns.update({f"x{j}": matrix[:, j] for j in range(matrix.shape[1])})
    return pd.DataFrame(columns, index=pd.Index(ids, name="id"))


def _inputs_changed(before: Snapshot, after: Snapshot, node_type: str) -> np.ndarray:
    """Per row of ``after``: new node, or any input differs (NaN equals NaN)."""
    now = _raw_frame(after, node_type)
    if node_type not in before.id_maps:
        return np.ones(len(now), dtype=bool)
    then = _raw_frame(before, node_type).reindex(now.index)
    new = ~now.index.isin(pd.Index(before.id_maps[node_type]))
    if list(then.columns) != list(now.columns):
        return np.ones(len(now), dtype=bool)
    same = (then == now) | (then.isna() & now.isna())
    return new | ~same.all(axis=1).to_numpy()


def _edge_frame(snapshot: Snapshot, edge_type: tuple[str, str, str]) -> pd.DataFrame:
    source, _, target = edge_type
    store = snapshot.data[edge_type]
    index = store.edge_index.cpu().numpy()
    weight = (store.edge_weight.cpu().numpy() if "edge_weight" in store
              else np.ones(index.shape[1], dtype=np.float32))
    return pd.DataFrame({"src": np.asarray(snapshot.id_maps[source], dtype=object)[index[0]],
                         "dst": np.asarray(snapshot.id_maps[target], dtype=object)[index[1]],
                         "w": weight})


def changed_nodes(before: Snapshot | None, after: Snapshot) -> dict[str, np.ndarray]:
    """Rows of ``after`` (per node type) that are new, have other inputs, or gained, lost or
    re-weighted an edge since ``before``; everything when there is no ``before``."""
    node_types = list(after.data.node_types)
    if before is None:
        return {nt: np.ones(int(after.data[nt].num_nodes), dtype=bool) for nt in node_types}
    changed = {nt: _inputs_changed(before, after, nt) for nt in node_types}
    rows = {nt: pd.Index(np.asarray(after.id_maps[nt], dtype=object)) for nt in node_types}
    for edge_type in set(after.data.edge_types) | set(before.data.edge_types):
        frames = [_edge_frame(s, edge_type) if edge_type in s.data.edge_types
                  else pd.DataFrame({"src": [], "dst": [], "w": []}) for s in (before, after)]
        merged = frames[0].merge(frames[1], on=["src", "dst", "w"], how="outer", indicator=True)
        differing = merged[merged["_merge"] != "both"]
        source, _, target = edge_type
        for end, node_type in (("src", source), ("dst", target)):
            if node_type in rows:
                found = rows[node_type].get_indexer(differing[end].to_numpy())
                changed[node_type][found[found >= 0]] = True
    return changed


def within_reach(snapshot: Snapshot, seeds: dict[str, np.ndarray], hops: int) -> np.ndarray:
    """Rows of the labelled node type (accounts) within ``hops`` edges (any type, either
    direction) of a seed node."""
    data = snapshot.data
    node_types = list(data.node_types)
    offsets, total = {}, 0
    for nt in node_types:
        offsets[nt] = total
        total += int(data[nt].num_nodes)
    rows, cols = [], []
    for edge_type in data.edge_types:
        source, _, target = edge_type
        index = data[edge_type].edge_index.cpu().numpy()
        rows += [index[0] + offsets[source], index[1] + offsets[target]]
        cols += [index[1] + offsets[target], index[0] + offsets[source]]
    adjacency = sp.csr_matrix((np.ones(sum(r.size for r in rows), dtype=np.int8),
                               (np.concatenate(rows) if rows else np.zeros(0, np.int64),
                                np.concatenate(cols) if cols else np.zeros(0, np.int64))),
                              shape=(total, total))
    reached = np.zeros(total, dtype=bool)
    for nt, mask in seeds.items():
        if nt in offsets:
            reached[offsets[nt]:offsets[nt] + mask.size] |= mask
    frontier = reached.copy()
    for _ in range(hops):
        frontier = (adjacency @ frontier.astype(np.int8)) > 0
        frontier &= ~reached
        reached |= frontier
        if not frontier.any():
            break
    labelled = snapshot.labelled_type
    return reached[offsets[labelled]:offsets[labelled] + int(data[labelled].num_nodes)]
