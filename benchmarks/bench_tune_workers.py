"""Tuning throughput with 1, 2 and 4 workers on one PostgreSQL study (same budget).

    .venv/bin/python benchmarks/bench_tune_workers.py --accounts 3000 --trials 8 --workers 1,2,4

Starts Debian's PostgreSQL in a throw-away data directory (as the tests do), saves one
planted synthetic snapshot, and for each worker count runs that many
`sybilgnn tune --worker --snapshot DIR` processes (distinct sampler seeds, one torch thread
each) against a fresh database until the study holds `--trials` finished trials. Prints,
per worker count, the wall seconds, trials per hour, trials finished / pruned / failed and
the best objective reached. The workers share the machine's cores, the PostgreSQL server
and one SQLite MLflow store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the planted worlds and the PostgreSQL helper live with the tests

import optuna  # noqa: E402

from tests.conftest import free_port  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402
from tests.synthetic import planted_snapshot  # noqa: E402


def _run_workers(count: int, url: str, snapshot_dir: Path, root: Path, trials: int,
                 epochs: int) -> float:
    """Wall seconds until ``count`` workers brought the study to ``trials`` finished trials."""
    overrides = [f"--set=tune.storage={url}", f"--set=tune.n_trials={trials}",
                 f"--set=registry.tracking_uri=sqlite:///{root / 'mlflow.db'}",
                 f"--set=registry.artifact_root={root / 'artifacts'}",
                 f"--set=registry.experiment=bench-{count}", f"--set=train.epochs={epochs}",
                 "--set=train.device=cpu", "--set=tune.heartbeat_interval_s=5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    began = time.perf_counter()
    workers = [subprocess.Popen(
        [sys.executable, "-m", "sybilgnn", *overrides, "tune", "--worker", "--snapshot",
         str(snapshot_dir), "--seed", str(seed)],
        stdout=subprocess.DEVNULL, stderr=open(root / f"worker-{count}-{seed}.log", "wb"),
        env=env) for seed in range(count)]
    codes = [worker.wait() for worker in workers]
    wall = time.perf_counter() - began
    if any(codes):
        raise SystemExit(f"a worker failed ({codes}); see {root}/worker-{count}-*.log")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="sybilgnn-postgres-"))
    os.chmod(root, 0o755)
    server = PostgresServer(root, free_port())
    server.start()
    try:
        snapshot_dir = planted_snapshot(accounts=args.accounts, seed=11).save(root / "snapshot")
        print(f"{args.accounts} accounts, {args.trials} trials per study, "
              f"{os.cpu_count()} cores, PostgreSQL {server.bindir.parent.name}")
        print("| workers | wall s | trials / hour | finished | pruned | failed | best objective |")
        print("|---|---|---|---|---|---|---|")
        for count in (int(w) for w in args.workers.split(",")):
            url = server.url(f"bench_workers_{count}")
            wall = _run_workers(count, url, snapshot_dir, root, args.trials, args.epochs)
            (name,) = optuna.get_all_study_names(url)
            study = optuna.load_study(study_name=name, storage=url)
            states = [t.state for t in study.trials]
            done = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
            pruned = sum(s == optuna.trial.TrialState.PRUNED for s in states)
            failed = sum(s == optuna.trial.TrialState.FAIL for s in states)
            print(f"| {count} | {wall:.0f} | {3600 * (done + pruned) / wall:.0f} | {done} | "
                  f"{pruned} | {failed} | {study.best_value:.4f} |", flush=True)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
