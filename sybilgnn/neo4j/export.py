"""Export the account graph from Neo4j into a ``Snapshot`` (PyG ``HeteroData`` + id maps).

Training and scoring both start here. The export is schema driven (``export.nodes``,
``export.relationships``, ``export.labels`` in the config), reads everything in one read
transaction with columnar chunked queries (see ``export_fetch``), and is cached by content
hash, with a cheap fingerprint deciding hit or miss before any data is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import neo4j
import numpy as np
import torch
from torch_geometric.data import HeteroData
from tqdm import tqdm

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.data.splits import apply_verdicts, encode_codes, make_splits
from sybilgnn.neo4j.connection import open_driver
from sybilgnn.neo4j.export_cache import SnapshotCache, content_hash, fingerprint
from sybilgnn.neo4j.export_features import edge_weights, encode_categorical, encode_numeric
from sybilgnn.neo4j.export_fetch import (EdgeColumns, IdIndex, NodeColumns, count_graph,
                                         fetch_edges, fetch_node_columns, fetch_node_ids)
from sybilgnn.neo4j.export_schema import ResolvedSchema, resolve_schema

__all__ = ["export_snapshot", "log_snapshot_to_mlflow", "read_graph", "RawGraph"]


@dataclass
class RawGraph:
    """What one read transaction returned, before encoding."""

    schema: ResolvedSchema
    counts: dict[str, int]
    nodes: dict[str, NodeColumns]
    edges: dict[str, EdgeColumns]


def _label_properties(schema: ResolvedSchema) -> tuple[list[str], list[str], list[str]]:
    """Numeric, string and time properties read on the labelled node type (when present)."""
    lab, present = schema.labels, schema.present_label_properties
    numeric = [p for p in [lab.label] if p in present]
    strings = [p for p in [lab.review, lab.fleet, schema.holdout_property] if p and p in present]
    times = [p for p in [lab.label_time, lab.review_time] if p in present]
    return numeric, list(dict.fromkeys(strings)), times


def read_graph(tx: Any, settings: Settings, bar: tqdm | None = None) -> RawGraph:
    """Every read of the export, in the caller's (single) read transaction."""
    export = settings.export
    schema = resolve_schema(tx, export, settings.split.holdout_property)
    counts = count_graph(tx, [n.label for n in schema.nodes.values()],
                         [r.type for r in schema.relationships.values()])
    progress = bar.update if bar is not None else None
    node_ids = {name: fetch_node_ids(tx, node.label) for name, node in schema.nodes.items()}
    nodes: dict[str, NodeColumns] = {}
    for name, node in schema.nodes.items():
        numeric, strings, times = list(node.features), list(node.categorical), []
        if name == schema.labels.node_type:
            extra_numeric, extra_strings, times = _label_properties(schema)
            numeric += [p for p in extra_numeric if p not in numeric]
            strings += [p for p in extra_strings if p not in strings]
        nodes[name] = fetch_node_columns(tx, node, node_ids[name], chunk_size=export.chunk_size,
                                         numeric=numeric, strings=strings, times=times,
                                         progress=progress)
    edges: dict[str, EdgeColumns] = {}
    for name, rel in schema.relationships.items():
        source, target = schema.nodes[rel.source], schema.nodes[rel.target]
        edges[name] = fetch_edges(
            tx, rel.type, source, target, nodes[rel.source].internal_ids,
            IdIndex(nodes[rel.target].internal_ids), rel.weight,
            chunk_size=export.chunk_size, progress=progress)
    return RawGraph(schema, counts, nodes, edges)


def _node_features(columns: NodeColumns, node_features: list[str],
                   categorical: dict[str, int]) -> tuple[np.ndarray, list[str], dict[str, list[float]]]:
    n = len(columns.keys)
    block, names, means, stds = encode_numeric({p: columns.numeric[p] for p in node_features}, n)
    blocks = [block]
    for prop, top_k in categorical.items():
        one_hot, one_hot_names = encode_categorical(prop, columns.strings[prop], top_k)
        blocks.append(one_hot)
        names += one_hot_names
        means += [0.0] * len(one_hot_names)
        stds += [1.0] * len(one_hot_names)
    x = np.concatenate(blocks, axis=1) if names else np.ones((n, 1))
    if not names:
        names, means, stds = ["__constant__"], [0.0], [1.0]
    return x.astype(np.float32), names, {"mean": means, "std": stds}


