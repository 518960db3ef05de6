"""Near-duplicate prompts across accounts: vectorised MinHash + LSH banding, then account pairs.

Fleets send templated prompts; strangers rarely write near-identical ones, except popular
prompts, which land in large LSH buckets and are skipped. Signatures are computed with numpy
(one pass per chunk of shingles for all permutations at once) rather than a per-document
Python loop, which is what makes millions of prompts practical on a CPU box.

The algorithm is fixed (documented in docs/features.md) so that platforms may send
precomputed ``minhash`` columns that are comparable with signatures computed here:
words are ``\\w+`` runs of the lower-cased text, each word is hashed with BLAKE2b (8 bytes,
little-endian), ``shingle_size`` consecutive word hashes are combined, and permutation ``p``
maps a shingle hash ``h`` to ``a[p] * h + b[p] mod 2**64`` with ``a, b`` drawn from
``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sybilgnn.config import SimilaritySettings

__all__ = [
    "MINHASH_SEED",
    "SimilarityResult",
    "lsh_params",
    "minhash_signatures",
    "signature_hash",
    "similar_account_pairs",
    "cap_edges",
]

MINHASH_SEED = 1_234_567
_WORD = re.compile(r"\w+")
_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MAX_SHINGLES_PER_CHUNK = 200_000


def _splitmix(x: np.ndarray) -> np.ndarray:
    """A bijective 64-bit finaliser: spreads combined word hashes over all bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def _word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated word hashes of all texts and each text's word count."""
    cache: dict[str, int] = {}
    flat: list[int] = []
    counts = np.zeros(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        words = _WORD.findall(text.lower()) if isinstance(text, str) else []
        counts[i] = len(words)
        for word in words:
            value = cache.get(word)
            if value is None:
                value = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8)
                                       .digest(), "little")
                cache[word] = value
            flat.append(value)
    return np.array(flat, dtype=np.uint64), counts


