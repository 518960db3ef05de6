"""In-memory graph snapshots shared by training and scoring."""

from sybilgnn.data.snapshot import Snapshot

__all__ = ["Snapshot"]
