"""Account behaviour features, keyed hashing of identifiers, prompt-similarity edges."""

from __future__ import annotations

from sybilgnn.features.account_features import (ACCOUNT_FEATURES, ACCOUNT_FEATURES_LABEL,
                                                compute_account_features)
from sybilgnn.features.hashing import keyed_hash, keyed_hash_many, load_secret
from sybilgnn.features.prompt_similarity import minhash_signatures, similar_account_pairs

__all__ = [
    "ACCOUNT_FEATURES",
    "ACCOUNT_FEATURES_LABEL",
    "compute_account_features",
    "keyed_hash",
    "keyed_hash_many",
    "load_secret",
    "minhash_signatures",
    "similar_account_pairs",
]
