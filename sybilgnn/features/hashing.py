"""Keyed hash that replaces raw IP addresses and payment tokens before they reach Neo4j.

A plain hash of an IPv4 address is reversible by enumerating the address space; an HMAC with a
secret the graph never sees is not. The secret comes from ``hashing.secret`` or from
``hashing.secret_file``, which is generated (owner-only, 0600) on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from sybilgnn.config import HashingSettings
from sybilgnn.errors import SybilgnnError

__all__ = ["HASH_HEX_CHARS", "keyed_hash", "keyed_hash_many", "load_secret"]

HASH_HEX_CHARS = 32


def _key_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def keyed_hash(value: str, secret: str | bytes) -> str:
    """HMAC-SHA256 of ``value`` under ``secret``, hex, first 32 characters (128 bits)."""
    digest = hmac.new(_key_bytes(secret), value.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:HASH_HEX_CHARS]


def keyed_hash_many(values: Iterable[str], secret: str | bytes) -> dict[str, str]:
    """Hash each distinct value once; returns ``{raw: hashed}`` for mapping a column."""
    base = hmac.new(_key_bytes(secret), digestmod=hashlib.sha256)
    out: dict[str, str] = {}
    for value in values:
        if value in out:
            continue
        mac = base.copy()
        mac.update(value.encode("utf-8"))
        out[value] = mac.hexdigest()[:HASH_HEX_CHARS]
    return out


def load_secret(settings: HashingSettings) -> bytes:
    """The configured secret, else the secret file's, creating that file (0600) when missing."""
    if settings.secret:
        return settings.secret.encode("utf-8")
    path = Path(settings.secret_file)
    if path.exists():
        text = path.read_text().strip()
        if not text:
            raise SybilgnnError(f"hashing.secret_file {path} is empty; delete it to generate a "
                                "new secret (this changes every ip_id/pm_id) or restore it")
        return text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return load_secret(settings)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)
    return load_secret(settings)