def _sorted_edges(src: np.ndarray, dst: np.ndarray, weight: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order by (src, dst) so the content hash does not depend on storage order."""
    order = np.lexsort((dst, src))
    return src[order], dst[order], weight[order]


def _edge_store(data: HeteroData, key: tuple[str, str, str], src: np.ndarray, dst: np.ndarray,
                weight: np.ndarray) -> None:
    src, dst, weight = _sorted_edges(src, dst, weight)
    data[key].edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
    data[key].edge_weight = torch.from_numpy(weight.astype(np.float32))


def _labels_and_splits(data: HeteroData, columns: NodeColumns, settings: Settings,
                       schema: ResolvedSchema) -> dict[str, Any]:
    lab = schema.labels
    n = len(columns.keys)
    nan = np.full(n, np.nan)
    none = np.full(n, None, dtype=object)
    labels = apply_verdicts(columns.numeric.get(lab.label, nan), columns.times.get(lab.label_time, nan),
                            columns.strings.get(lab.review, none),
                            columns.times.get(lab.review_time, nan))
    holdout = schema.holdout_property
    group, group_names = encode_codes(columns.strings.get(holdout, none) if holdout else none)
    fleet, fleet_names = encode_codes(columns.strings.get(lab.fleet, none) if lab.fleet else none)
    split = make_splits(labels.y, labels.label_time, settings.split, group, group_names)
    store = data[lab.node_type]
    store.y = torch.from_numpy(labels.y)
    store.label_time = torch.from_numpy(labels.label_time.astype(np.float64))
    store.label_from_review = torch.from_numpy(labels.from_review)
    for name in ("train_mask", "val_mask", "test_mask", "holdout_mask"):
        store[name] = torch.from_numpy(getattr(split, name))
    store.group = torch.from_numpy(group)
    store.group_names = group_names
    store.fleet = torch.from_numpy(fleet)
    store.fleet_names = fleet_names
    return {"labels": labels.counts, "split": split.info}


def build_snapshot(raw: RawGraph, settings: Settings) -> Snapshot:
    """Encode the raw columns into the Snapshot layout of docs/architecture.md section 3."""
    data = HeteroData()
    feature_names: dict[str, list[str]] = {}
    feature_stats: dict[str, dict[str, list[float]]] = {}
    id_maps: dict[str, np.ndarray] = {}
    for name, node in raw.schema.nodes.items():
        columns = raw.nodes[name]
        x, names, stats = _node_features(columns, node.features, node.categorical)
        data[name].num_nodes = len(columns.keys)
        data[name].x = torch.from_numpy(x)
        feature_names[name], feature_stats[name] = names, stats
        id_maps[name] = np.asarray([str(k) for k in columns.keys], dtype=object)
    meta: dict[str, Any] = _labels_and_splits(data, raw.nodes[raw.schema.labels.node_type],
                                              settings, raw.schema)
    edge_counts: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for name, rel in raw.schema.relationships.items():
        edges = raw.edges[name]
        weight = edge_weights(edges.weight, rel.transform)
        dropped[name] = edges.dropped_late
        if rel.source == rel.target and rel.reverse:
            _edge_store(data, (rel.source, name, rel.target),
                        np.concatenate([edges.src, edges.dst]),
                        np.concatenate([edges.dst, edges.src]), np.concatenate([weight, weight]))
        else:
            _edge_store(data, (rel.source, name, rel.target), edges.src, edges.dst, weight)
            if rel.reverse:
                _edge_store(data, (rel.target, f"rev_{name}", rel.source), edges.dst,
                            edges.src, weight)
        edge_counts[name] = int(edges.src.size)
    schema_description = {**raw.schema.describe(), "split": settings.split.model_dump(mode="json")}
    meta.update({
        "graph_counts": raw.counts,
        "relationships_exported": edge_counts,
        "late_edges_dropped": dropped,
        "vanished_nodes": {n: c.vanished for n, c in raw.nodes.items()},
        "schema": schema_description,
        "notes": raw.schema.notes,
    })
    digest = content_hash(data, id_maps, schema_description, feature_names)
    return Snapshot(data=data, id_maps=id_maps, feature_names=feature_names,
                    feature_stats=feature_stats, content_hash=digest,
                    created_at=datetime.now(timezone.utc), meta=meta)


def _graph_state(session: neo4j.Session) -> tuple[str, str | None]:
    """Database id and the bookmark of the last committed transaction (a tiny read)."""
    database_id = session.execute_read(
        lambda tx: tx.run("CALL db.info() YIELD id RETURN id").single()["id"])
    return str(database_id), _version(session)


def _version(session: neo4j.Session) -> str | None:
    values = sorted(session.last_bookmarks().raw_values)
    return ",".join(values) if values else None


def _fingerprint_schema(settings: Settings) -> dict[str, Any]:
    from sybilgnn.neo4j.export_schema import default_account_features
    export = settings.export.model_dump(mode="json", include={"nodes", "relationships", "labels"})
    return {"export": export, "split": settings.split.model_dump(mode="json"),
            "account_features": default_account_features()}


def export_snapshot(settings: Settings, *, driver: neo4j.Driver | None = None,
                    use_cache: bool = True, progress: bool = False) -> Snapshot:
    """Export (or load from the cache) the snapshot of the graph as it is now.

    ``meta`` records ``cache_hit``, ``point_in_time`` (no transaction committed while the
    export read; otherwise nodes are as of the start and edges to later nodes are dropped),
    the counts, the label and split statistics and the timings.
    """
    own_driver = driver is None
    active = driver if driver is not None else open_driver(settings)
    cache = SnapshotCache(settings.export.cache_dir)
    started = time.perf_counter()
    try:
        with active.session(database=settings.neo4j.database,
                            default_access_mode=neo4j.READ_ACCESS,
                            fetch_size=settings.export.fetch_size,
                            notifications_min_severity="OFF") as session:
            database_id, version_before = _graph_state(session)
            fp = fingerprint(database_id, version_before, _fingerprint_schema(settings))
            cached = cache.lookup(fp) if use_cache else None
            if cached is not None:
                cached.meta["cache_hit"] = True
                return cached
            with tqdm(desc="export", unit="node", disable=not progress) as bar:
                raw = session.execute_read(read_graph, settings, bar)
            version_after = _version(session)
        read_seconds = time.perf_counter() - started
        snapshot = build_snapshot(raw, settings)
    finally:
        if own_driver:
            active.close()
    point_in_time = version_before is not None and version_before == version_after
    snapshot.meta.update({
        "cache_hit": False, "fingerprint": fp, "point_in_time": point_in_time,
        "database_id": database_id, "read_seconds": round(read_seconds, 3),
        "export_seconds": round(time.perf_counter() - started, 3),
    })
    if use_cache:
        path = cache.store(snapshot, fp if point_in_time else None)
        snapshot.meta["cache_path"] = str(path)
    return snapshot


def log_snapshot_to_mlflow(snapshot: Snapshot, *, context: str = "training",
                           node_type: str = "account") -> None:
    """Log the snapshot as an MLflow dataset input of the active run (digest = content hash).

    The dataset holds the node type's features and labels; its name and digest carry the
    content hash, so runs trained on the same snapshot share one dataset entry.
    """
    import mlflow

    store = snapshot.data[node_type]
    dataset = mlflow.data.from_numpy(
        features=store.x.numpy(), targets=store.y.numpy() if "y" in store else None,
        source=str(snapshot.meta.get("cache_path", "neo4j")),
        name=f"snapshot-{snapshot.content_hash[:12]}", digest=snapshot.content_hash[:32])
    mlflow.log_input(dataset, context=context, tags={
        "content_hash": snapshot.content_hash,
        "num_accounts": str(snapshot.num_accounts),
        "created_at": snapshot.created_at.isoformat(),
    })
