"""How mislabelled legitimate accounts move leave-one-campaign-out recall at 1% FPR.

Trains the GNN (current config) with one campaign held out, exactly as
``sybilgnn.evaluation.loco`` does, then reads the simulator's truth (evaluation only) to show
the top-scored labelled-legit accounts of the holdout and the campaign's recall at 1% FPR
with and without the labelled-legit accounts that are in truth fakes.

    .venv/bin/python benchmarks/loco_label_noise.py SNAPSHOT_DIR TRUTH_PARQUET CAMPAIGN
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from sybilgnn.config import load_settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.evaluation.loco import held_out_snapshot
from sybilgnn.training import train
from sybilgnn.training.metrics import recall_at_fpr
from sybilgnn.training.predict import load_model, predict_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", help="a snapshot folder (export --out, or the cache)")
    parser.add_argument("truth", help="the simulated world's ground_truth.parquet")
    parser.add_argument("campaign", help="the campaign to hold out")
    args = parser.parse_args()
    settings = load_settings(config_file=None, overrides=["train.bootstrap=0"], environ={})
    snapshot = Snapshot.load(args.snapshot)
    truth = pd.read_parquet(args.truth).set_index("account_id")
    ids = np.asarray(snapshot.id_maps["account"], dtype=object)
    fake = truth.reindex(ids)["is_fake"].to_numpy().astype(bool)
    held = held_out_snapshot(snapshot, settings, args.campaign)
    result = train(held, settings)
    logits = predict_logits(load_model(result.model_config, result.state_dict),
                            result.preprocessor.transform(held), "cpu")
    store = held.data["account"]
    y, holdout = store.y.numpy(), store.holdout_mask.numpy()
    negatives = np.flatnonzero(holdout & (y == 0))
    positives = np.flatnonzero(holdout & (y == 1))
    top = negatives[np.argsort(-logits[negatives])][:5]
    print(f"{args.campaign}: {len(positives)} held-out fakes, {len(negatives)} labelled-legit "
          f"accounts, {int(fake[negatives].sum())} of them fakes in truth")
    print("top labelled-legit logits:", np.round(logits[top], 2).tolist(),
          "fake in truth:", fake[top].tolist())
    for name, keep in (("as labelled", negatives),
                       ("mislabelled fakes removed", negatives[~fake[negatives]])):
        rows = np.r_[positives, keep]
        labels = np.r_[np.ones(len(positives)), np.zeros(len(keep))].astype(np.int64)
        print(f"recall at 1% FPR, {name}: {recall_at_fpr(labels, logits[rows], 0.01):.3f}")


if __name__ == "__main__":
    main()
