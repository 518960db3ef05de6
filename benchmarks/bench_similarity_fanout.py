"""Similarity search on simulated prompts with the bucket fan-out bound and without it.

    .venv/bin/python benchmarks/bench_similarity_fanout.py --accounts 100000 --fanouts 24,200

Simulates a platform (scenario ``medium``) or reads ``--tables DIR``, signs its prompts once,
then runs ``similar_account_pairs`` per ``bucket_fanout`` (200 = ``max_bucket_size``, i.e. all
pairs in every bucket, the behaviour before the bound) and prints seconds, candidates, edges,
the peak RSS so far (the first fan-out's is its own),
the share of edges inside one true fleet, the share of fake accounts with an edge, and the
Jaccard overlap of the first two edge sets.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sybilgnn.config import SimilaritySettings  # noqa: E402
from sybilgnn.features.prompt_similarity import similar_account_pairs  # noqa: E402
from sybilgnn.ingest import loaders  # noqa: E402


def peak_gib() -> float:
    """This process's peak resident set so far (the first fan-out's run is its own)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--tables", type=Path, default=None)
    parser.add_argument("--fanouts", default="24,200")
    args = parser.parse_args()
    tables = args.tables
    if tables is None:
        from sybilgnn.simulate import simulate_platform
        tables = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
        simulate_platform(tables, accounts=args.accounts, scenario="medium", seed=7)
    prompts = pd.read_parquet(tables / "prompts.parquet")
    truth = pd.read_parquet(tables / "ground_truth.parquet")
    fleet_of = dict(zip(truth["account_id"], truth["fleet"]))
    _, _, signatures, index = loaders.prompt_signatures(prompts, 64, 3)
    entries = pd.DataFrame({"acct": prompts["account_id"].to_numpy(), "sig": index})
    entries = entries[entries["sig"] >= 0].drop_duplicates()
    edge_sets = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    for fanout in (int(f) for f in args.fanouts.split(",")):
        started = time.perf_counter()
        result = similar_account_pairs(entries["acct"].to_numpy(),
                                       signatures, SimilaritySettings(bucket_fanout=fanout),
                                       rows=entries["sig"].to_numpy())
        seconds = time.perf_counter() - started
        pairs = result.pairs
        same = np.mean([fleet_of.get(a) is not None and fleet_of.get(a) == fleet_of.get(b)
                        for a, b in zip(pairs["account_a"], pairs["account_b"])])
        with_edge = set(pairs["account_a"]) | set(pairs["account_b"])
        covered = len(set(fleet_of) & with_edge) / max(len(fleet_of), 1)
        edge_sets.append(set(zip(pairs["account_a"], pairs["account_b"])))
        print(f"bucket_fanout {fanout}: {seconds:.1f} s, {result.n_prompts} prompts, "
              f"{result.n_candidates} candidates, {len(pairs)} edges, same-fleet share "
              f"{same:.3f}, fakes with an edge {covered:.3f}, peak RSS {peak_gib():.2f} GiB "
              f"({before:.2f} GiB before the search)", flush=True)
    if len(edge_sets) >= 2:
        a, b = edge_sets[0], edge_sets[1]
        print(f"edge-set Jaccard of the first two: {len(a & b) / max(len(a | b), 1):.3f}")


if __name__ == "__main__":
    main()
