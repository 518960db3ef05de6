"""Export the account graph from Neo4j into a ``Snapshot`` (PyG ``HeteroData`` + id maps).

Training and scoring both start here. The export is schema driven (``export.nodes``,
``export.relationships``, ``export.labels`` in the config), reads with columnar chunked
queries (``sybilgnn.export.fetch``) spread over parallel read sessions
(``sybilgnn.export.read``), and is cached by content hash (``sybilgnn.export.cache``), with
a cheap fingerprint deciding hit or miss before any data is read.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import neo4j
import numpy as np
import torch
from torch_geometric.data import HeteroData
from tqdm import tqdm

from sybilgnn.config import Settings
from sybilgnn.data.preprocessing import Preprocessor
from sybilgnn.data.snapshot import RawFeatures, Snapshot
from sybilgnn.data.splits import apply_verdicts, encode_codes, make_splits
from sybilgnn.errors import InputError
from sybilgnn.export.cache import SnapshotCache, content_hash, fingerprint
from sybilgnn.export.fetch import NodeColumns
from sybilgnn.export.read import RawGraph, read_graph
from sybilgnn.export.schema import ResolvedSchema
from sybilgnn.export.weights import edge_weights
from sybilgnn.neo4j.connection import open_driver

__all__ = ["export_snapshot", "export_subgraph", "log_snapshot_to_mlflow", "read_graph", "RawGraph",
           "DEFAULT_WORKERS"]

# Bumped when the snapshot's contents change meaning: older cached snapshots are misses.
SNAPSHOT_LAYOUT = 2  # 2: raw feature columns for the model's own preprocessing
# Two read sessions: the server runs each query on one core; measured on the 2-core box.
DEFAULT_WORKERS = 2


def _raw_features(columns: NodeColumns, node_features: list[str],
                  categorical: dict[str, int]) -> RawFeatures:
    return RawFeatures(numeric={p: np.asarray(columns.numeric[p], dtype=np.float64)
                                for p in node_features},
                       categorical={p: columns.strings[p] for p in categorical})


def _sorted_edges(src: np.ndarray, dst: np.ndarray, weight: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order by (src, dst) so the content hash does not depend on storage order.

    One argsort of the combined key ``src * span + dst`` is several times faster than a
    lexsort; repeated pairs (parallel edges) are ordered by weight.
    """
    span = int(dst.max()) + 1 if dst.size else 1
    if not src.size or int(src.max()) >= np.iinfo(np.int64).max // span:
        order = np.lexsort((weight, dst, src))
        return src[order], dst[order], weight[order]
    key = src.astype(np.int64) * span + dst
    order = np.argsort(key)  # ties are handled below, so stability is not needed
    ordered = key[order]
    same = ordered[1:] == ordered[:-1]
    if same.any():  # order each run of a repeated pair by weight, in place
        in_run = np.zeros(order.size, dtype=bool)
        in_run[1:] |= same
        in_run[:-1] |= same
        runs = order[in_run]
        order[in_run] = runs[np.lexsort((weight[runs], key[runs]))]
    return src[order], dst[order], weight[order]


