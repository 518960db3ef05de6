"""Leave-one-campaign-out recall in queue of GNN configurations, side by side.

Each variant is a list of ``--set``-style overrides; every variant is trained with each
labelled campaign held out in turn (``sybilgnn.evaluation.loco``), the queue at one fixed
prevalence so that the variants are measured on the same queue length. With
``--baselines`` both gradient-boosting baselines are measured once too. A measurement for
choosing defaults (on development worlds only), not part of the package.

    .venv/bin/python benchmarks/loco_variants.py SNAPSHOT_DIR \\
        --variant default= --variant fdrop=model.feature_dropout=0.3 [--baselines]
"""

from __future__ import annotations

import argparse
import time

from sybilgnn.config import load_settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.evaluation.loco import FIGURE, leave_one_campaign_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=KEY=VALUE[,KEY=VALUE...] (NAME= for the defaults)")
    parser.add_argument("--prevalence", type=float, default=0.025)
    parser.add_argument("--baselines", action="store_true")
    args = parser.parse_args()
    snapshot = Snapshot.load(args.snapshot)
    for spec in args.variant or ["default="]:
        name, _, rest = spec.partition("=")
        overrides = ["train.bootstrap=0"] + [o for o in rest.split(",") if o]
        settings = load_settings(config_file=None, overrides=overrides, environ={})
        tick = time.perf_counter()
        result = leave_one_campaign_out(snapshot, settings, with_baselines=args.baselines,
                                        prevalence=args.prevalence)
        for model, per in result.by_model.items():
            if model != "gnn" and spec != (args.variant or ["default="])[0]:
                continue
            cells = " ".join(f"{c}={m.get(FIGURE, float('nan')):.3f}"
                             for c, m in sorted(per.items()))
            label = name if model == "gnn" else model
            print(f"{label:>24}: mean {result.mean(model):.3f}  {cells}  "
                  f"({time.perf_counter() - tick:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