def _shingle_hashes(words: np.ndarray, counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash of every k-word shingle (a text shorter than k words is one shingle)."""
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    per_text = np.where(counts >= k, counts - k + 1, np.minimum(counts, 1))
    text_of = np.repeat(np.arange(len(counts)), per_text)
    offset = np.arange(per_text.sum()) - np.repeat(np.cumsum(per_text) - per_text, per_text)
    pos = starts[text_of] + offset
    length = np.minimum(counts[text_of] - offset, k)
    h = np.zeros(len(pos), dtype=np.uint64)
    if len(words) == 0:
        return h, per_text
    for t in range(k):
        use = t < length
        idx = np.minimum(pos + t, len(words) - 1)
        h = np.where(use, h * _PRIME + words[idx], h)
    return _splitmix(h ^ length.astype(np.uint64)), per_text


def minhash_signatures(texts: Sequence[str], *, num_perm: int = 64, shingle_size: int = 3,
                       seed: int = MINHASH_SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(signatures uint64 [n, num_perm], has_words bool [n])`` for ``texts``.

    Texts without any word get an all-max signature and ``has_words`` False; callers drop them.
    """
    words, counts = _word_hashes(texts)
    shingles, per_text = _shingle_hashes(words, counts, shingle_size)
    a, b = _permutations(num_perm, seed)
    sig = np.full((len(texts), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    has = per_text > 0
    text_ids = np.flatnonzero(has)
    ends = np.cumsum(per_text[text_ids])
    begin = 0
    while begin < len(text_ids):
        base = ends[begin - 1] if begin else 0
        stop = int(np.searchsorted(ends, base + _MAX_SHINGLES_PER_CHUNK, side="right"))
        stop = max(stop, begin + 1)
        block = shingles[base:ends[stop - 1]]
        values = np.multiply.outer(block, a) + b
        offsets = (np.concatenate([[base], ends[begin:stop - 1]]) - base).astype(np.int64)
        sig[text_ids[begin:stop]] = np.minimum.reduceat(values, offsets, axis=0)
        begin = stop
    return sig, has


def signature_hash(signatures: np.ndarray) -> np.ndarray:
    """One 64-bit hash per signature row (used to drop exact duplicates and for LSH keys)."""
    h = np.zeros(len(signatures), dtype=np.uint64)
    for col in range(signatures.shape[1]):
        h = _splitmix(h * _PRIME + signatures[:, col])
    return h


def lsh_params(threshold: float, num_perm: int, *, fn_weight: float = 0.8) -> tuple[int, int]:
    """Bands and rows per band minimising weighted false-positive + false-negative area.

    Missed near-duplicates cost more than extra candidates (every candidate is verified
    with the signature estimate), hence the default weight of 0.8 on false negatives.
    """
    best: tuple[float, int, int] | None = None
    grid = np.linspace(0.0, 1.0, 1001)
    for rows in range(1, num_perm + 1):
        if num_perm % rows:
            continue
        bands = num_perm // rows
        prob = 1.0 - (1.0 - grid**rows) ** bands
        fp = np.trapezoid(np.where(grid <= threshold, prob, 0.0), grid)
        fn = np.trapezoid(np.where(grid >= threshold, 1.0 - prob, 0.0), grid)
        cost = float((1.0 - fn_weight) * fp + fn_weight * fn)
        if best is None or cost < best[0]:
            best = (cost, bands, rows)
    assert best is not None
    return best[1], best[2]


def _band_candidates(band_keys: np.ndarray, max_bucket: int, fanout: int,
                     tiebreak: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes (``_pair_codes``) of the distinct entry pairs sharing one band's bucket of at
    most ``max_bucket`` entries, and how many buckets were larger.

    A bucket of at most ``fanout + 1`` entries yields all its pairs. In a larger one each
    entry is paired with the next ``fanout`` entries in an order fixed by ``tiebreak`` (a
    hash of the whole signature), so work grows linearly with the bucket, not with its
    square: templated fleets fill buckets with hundreds of near-identical prompts whose
    all-pairs would be tens of millions of candidates, while each account keeps only
    ``max_edges_per_account`` edges anyway. Identical signatures sort next to each other.
    """
    n = len(band_keys)
    order = np.lexsort((tiebreak, band_keys))
    sorted_keys = band_keys[order]
    cut = np.flatnonzero(np.diff(sorted_keys)) + 1
    starts = np.concatenate([[0], cut])
    sizes = np.diff(np.concatenate([starts, [n]]))
    skipped = int((sizes > max_bucket).sum())
    usable = (sizes >= 2) & (sizes <= max_bucket)
    small = usable & (sizes <= fanout + 1)
    codes: list[np.ndarray] = []
    # bincount, not np.unique: numpy 2.x's hash-based unique is slow on large int arrays
    small_sizes = sizes[small]
    for size in np.flatnonzero(np.bincount(small_sizes)) if len(small_sizes) else []:
        first = starts[small & (sizes == size)]
        iu, ju = np.triu_indices(int(size), 1)
        codes.append(_pair_codes(order[first[:, None] + iu[None, :]].ravel(),
                                 order[first[:, None] + ju[None, :]].ravel(), n))
    large = usable & ~small
    if large.any():
        big_starts, big_sizes = starts[large], sizes[large]
        positions = np.repeat(big_starts, big_sizes) + _ranges(big_sizes)
        ends = np.repeat(big_starts + big_sizes, big_sizes)
        for step in range(1, fanout + 1):
            ok = positions + step < ends
            codes.append(_pair_codes(order[positions[ok]], order[positions[ok] + step], n))
    if not codes:
        return np.zeros(0, dtype=np.int64), skipped
    return _sorted_unique(np.concatenate(codes)), skipped


def _ranges(sizes: np.ndarray) -> np.ndarray:
    """``0..size-1`` for every size, concatenated."""
    offsets = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.arange(int(sizes.sum()), dtype=np.int64) - offsets


def _pair_codes(left: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    left, right = left.astype(np.int64), right.astype(np.int64)
    return np.minimum(left, right) * n + np.maximum(left, right)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    values = np.sort(values)
    if len(values) == 0:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


@dataclass
class SimilarityResult:
    """Account pairs (``account_a`` < ``account_b``) with ``similarity`` and ``n_shared``."""

    pairs: pd.DataFrame
    n_prompts: int  # (account, prompt) entries given
    n_entries: int  # after dropping an account's repeats of one signature
    n_candidates: int  # cross-account pairs verified, per band (a pair found in k bands: k)
    skipped_buckets: int
    bands: int
    rows: int


def similar_account_pairs(account_ids: Sequence[str] | np.ndarray, signatures: np.ndarray,
                          settings: SimilaritySettings, rows: np.ndarray | None = None
                          ) -> SimilarityResult:
    """Near-duplicate prompt pairs across accounts, aggregated and capped per account.

    Entry ``i`` is account ``account_ids[i]`` with signature ``signatures[rows[i]]`` (``rows``
    None: row ``i``), so a caller holding each distinct prompt's signature once need not
    copy it per sender. Candidates are found, verified and filtered one LSH band at a time:
    only the pairs that pass the threshold outlive their band, so memory follows the
    edges, not the candidates (hundreds of millions at a million accounts).
    """
    bands, width = lsh_params(settings.threshold, signatures.shape[1])
    accounts = np.asarray(account_ids, dtype=object)
    names, codes = np.unique(accounts, return_inverse=True)  # sorted: code order = id order
    rows = np.arange(len(accounts)) if rows is None else np.asarray(rows, dtype=np.int64)
    full_hash = signature_hash(signatures)[rows]
    keep = ~pd.DataFrame({"acct": codes, "sig": full_hash}).duplicated().to_numpy()
    sig_rows, acct, tiebreak = rows[keep], codes[keep], full_hash[keep]
    n = len(sig_rows)
    found = _PairTally(len(names))
    verified = skipped = 0
    for band in range(bands):
        keys = signature_hash(signatures[sig_rows, band * width:(band + 1) * width])
        pair_codes, band_skipped = _band_candidates(keys, settings.max_bucket_size,
                                                    settings.bucket_fanout, tiebreak)
        skipped += band_skipped
        left, right = pair_codes // n, pair_codes % n
        cross = acct[left] != acct[right]
        pair_codes, left, right = pair_codes[cross], left[cross], right[cross]
        verified += len(pair_codes)
        sims = _estimated_similarity(signatures, sig_rows[left], sig_rows[right])
        good = sims >= settings.threshold
        found.add(pair_codes[good], acct[left[good]], acct[right[good]], sims[good])
    agg = found.frame()
    agg = agg[agg["n_shared"] >= settings.min_shared_prompts]
    agg = cap_edges(agg, settings.max_edges_per_account)
    pairs = pd.DataFrame({
        "account_a": names[agg["a"].to_numpy()] if len(agg) else np.array([], dtype=object),
        "account_b": names[agg["b"].to_numpy()] if len(agg) else np.array([], dtype=object),
        "similarity": agg["similarity"].to_numpy(dtype=np.float64),
        "n_shared": agg["n_shared"].to_numpy(dtype=np.int64),
    })
    return SimilarityResult(pairs=pairs, n_prompts=len(rows), n_entries=n,
                            n_candidates=verified, skipped_buckets=skipped,
                            bands=bands, rows=width)


class _PairTally:
    """Near-duplicate entry pairs found so far, tallied per account pair: the most similar
    prompt pair and how many distinct prompt pairs the two accounts share. A pair that
    several bands find counts once; only the entry pairs' codes are kept besides."""

    def __init__(self, accounts: int) -> None:
        self.accounts = accounts
        self.seen = np.zeros(0, dtype=np.int64)  # sorted entry-pair codes already counted
        self.codes = np.zeros(0, dtype=np.int64)  # sorted account-pair codes
        self.best = np.zeros(0, dtype=np.float64)
        self.count = np.zeros(0, dtype=np.int64)

    def add(self, entry_codes: np.ndarray, acct_a: np.ndarray, acct_b: np.ndarray,
            sims: np.ndarray) -> None:
        """One band's verified pairs (``entry_codes`` sorted and distinct)."""
        new = np.ones(len(entry_codes), dtype=bool)
        if len(self.seen):
            at = np.minimum(np.searchsorted(self.seen, entry_codes), len(self.seen) - 1)
            new = self.seen[at] != entry_codes
        self.seen = np.sort(np.concatenate([self.seen, entry_codes[new]]), kind="stable")
        pair = (np.minimum(acct_a[new], acct_b[new]).astype(np.int64) * self.accounts
                + np.maximum(acct_a[new], acct_b[new]))
        codes = np.concatenate([self.codes, pair])
        order = np.argsort(codes, kind="stable")
        codes = codes[order]
        best = np.concatenate([self.best, sims[new]])[order]
        count = np.concatenate([self.count, np.ones(len(pair), dtype=np.int64)])[order]
        if len(codes) == 0:
            return
        starts = np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1]]))
        self.codes = codes[starts]
        self.best = np.maximum.reduceat(best, starts)
        self.count = np.add.reduceat(count, starts)

    def frame(self) -> pd.DataFrame:
        """Account pairs ``a < b`` in order, with ``similarity`` and ``n_shared``."""
        return pd.DataFrame({"a": self.codes // self.accounts, "b": self.codes % self.accounts,
                             "similarity": self.best, "n_shared": self.count})