def _edge_tensors(src: np.ndarray, dst: np.ndarray, weight: np.ndarray
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    src, dst, weight = _sorted_edges(src, dst, weight)
    return (torch.from_numpy(np.stack([src, dst]).astype(np.int64, copy=False)),
            torch.from_numpy(weight.astype(np.float32, copy=False)))


def _labels_and_splits(data: HeteroData, columns: NodeColumns, settings: Settings,
                       schema: ResolvedSchema) -> dict[str, Any]:
    lab = schema.labels
    n = len(columns.keys)
    nan = np.full(n, np.nan)
    none = np.full(n, None, dtype=object)
    labels = apply_verdicts(columns.numeric.get(lab.label, nan), columns.times.get(lab.label_time, nan),
                            columns.strings.get(lab.review, none),
                            columns.times.get(lab.review_time, nan))
    # A prevalence audit's labels measure; they are never trained on (no slice holds them).
    source = columns.strings.get(lab.source, none) if lab.source else none
    audited = ((source == lab.audit_source) & (labels.y >= 0) & ~labels.from_review
               if lab.audit_source else np.zeros(n, dtype=bool))
    audit_y = np.where(audited, labels.y, -1).astype(np.int64)
    labels.y = np.where(audited, -1, labels.y)
    labels.label_time = np.where(audited, np.nan, labels.label_time)
    labels.counts["audited"] = int(audited.sum())
    labels.counts["audited_positive"] = int((audit_y == 1).sum())
    holdout = schema.holdout_property
    group, group_names = encode_codes(columns.strings.get(holdout, none) if holdout else none)
    fleet, fleet_names = encode_codes(columns.strings.get(lab.fleet, none) if lab.fleet else none)
    split = make_splits(labels.y, labels.label_time, settings.split, group, group_names)
    store = data[lab.node_type]
    store.y = torch.from_numpy(labels.y)
    store.label_time = torch.from_numpy(labels.label_time.astype(np.float64))
    store.label_from_review = torch.from_numpy(labels.from_review)
    store.audit_y = torch.from_numpy(audit_y)
    for name in ("train_mask", "val_mask", "test_mask", "holdout_mask"):
        store[name] = torch.from_numpy(getattr(split, name))
    store.group = torch.from_numpy(group)
    store.group_names = group_names
    store.fleet = torch.from_numpy(fleet)
    store.fleet_names = fleet_names
    return {"labels": labels.counts, "split": split.info}


def _edge_jobs(raw: RawGraph) -> list[tuple[tuple[str, str, str], tuple[np.ndarray, ...]]]:
    """Every edge store of the snapshot and its (src, dst, weight), reverse types included."""
    jobs = []
    for name, rel in raw.schema.relationships.items():
        edges = raw.edges[name]
        weight = edge_weights(edges.weight, rel.transform)
        if rel.source == rel.target and rel.reverse:
            jobs.append(((rel.source, name, rel.target),
                         (np.concatenate([edges.src, edges.dst]),
                          np.concatenate([edges.dst, edges.src]),
                          np.concatenate([weight, weight]))))
        else:
            jobs.append(((rel.source, name, rel.target), (edges.src, edges.dst, weight)))
            if rel.reverse:
                jobs.append(((rel.target, f"rev_{name}", rel.source),
                             (edges.dst, edges.src, weight)))
    return jobs


def build_snapshot(raw: RawGraph, settings: Settings, *, workers: int = DEFAULT_WORKERS
                   ) -> Snapshot:
    """Encode the raw columns into the Snapshot layout of docs/architecture.md section 3.

    The edge sorts and the node encodings are independent numpy work that releases the GIL,
    so they run on ``workers`` threads; the result does not depend on ``workers``.
    """
    data = HeteroData()
    id_maps: dict[str, np.ndarray] = {}
    raw_features = {name: _raw_features(raw.nodes[name], node.features, node.categorical)
                    for name, node in raw.schema.nodes.items()}
    # The snapshot's own matrices come from a preprocessor fitted on this snapshot: what a
    # model trained on it reads. Scoring re-encodes with the model's saved preprocessor.
    schema_description = {**raw.schema.describe(), "split": settings.split.model_dump(mode="json")}
    own = Preprocessor.fit_raw(
        raw_features, {name: dict(node.categorical) for name, node in raw.schema.nodes.items()},
        edge_transforms={name: rel.transform for name, rel in raw.schema.relationships.items()})
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        edge_futures = [(key, pool.submit(_edge_tensors, *arrays))
                        for key, arrays in _edge_jobs(raw)]  # largest work first
        for name in raw.schema.nodes:
            columns = raw.nodes[name]
            data[name].num_nodes = len(columns.keys)
            id_maps[name] = columns.keys.astype(object)  # already text: toString() on the server
        probe = Snapshot(data=data, id_maps=id_maps, feature_names={}, feature_stats={},
                         content_hash="", raw=raw_features)
        node_futures = {name: pool.submit(own.encode, name, probe) for name in raw.schema.nodes}
        for name, future in node_futures.items():
            data[name].x = torch.from_numpy(future.result())
        meta: dict[str, Any] = _labels_and_splits(data, raw.nodes[raw.schema.labels.node_type],
                                                  settings, raw.schema)
        for key, future in edge_futures:
            data[key].edge_index, data[key].edge_weight = future.result()
    meta.update(_export_meta(raw, schema_description))
    feature_names = own.feature_names
    digest = content_hash(data, id_maps, schema_description, feature_names, raw=raw_features,
                          workers=workers)
    return Snapshot(data=data, id_maps=id_maps, feature_names=feature_names,
                    feature_stats=own.feature_stats, content_hash=digest,
                    created_at=datetime.now(timezone.utc), meta=meta,
                    neo4j_ids={name: columns.internal_ids for name, columns in raw.nodes.items()},
                    raw=raw_features, encoding=own.digest)


def _export_meta(raw: RawGraph, schema_description: dict[str, Any]) -> dict[str, Any]:
    """What the export saw: counts, relationships read and dropped, vanished nodes, schema."""
    return {
        "graph_counts": raw.counts,
        "relationships_exported": {name: int(raw.edges[name].src.size)
                                   for name in raw.schema.relationships},
        "late_edges_dropped": {name: raw.edges[name].dropped_late
                               for name in raw.schema.relationships},
        "vanished_nodes": {n: c.vanished for n, c in raw.nodes.items()},
        "schema": schema_description,
        "notes": raw.schema.notes,
    }


def _graph_state(session: neo4j.Session) -> tuple[str, str | None]:
    """Database id and the bookmark of the last committed transaction (a tiny read)."""
    database_id = session.execute_read(
        lambda tx: tx.run("CALL db.info() YIELD id RETURN id").single()["id"])
    return str(database_id), _version(session)


def _version(session: neo4j.Session) -> str | None:
    return _joined(session.last_bookmarks().raw_values)


def _joined(values: Iterable[str]) -> str | None:
    ordered = sorted(values)
    return ",".join(ordered) if ordered else None


def _fingerprint_schema(settings: Settings) -> dict[str, Any]:
    from sybilgnn.export.schema import default_account_features
    # what the snapshot is made of (a fleet_count or fleet_relations change is not)
    export = settings.export.model_dump(mode="json", include={
        "nodes": {"__all__": {"label", "key", "features", "categorical"}},
        "relationships": True, "labels": True})
    return {"export": export, "split": settings.split.model_dump(mode="json"),
            "account_features": default_account_features(),
            "layout": SNAPSHOT_LAYOUT}


def export_snapshot(settings: Settings, *, driver: neo4j.Driver | None = None,
                    use_cache: bool = True, progress: bool = False,
                    workers: int = DEFAULT_WORKERS) -> Snapshot:
    """Export (or load from the cache) the snapshot of the graph as it is now.

    ``workers`` read sessions run the chunk queries in parallel (``sybilgnn.export.read``);
    1 reads everything in sequence. ``meta`` records ``cache_hit``, ``point_in_time`` (no
    transaction committed while the export read; otherwise nodes are as of the start and
    edges to later nodes are dropped), the counts, the label and split statistics and the
    timings.
    """
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    own_driver = driver is None
    active = driver if driver is not None else open_driver(settings)
    cache = SnapshotCache(settings.export.cache_dir)
    started = time.perf_counter()
    session_kwargs: dict[str, Any] = {
        "database": settings.neo4j.database, "default_access_mode": neo4j.READ_ACCESS,
        "fetch_size": settings.export.fetch_size, "notifications_min_severity": "OFF"}
    try:
        with active.session(**session_kwargs) as session:
            database_id, version_before = _graph_state(session)
        fp = fingerprint(database_id, version_before, _fingerprint_schema(settings))
        cached = cache.lookup(fp) if use_cache else None
        if cached is not None:
            cached.meta["cache_hit"] = True
            return cached
        with tqdm(desc="export", unit="node", disable=not progress) as bar:
            raw, versions_after = read_graph(
                active, settings, session_kwargs=session_kwargs, workers=workers,
                progress=bar.update, total=lambda n: setattr(bar, "total", n))
        read_seconds = time.perf_counter() - started
        snapshot = build_snapshot(raw, settings, workers=workers)
    finally:
        if own_driver:
            active.close()
    point_in_time = version_before is not None and all(
        _joined(values) == version_before for values in versions_after)
    snapshot.meta.update({
        "cache_hit": False, "fingerprint": fp, "point_in_time": point_in_time,
        "database_id": database_id, "read_seconds": round(read_seconds, 3),
        "export_seconds": round(time.perf_counter() - started, 3),
    })
    if use_cache:
        path = cache.store(snapshot, fp if point_in_time else None)
        snapshot.meta["cache_path"] = str(path)
    return snapshot


def export_subgraph(settings: Settings, driver: neo4j.Driver, node_ids: dict[str, np.ndarray],
                    *, workers: int = DEFAULT_WORKERS) -> Snapshot:
    """The snapshot of the subgraph that ``node_ids`` (node type -> internal ids) induce:
    the same reads and encoding as ``export_snapshot``, never cached (incremental scoring
    reads a different neighbourhood each time)."""
    started = time.perf_counter()
    session_kwargs: dict[str, Any] = {
        "database": settings.neo4j.database, "default_access_mode": neo4j.READ_ACCESS,
        "fetch_size": settings.export.fetch_size, "notifications_min_severity": "OFF"}
    raw, _ = read_graph(driver, settings, session_kwargs=session_kwargs, workers=workers,
                        only=node_ids)
    snapshot = build_snapshot(raw, settings, workers=workers)
    snapshot.meta.update({"cache_hit": False, "subgraph": True,
                          "export_seconds": round(time.perf_counter() - started, 3)})
    return snapshot


def log_snapshot_to_mlflow(snapshot: Snapshot, *, context: str = "training",
                           node_type: str | None = None) -> None:
    """Log the snapshot as an MLflow dataset input of the active run (digest = content hash).

    The dataset holds the node type's features and labels (default: the labelled node
    type); its name and digest carry the content hash, so runs trained on the same snapshot
    share one dataset entry.
    """
    import mlflow

    store = snapshot.data[snapshot.labelled_type if node_type is None else node_type]
    dataset = mlflow.data.from_numpy(
        features=store.x.numpy(), targets=store.y.numpy() if "y" in store else None,
        source=str(snapshot.meta.get("cache_path", "neo4j")),
        name=f"snapshot-{snapshot.content_hash[:12]}", digest=snapshot.content_hash[:32])
    mlflow.log_input(dataset, context=context, tags={
        "content_hash": snapshot.content_hash,
        "num_accounts": str(snapshot.num_accounts),
        "created_at": snapshot.created_at.isoformat(),
    })
