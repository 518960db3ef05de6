"""Throughput and peak memory of the platform simulator.

    .venv/bin/python benchmarks/bench_simulate.py --accounts 100000 [--scenario medium]
        [--seed 7] [--events-scale 1.0] [--out DIR]

Prints accounts per second, rows per table and peak RSS of this process.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from sybilgnn.simulate import simulate_platform


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--scenario", default="medium")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events-scale", type=float, default=1.0)
    parser.add_argument("--out", default=None, help="keep the tables here (default: temp dir)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    try:
        summary = simulate_platform(out, accounts=args.accounts, scenario=args.scenario,
                                    seed=args.seed, events_scale=args.events_scale, progress=True)
        size = sum(p.stat().st_size for p in out.glob("*.parquet"))
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"accounts={summary.accounts} scenario={summary.scenario} seed={summary.seed} "
          f"events_scale={summary.events_scale}")
    print(f"elapsed_s={summary.elapsed_s:.1f} accounts_per_s={summary.accounts / summary.elapsed_s:,.0f} "
          f"peak_rss_gib={peak_gib:.2f} parquet_mib={size / 2**20:.0f}")
    print("rows " + " ".join(f"{k}={v}" for k, v in summary.rows.items()))
    print(f"fakes={summary.fake_accounts} interactions={summary.interactions} "
          f"fake_interactions={summary.fake_interactions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
