"""Would a GNN + gradient-boosting blend find unseen campaigns better than either alone?

For every labelled campaign of a snapshot (held out in turn, exactly as
``sybilgnn.evaluation.loco`` does) this trains the GNN (current config) and gradient boosting
on account plus neighbour features, and measures three scores on the campaign: each model's
and the mean of their percentile ranks over all accounts (a blend with no fitted weight).
The figure is recall in queue (``evaluation.population.recall_at_budget``); with the
simulator's truth (read for evaluation only) the queue's precision and the campaign's recall
against truth are printed too. A measurement for choosing the model, not part of the package.

    .venv/bin/python benchmarks/loco_blend.py SNAPSHOT_DIR [TRUTH_PARQUET]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from sybilgnn.config import load_settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.evaluation.loco import held_out_snapshot
from sybilgnn.evaluation.population import MIN_POSITIVES, recall_at_budget
from sybilgnn.training import train
from sybilgnn.training.baselines import fit_gradient_boosting, neighbour_features
from sybilgnn.training.predict import load_model, predict_logits


def _queue_against_truth(score: np.ndarray, candidates: np.ndarray, budget: int,
                         fake: np.ndarray, campaign_fakes: np.ndarray) -> tuple[float, float]:
    """(precision of the queue, recall of the campaign's fakes among candidates) vs truth."""
    rows = np.flatnonzero(candidates)
    queue = rows[np.argsort(-score[rows], kind="stable")[:budget]]
    in_queue = np.zeros(score.size, dtype=bool)
    in_queue[queue] = True
    wanted = campaign_fakes & candidates
    return float(fake[queue].mean()), float(in_queue[wanted].sum() / max(wanted.sum(), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", help="a snapshot folder (export --out, or the cache)")
    parser.add_argument("truth", nargs="?", help="the simulated world's ground_truth.parquet")
    parser.add_argument("--prevalence", type=float, default=None,
                        help="queue length as a share of unseen accounts (default: the GNN's)")
    args = parser.parse_args()
    settings = load_settings(config_file=None, overrides=["train.bootstrap=0"], environ={})
    snapshot = Snapshot.load(args.snapshot)
    ids = np.asarray(snapshot.id_maps["account"], dtype=object)
    truth = None
    if args.truth:
        truth = pd.read_parquet(args.truth).set_index("account_id").reindex(ids)
    store = snapshot.data["account"]
    y_all, group = store.y.numpy(), store.group.numpy()
    print("| campaign | fakes | queue | gnn | hgb_neighbours | blend |" +
          (" truth: queue precision / campaign recall (gnn; hgb; blend) |" if truth is not None
           else ""))
    print("|---|---|---|---|---|---|" + ("---|" if truth is not None else ""))
    means: dict[str, list[float]] = {"gnn": [], "hgb_neighbours": [], "blend": []}
    for code, campaign in enumerate(store.group_names):
        if int(((group == code) & (y_all == 1)).sum()) < MIN_POSITIVES:
            continue
        held = held_out_snapshot(snapshot, settings, str(campaign))
        result = train(held, settings)
        gnn = predict_logits(load_model(result.model_config, result.state_dict),
                             result.preprocessor.transform(held), "cpu")
        account = held.data["account"]
        y = account.y.numpy()
        train_mask, val_mask = account.train_mask.numpy(), account.val_mask.numpy()
        hgb = fit_gradient_boosting(neighbour_features(held)[0], y, train_mask & (y >= 0),
                         settings.train.seed)
        blend = (rankdata(gnn) + rankdata(hgb)) / (2.0 * gnn.size)
        candidates = ~(train_mask | val_mask)
        positives = account.holdout_mask.numpy() & (y == 1)
        prevalence = args.prevalence or float(result.threshold_info["prevalence"])
        cells, truths = [], []
        budget = 0
        for name, score in (("gnn", gnn), ("hgb_neighbours", hgb), ("blend", blend)):
            out = recall_at_budget(score, positives, candidates, prevalence, n_boot=200)
            budget = int(out["budget"])
            means[name].append(out["recall_at_budget"])
            cells.append(f"{out['recall_at_budget']:.3f} [{out['recall_at_budget_lo']:.3f}, "
                         f"{out['recall_at_budget_hi']:.3f}]")
            if truth is not None:
                fake = truth["is_fake"].to_numpy().astype(bool)
                campaign_fakes = fake & (truth["campaign"].to_numpy() == str(campaign))
                precision, recall = _queue_against_truth(score, candidates, budget, fake,
                                                         campaign_fakes)
                truths.append(f"{precision:.3f} / {recall:.3f}")
        line = (f"| {campaign} | {int(positives.sum())} | {budget} | " + " | ".join(cells)
                + " |")
        if truth is not None:
            line += " " + "; ".join(truths) + " |"
        print(line, flush=True)
    print("| **mean** | | | " + " | ".join(
        f"**{np.mean(v):.3f}**" if v and not math.isnan(np.mean(v)) else "–"
        for v in means.values()) + " |" + (" |" if truth is not None else ""))


if __name__ == "__main__":
    main()
