"""A point-in-time export of the account graph: PyG ``HeteroData`` plus the id maps.

Saved as plain tensors (``torch.save`` of a dict of tensors, loaded with
``weights_only=True``) and JSON, so loading a snapshot never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import HeteroData

__all__ = ["Snapshot", "RawFeatures", "ACCOUNT", "IP", "PAYMENT"]

# The default configuration's node types, for worlds built in code on the default platform's
# schema (the tests' planted worlds, ``tests/synthetic.py``); the stages read
# ``sybilgnn.graph_schema`` instead.
ACCOUNT, IP, PAYMENT = "account", "ip", "payment"
_SEP = "__"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


@dataclass
class RawFeatures:
    """A node type's feature properties as read from the graph, before any fitted encoding:
    numeric columns (float64, NaN where missing) and categorical ones (text or None)."""

    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    categorical: dict[str, np.ndarray] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {f"num:{k}": pa.array(v, type=pa.float64(), from_pandas=False)
                   for k, v in self.numeric.items()}
        columns.update({f"cat:{k}": pa.array([None if _missing(t) else str(t) for t in v],
                                             type=pa.string())
                        for k, v in self.categorical.items()})
        pq.write_table(pa.table(columns) if columns else pa.table({}), path)

    @classmethod
    def load(cls, path: Path) -> RawFeatures:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        out = cls()
        for name in table.column_names:
            kind, _, prop = name.partition(":")
            if kind == "num":
                out.numeric[prop] = table[name].to_numpy(zero_copy_only=False).astype(np.float64)
            else:
                out.categorical[prop] = np.asarray(table[name].to_pylist(), dtype=object)
        return out


@dataclass
class Snapshot:
    data: HeteroData
    id_maps: dict[str, np.ndarray]
    feature_names: dict[str, list[str]]
    feature_stats: dict[str, dict[str, list[float]]]
    content_hash: str
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    meta: dict[str, Any] = field(default_factory=dict)
    # Neo4j's internal node id of each row when exported, per node type: only a hint that
    # lets the write-back skip the key index (it checks each id's key first); not hashed.
    neo4j_ids: dict[str, np.ndarray] = field(default_factory=dict)
    # Raw feature properties per node type: what a model's own preprocessing reads.
    raw: dict[str, RawFeatures] = field(default_factory=dict)
    # Digest of the preprocessing that produced the matrices in ``data`` (None: unknown).
    encoding: str | None = None

    @property
    def labelled_type(self) -> str:
        """The node type that carries the labels (and is scored): see
        ``sybilgnn.graph_schema.labelled_node_type``."""
        from sybilgnn.graph_schema import labelled_node_type

        return labelled_node_type(self)

    @property
    def num_accounts(self) -> int:
        """Nodes of the labelled type (accounts on the default schema)."""
        return int(self.data[self.labelled_type].num_nodes)

    def save(self, directory: str | Path) -> Path:
        """Write ``tensors.pt`` (tensors only) and ``snapshot.json`` (everything else)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        extras: dict[str, dict[str, Any]] = {}
        items = list(self.data.node_items()) + list(self.data.edge_items())
        for key, store in items:
            name = key if isinstance(key, str) else _SEP.join(key)
            for attr, value in store.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{name}{_SEP}{_SEP}{attr}"] = value
                else:
                    extras.setdefault(name, {})[attr] = value
        torch.save(tensors, out / "tensors.pt")
        meta = {
            "id_maps": {k: [str(v) for v in ids] for k, ids in self.id_maps.items()},
            "feature_names": self.feature_names,
            "feature_stats": self.feature_stats,
            "content_hash": self.content_hash,
            "created_at": self.created_at.isoformat(),
            "meta": self.meta,
            "extras": extras,
            "num_nodes": {t: int(self.data[t].num_nodes) for t in self.data.node_types},
            "raw_node_types": sorted(self.raw),
            "encoding": self.encoding,
        }
        for node_type, raw in self.raw.items():
            raw.save(out / f"raw-{node_type}.parquet")
        (out / "snapshot.json").write_text(json.dumps(meta, default=str))
        if self.neo4j_ids:
            np.savez(out / "neo4j_ids.npz", **self.neo4j_ids)
        return out

    @classmethod
    def load(cls, directory: str | Path) -> Snapshot:
        src = Path(directory)
        meta = json.loads((src / "snapshot.json").read_text())
        tensors = torch.load(src / "tensors.pt", weights_only=True)
        data = HeteroData()
        for node_type, count in meta["num_nodes"].items():
            data[node_type].num_nodes = count
        for flat, value in tensors.items():
            name, attr = flat.split(_SEP * 2, 1)
            key: str | tuple[str, ...] = tuple(name.split(_SEP)) if _SEP in name else name
            data[key][attr] = value
        for name, attrs in meta["extras"].items():
            key = tuple(name.split(_SEP)) if _SEP in name else name
            for attr, value in attrs.items():
                if attr != "num_nodes":
                    data[key][attr] = value
        neo4j_ids: dict[str, np.ndarray] = {}
        if (src / "neo4j_ids.npz").exists():
            with np.load(src / "neo4j_ids.npz") as saved:
                neo4j_ids = {name: saved[name] for name in saved.files}
        raw = {nt: RawFeatures.load(src / f"raw-{nt}.parquet")
               for nt in meta.get("raw_node_types", [])}
        return cls(
            data=data,
            neo4j_ids=neo4j_ids,
            raw=raw,
            encoding=meta.get("encoding"),
            id_maps={k: np.asarray(v, dtype=object) for k, v in meta["id_maps"].items()},
            feature_names=meta["feature_names"],
            feature_stats=meta["feature_stats"],
            content_hash=meta["content_hash"],
            created_at=datetime.fromisoformat(meta["created_at"]),
            meta=meta["meta"],
        )
