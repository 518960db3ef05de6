from __future__ import annotations

import numpy as np
import pandas as pd

from sybilgnn.config import SimilaritySettings
from sybilgnn.features.prompt_similarity import (
    cap_edges,
    lsh_params,
    minhash_signatures,
    similar_account_pairs,
)


def _shingles(text: str, k: int = 3) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i:i + k]) for i in range(len(words) - k + 1)}


def test_minhash_estimates_word_shingle_jaccard() -> None:
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(300)]
    base = list(rng.choice(vocab, 60))
    variant = base[:45] + list(rng.choice(vocab, 15))
    sig, has = minhash_signatures([" ".join(base), " ".join(variant)], num_perm=256)
    truth = len(_shingles(" ".join(base)) & _shingles(" ".join(variant))) / len(
        _shingles(" ".join(base)) | _shingles(" ".join(variant)))
    estimate = float((sig[0] == sig[1]).mean())
    assert has.all()
    assert abs(estimate - truth) < 0.08


def test_short_and_empty_texts() -> None:
    sig, has = minhash_signatures(["hi", "hi", "", "Hi!"], num_perm=16)
    assert has.tolist() == [True, True, False, True]
    assert (sig[0] == sig[1]).all() and (sig[0] == sig[3]).all()
    assert (sig[2] == np.iinfo(np.uint64).max).all()


def test_lsh_params_factor_num_perm() -> None:
    assert lsh_params(0.6, 64) == (16, 4)
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows == 128


def _planted_world() -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(1)
    vocab = [f"v{i}" for i in range(2000)]
    accounts, texts = [], []
    template = "act as a senior engineer and write the full code for a trading bot that uses"
    for i in range(8):  # fleet: the template plus one varying word
        accounts.append(f"fleet{i}")
        texts.append(f"{template} exchange{i}")
    for i in range(40):  # strangers with random prompts
        accounts.append(f"user{i:02d}")
        texts.append(" ".join(rng.choice(vocab, 16)))
    return accounts, texts


def test_finds_planted_near_duplicates_only() -> None:
    accounts, texts = _planted_world()
    sig, _ = minhash_signatures(texts, num_perm=64)
    result = similar_account_pairs(accounts, sig, SimilaritySettings(max_edges_per_account=50))
    pairs = set(zip(result.pairs["account_a"], result.pairs["account_b"]))
    expected = {(f"fleet{i}", f"fleet{j}") for i in range(8) for j in range(i + 1, 8)}
    assert pairs == expected
    assert (result.pairs["similarity"] >= 0.6).all()
    assert (result.pairs["n_shared"] == 1).all()


def test_cap_keeps_strongest_and_bounds_degree() -> None:
    accounts, texts = _planted_world()
    sig, _ = minhash_signatures(texts, num_perm=64)
    result = similar_account_pairs(accounts, sig, SimilaritySettings(max_edges_per_account=3))
    degree = pd.concat([result.pairs["account_a"], result.pairs["account_b"]]).value_counts()
    assert degree.max() <= 3
    assert len(result.pairs) == 12  # 8 accounts x 3 / 2: greedy fills every slot here


def test_cap_edges_greedy_order() -> None:
    pairs = pd.DataFrame({"a": ["x", "x", "y"], "b": ["y", "z", "z"],
                          "similarity": [0.9, 0.8, 0.7], "n_shared": [1, 1, 1]})
    kept = cap_edges(pairs, 1)
    assert list(zip(kept["a"], kept["b"])) == [("x", "y")]


def test_popular_prompt_buckets_are_skipped() -> None:
    texts = ["what is the meaning of life the universe and everything"] * 5
    accounts = [f"u{i}" for i in range(5)]
    sig, _ = minhash_signatures(texts, num_perm=64)
    small = similar_account_pairs(accounts, sig, SimilaritySettings(max_bucket_size=4))
    assert small.pairs.empty and small.skipped_buckets == 16
    big = similar_account_pairs(accounts, sig, SimilaritySettings(max_bucket_size=5))
    assert len(big.pairs) == 10 and (big.pairs["similarity"] == 1.0).all()


def test_prompt_pairs_found_in_every_band_count_once_and_rows_index_signatures() -> None:
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(500)]
    distinct = [" ".join(rng.choice(vocab, 20)) for _ in range(2)]
    sig, _ = minhash_signatures(distinct, num_perm=64)
    accounts = ["alice", "alice", "bob", "bob"]
    rows = np.array([0, 1, 0, 1])  # both send both prompts: identical signatures collide
    # in all 16 bands, yet each of the two shared prompts is one shared pair
    by_index = similar_account_pairs(accounts, sig, SimilaritySettings(), rows=rows)
    copied = similar_account_pairs(accounts, sig[rows], SimilaritySettings())
    assert list(by_index.pairs.itertuples(index=False)) == [("alice", "bob", 1.0, 2)]
    pd.testing.assert_frame_equal(by_index.pairs, copied.pairs)
    assert by_index.n_candidates == copied.n_candidates == 2 * 16
