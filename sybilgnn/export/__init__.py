"""Export: the account graph in Neo4j -> a ``Snapshot`` (PyG ``HeteroData`` + id maps).

``snapshot_export`` builds the snapshot; ``schema`` checks the config's export schema against
the database; ``read`` and ``fetch`` are the parallel columnar reads; ``cache`` holds content
hashes, fingerprints and the snapshot cache; ``weights`` the edge-weight transform. The
Neo4j server itself (lifecycle, plugin, connections) lives in ``sybilgnn.neo4j``.
"""

from __future__ import annotations

from sybilgnn.export.read import RawGraph, read_graph
from sybilgnn.export.snapshot_export import (DEFAULT_WORKERS, export_snapshot,
                                             export_subgraph, log_snapshot_to_mlflow)

__all__ = ["DEFAULT_WORKERS", "RawGraph", "export_snapshot", "export_subgraph",
           "log_snapshot_to_mlflow",
           "read_graph"]
