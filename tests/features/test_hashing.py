from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

from sybilgnn.config import HashingSettings
from sybilgnn.features.hashing import keyed_hash, keyed_hash_many, load_secret


def test_keyed_hash_is_hmac_sha256_prefix_and_depends_on_secret() -> None:
    expected = hmac.new(b"s1", b"10.0.0.1", hashlib.sha256).hexdigest()[:32]
    assert keyed_hash("10.0.0.1", "s1") == expected
    assert keyed_hash("10.0.0.1", b"s1") == expected
    assert keyed_hash("10.0.0.1", "s2") != expected
    assert keyed_hash_many(["10.0.0.1", "10.0.0.1", "x"], "s1") == {
        "10.0.0.1": expected, "x": keyed_hash("x", "s1")}


def test_secret_file_is_generated_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret"
    settings = HashingSettings(secret_file=path)
    first = load_secret(settings)
    assert len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(settings) == first
    assert load_secret(HashingSettings(secret="explicit", secret_file=path)) == b"explicit"