def _estimated_similarity(signatures: np.ndarray, left: np.ndarray, right: np.ndarray
                          ) -> np.ndarray:
    """Share of equal MinHash values of each pair of signature rows (the Jaccard estimate)."""
    sims = np.empty(len(left), dtype=np.float64)
    step = 32_768  # small chunks keep the gathered rows in cache
    for start in range(0, len(left), step):
        sl = slice(start, start + step)
        sims[sl] = (np.count_nonzero(signatures[left[sl]] == signatures[right[sl]], axis=1)
                    / signatures.shape[1])
    return sims


def cap_edges(pairs: pd.DataFrame, cap: int, *, start_degree: dict[object, int] | None = None,
              a: str = "a", b: str = "b") -> pd.DataFrame:
    """Greedy strongest-first selection so that no account ends with more than ``cap`` edges.

    Ties break on ``n_shared`` then the pair's ids, so the result is deterministic. The
    accounts are coded once (sorted, so code order is id order) and the pairs are walked in
    chunks: tens of millions of candidate pairs at a million accounts never become Python
    objects all at once.
    """
    if pairs.empty:
        return pairs
    codes, ids = pd.factorize(pd.concat([pairs[a], pairs[b]], ignore_index=True), sort=True)
    left, right = codes[:len(pairs)], codes[len(pairs):]
    degree = [0] * len(ids)
    for key, start in (start_degree or {}).items():
        at = ids.get_indexer([key])[0]
        if at >= 0:
            degree[at] = start
    order = np.lexsort((right, left, -pairs["n_shared"].to_numpy(),
                        -pairs["similarity"].to_numpy()))
    kept: list[int] = []
    chunk = 1 << 20
    for lo in range(0, len(order), chunk):
        rows = order[lo:lo + chunk]
        for row, x, y in zip(rows.tolist(), left[rows].tolist(), right[rows].tolist()):
            if degree[x] < cap and degree[y] < cap:
                kept.append(row)
                degree[x] += 1
                degree[y] += 1
    chosen = np.asarray(kept, dtype=np.int64)
    chosen = chosen[np.lexsort((right[chosen], left[chosen]))]
    return pairs.iloc[chosen].reset_index(drop=True)
