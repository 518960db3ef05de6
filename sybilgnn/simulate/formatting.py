"""Vectorised string building: dotted-quad IPs, card tokens, account ids, prompt text.

Everything goes through Arrow kernels (``take`` on small lookup tables, then an element-wise
join), so millions of strings are built without a Python loop per value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "unique_public_ipv4",
    "format_ipv4",
    "format_tokens",
    "format_account_ids",
    "join_columns",
]

_OCTETS = pa.array([str(i) for i in range(256)])
_HEX4 = pa.array([f"{i:04x}" for i in range(1 << 16)])
_DIGITS = pa.array([f"{i:03d}" for i in range(1000)])
# First octets of ordinary public unicast space (no private, loopback, CGNAT or multicast).
_PUBLIC_FIRST_OCTETS = np.array(
    [o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203)], dtype=np.uint32
)


def unique_public_ipv4(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` distinct public IPv4 addresses as uint32, in random order."""
    if count == 0:
        return np.zeros(0, dtype=np.uint32)
    draw = int(count * 1.02) + 16
    while True:
        first = rng.choice(_PUBLIC_FIRST_OCTETS, size=draw)
        rest = rng.integers(1, 1 << 24, size=draw, dtype=np.uint32)
        values = (first << np.uint32(24)) | rest
        _, first_seen = np.unique(values, return_index=True)
        if first_seen.size >= count:
            return values[np.sort(first_seen)[:count]]
        draw *= 2


def format_ipv4(values: np.ndarray) -> pa.Array:
    """uint32 addresses -> dotted-quad strings."""
    v = values.astype(np.uint32)
    parts = [pc.take(_OCTETS, pa.array((v >> np.uint32(s)) & np.uint32(255)))
             for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def format_tokens(rng: np.random.Generator, count: int, prefix: str = "tok_") -> pa.Array:
    """``count`` distinct random 64-bit tokens like ``tok_9f1c03e2a4b7d610``."""
    raw = rng.integers(0, np.iinfo(np.int64).max, size=count + count // 100 + 8, dtype=np.int64)
    _, first_seen = np.unique(raw, return_index=True)
    raw = raw[np.sort(first_seen)[:count]].astype(np.uint64)
    parts = [pc.take(_HEX4, pa.array((raw >> np.uint64(s)) & np.uint64(0xFFFF)))
             for s in (48, 32, 16, 0)]
    return pc.binary_join_element_wise(prefix, *parts, "")


def format_account_ids(index: np.ndarray, width: int) -> pa.Array:
    """Zero-padded ids ``acct-0000123`` (width digits, at least 7)."""
    idx = index.astype(np.int64)
    width = max(width, 7)
    n_groups = -(-width // 3)
    parts = [pc.take(_DIGITS, pa.array((idx // 10 ** (3 * g)) % 1000))
             for g in range(n_groups - 1, -1, -1)]
    joined = pc.binary_join_element_wise(*parts, "")
    trimmed = pc.utf8_slice_codeunits(joined, 3 * n_groups - width)
    return pc.binary_join_element_wise("acct-", trimmed, "")


def join_columns(columns: list[pa.Array], separator: str = " ") -> pa.Array:
    """Element-wise join of equally long string arrays."""
    if len(columns) == 1:
        return columns[0]
    return pc.binary_join_element_wise(*columns, separator)
