"""Optional native backends, detected in one place.

Full-graph training needs nothing beyond torch. Neighbour-sampled mini-batches
(``NeighborLoader``) need ``pyg-lib`` or ``torch-sparse``; every caller asks here.
"""

from __future__ import annotations

import torch_geometric.typing as pyg_typing

__all__ = ["sampler_backend", "has_neighbor_sampler", "require_neighbor_sampler"]


def sampler_backend() -> str | None:
    """Name of the installed neighbour-sampling backend, or None."""
    if pyg_typing.WITH_PYG_LIB:
        return "pyg-lib"
    if pyg_typing.WITH_TORCH_SPARSE:
        return "torch-sparse"
    return None


def has_neighbor_sampler() -> bool:
    return sampler_backend() is not None


def require_neighbor_sampler() -> str:
    """Return the backend name, or explain how to get one."""
    from sybilgnn.errors import InputError

    backend = sampler_backend()
    if backend is None:
        raise InputError(
            "train.sampler=neighbor needs pyg-lib or torch-sparse, and neither is installed; "
            "use train.sampler=full (the default, fits millions of accounts), or install "
            "torch-sparse with `pip install --no-build-isolation torch-sparse` (~8 min build)")
    return backend
