"""Content hashes, graph fingerprints and the snapshot cache directory.

A snapshot lives under ``cache_dir/<content_hash>/``. A fingerprint names a graph state
cheaply *before* the export: the database id, the bookmark of the last committed
transaction (any committed write changes it, label edits and weight updates included) and
the export schema. ``cache_dir/fingerprints/<fingerprint>`` holds the content hash of the
snapshot exported from that state; it is written only when no transaction committed during
the export, so a hit never returns a snapshot mixed from two states.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import HeteroData

from sybilgnn.data.snapshot import RawFeatures, Snapshot

__all__ = ["content_hash", "fingerprint", "SnapshotCache"]


def _array_digest(name: str, value: np.ndarray | torch.Tensor) -> bytes:
    """SHA-256 of one array with its name, dtype and shape (hashlib drops the GIL on big
    buffers, so several of these run in parallel)."""
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{name}|{array.dtype}|{array.shape}".encode())
    if array.dtype == object:
        digest.update("\x1f".join(map(str, array.tolist())).encode())
    else:
        try:  # the buffer itself: no copy of a large array
            buffer: Any = memoryview(array).cast("B")
        except (TypeError, ValueError):  # dtypes without a buffer format (datetime64)
            buffer = array.tobytes()
        digest.update(buffer)
    return digest.digest()


def content_hash(data: HeteroData, id_maps: dict[str, np.ndarray],
                 schema: dict[str, Any], feature_names: dict[str, list[str]], *,
                 raw: dict[str, RawFeatures] | None = None, workers: int = 2) -> str:
    """SHA-256 over the schema, the feature names and the digest of every exported array,
    id map and raw feature column, in a fixed order; the array digests are computed on
    ``workers`` threads."""
    arrays: list[tuple[str, Any]] = [(f"ids:{t}", id_maps[t]) for t in sorted(id_maps)]
    for node_type in sorted(raw or {}):
        columns = (raw or {})[node_type]
        arrays += [(f"raw:{node_type}:num:{k}", v) for k, v in sorted(columns.numeric.items())]
        arrays += [(f"raw:{node_type}:cat:{k}", v) for k, v in sorted(columns.categorical.items())]
    scalars: list[str] = []
    stores = [(k, s) for k, s in data.node_items()] + [(k, s) for k, s in data.edge_items()]
    for key, store in sorted(stores, key=lambda item: str(item[0])):
        for attr in sorted(store.keys()):
            value = store[attr]
            if isinstance(value, (torch.Tensor, np.ndarray)):
                arrays.append((f"{key}.{attr}", value))
            else:
                scalars.append(f"{key}.{attr}={json.dumps(value, default=str)}")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        digests = list(pool.map(lambda item: _array_digest(*item), arrays))
    digest = hashlib.sha256()
    digest.update(json.dumps(schema, sort_keys=True, default=str).encode())
    digest.update(json.dumps(feature_names, sort_keys=True).encode())
    for (name, _), array_digest in zip(arrays, digests):
        digest.update(name.encode() + b"\0" + array_digest)
    for line in scalars:
        digest.update(line.encode() + b"\0")
    return digest.hexdigest()


def fingerprint(database_id: str, version: str | None, schema: dict[str, Any]) -> str | None:
    """Names a graph state before reading it; None when the server gives no version."""
    if not version:
        return None
    payload = json.dumps({"db": database_id, "version": version, "schema": schema},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class SnapshotCache:
    """``<root>/<content_hash>/`` snapshots and ``<root>/fingerprints/<fp>`` pointers."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def lookup(self, fp: str | None) -> Snapshot | None:
        if fp is None:
            return None
        pointer = self.root / "fingerprints" / fp
        if not pointer.exists():
            return None
        directory = self.root / pointer.read_text().strip()
        if not (directory / "snapshot.json").exists():
            return None
        return Snapshot.load(directory)

    def store(self, snapshot: Snapshot, fp: str | None) -> Path:
        """Write the snapshot once per content hash (atomically), then the pointer."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / snapshot.content_hash
        if not (target / "snapshot.json").exists():
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
            snapshot.save(staging)
            try:
                os.replace(staging, target)
            except OSError:  # another process stored the same content meanwhile
                shutil.rmtree(staging, ignore_errors=True)
        if fp is not None:
            pointers = self.root / "fingerprints"
            pointers.mkdir(exist_ok=True)
            (pointers / fp).write_text(snapshot.content_hash)
        return target
