"""Epochs saved by pruning: the same seeded study with the configured pruner and without.

    .venv/bin/python benchmarks/bench_tune.py --accounts 600 --trials 10 --epochs 20

Both studies run on one planted synthetic snapshot with the same sampler seed, search space
and per-trial epoch cap, in a throw-away MLflow/Optuna store. Prints, per pruner, the
trials, pruned trials, epochs trained, the trials x max_epochs budget, epochs saved, best
validation AUPRC and wall / CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the planted worlds live with the tests (tests/synthetic.py)

from sybilgnn.config import load_settings  # noqa: E402
from sybilgnn.registry import configure_tracking  # noqa: E402
from sybilgnn.tuning import run_study  # noqa: E402
from tests.synthetic import planted_snapshot  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=600)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20, help="max epochs per trial")
    parser.add_argument("--pruners", default="median,none")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shift", type=float, default=0.2,
                        help="feature shift of fakes (smaller = harder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    snapshot = planted_snapshot(accounts=args.accounts, feature_shift=args.shift, seed=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        root = Path(tmp)
        for pruner in args.pruners.split(","):
            settings = load_settings(config_file=None, environ={}, overrides=[
                f"registry.tracking_uri=sqlite:///{root / 'mlflow.db'}",
                f"registry.artifact_root={root / 'artifacts'}",
                f"tune.storage=sqlite:///{root / 'optuna.db'}",
                f"tune.study_name=bench-{pruner}", f"tune.pruner={pruner}",
                f"tune.trial_epochs={args.epochs}", f"train.patience={args.epochs}",
                "train.min_epochs=1", "train.device=cpu"])
            configure_tracking(settings)  # schema migration is a one-time cost, not tuning
            wall, cpu = time.perf_counter(), _cpu()
            result = run_study(snapshot, settings, n_trials=args.trials)
            p = result.pruning
            rows.append({"pruner": pruner, "trials": p.trials, "pruned": p.pruned,
                         "epochs_run": p.epochs_run, "budget": p.epochs_budget,
                         "saved": p.epochs_saved_total, "saved_by_pruning": p.epochs_saved_by_pruning,
                         "best_val_auprc": round(result.best_value or float("nan"), 4),
                         "wall_s": round(time.perf_counter() - wall, 1),
                         "cpu_s": round(_cpu() - cpu, 1)})
            print(json.dumps(rows[-1]), flush=True)
    print("| pruner | trials | pruned | epochs run | budget | saved | best val AUPRC | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pruner']} | {r['trials']} | {r['pruned']} | {r['epochs_run']} | {r['budget']} | "
              f"{r['saved']} | {r['best_val_auprc']} | {r['wall_s']} | {r['cpu_s']} |")


if __name__ == "__main__":
    main()
