"""Prompt-similarity throughput: vectorised numpy MinHash + LSH against datasketch.

Synthetic prompts: a share comes from templates with one or two varied words (fleet traffic),
the rest are random word sequences. Prints prompts per second for signatures alone and for
signatures + LSH + account-pair aggregation, and datasketch's MinHash/MinHashLSH on a subset.

    .venv/bin/python benchmarks/bench_similarity.py --prompts 200000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sybilgnn.config import SimilaritySettings  # noqa: E402
from sybilgnn.features.prompt_similarity import (  # noqa: E402
    _WORD,
    lsh_params,
    minhash_signatures,
    similar_account_pairs,
)


def make_prompts(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"word{i}" for i in range(20_000)])
    templates = [" ".join(rng.choice(vocab, 18)) for _ in range(50)]
    texts, accounts = [], []
    for i in range(n):
        if rng.random() < 0.3:
            words = templates[int(rng.integers(0, 50))].split()
            words[int(rng.integers(0, len(words)))] = str(rng.choice(vocab))
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.choice(vocab, int(rng.integers(8, 40)))))
        accounts.append(f"acct{int(rng.integers(0, n // 10 + 1)):07d}")
    return texts, accounts


def datasketch_rate(texts: list[str], settings: SimilaritySettings) -> float:
    from datasketch import MinHash, MinHashLSH

    bands, rows = lsh_params(settings.threshold, settings.num_perm)
    lsh = MinHashLSH(num_perm=settings.num_perm, params=(bands, rows))
    k = settings.shingle_size
    started = time.perf_counter()
    for i, text in enumerate(texts):
        words = _WORD.findall(text.lower())
        sh = {" ".join(words[j:j + k]).encode() for j in range(max(len(words) - k + 1, 1))}
        m = MinHash(num_perm=settings.num_perm)
        m.update_batch(list(sh))
        lsh.insert(str(i), m)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200_000)
    parser.add_argument("--datasketch-prompts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = SimilaritySettings()
    texts, accounts = make_prompts(args.prompts, args.seed)

    started = time.perf_counter()
    sig, _ = minhash_signatures(texts, num_perm=settings.num_perm,
                                shingle_size=settings.shingle_size)
    sig_s = time.perf_counter() - started
    result = similar_account_pairs(accounts, sig, settings)
    total_s = time.perf_counter() - started
    print(json.dumps({
        "prompts": args.prompts,
        "num_perm": settings.num_perm, "bands": result.bands, "rows_per_band": result.rows,
        "signatures_s": round(sig_s, 2),
        "signatures_prompts_per_s": round(args.prompts / sig_s),
        "with_lsh_and_pairs_s": round(total_s, 2),
        "end_to_end_prompts_per_s": round(args.prompts / total_s),
        "candidate_prompt_pairs": result.n_candidates,
        "account_pairs": len(result.pairs),
        "datasketch_minhash_lsh_prompts_per_s": round(
            datasketch_rate(texts[:args.datasketch_prompts], settings)),
    }, indent=2))


if __name__ == "__main__":
    main()
