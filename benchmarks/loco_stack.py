"""GNN and gradient boosting on campaigns they never saw: alone, stacked, or fused by rank.

Experiment harness (not part of the package): for every labelled campaign of a snapshot,
held out in turn exactly as ``sybilgnn.evaluation.loco`` does, it trains the GNN and both
gradient-boosting baselines and measures recall in queue of:
- ``stack``: the GNN cross-fitted on the train slice with folds grouped by campaign (so its
  out-of-fold logit is what it knows of a campaign it never saw), then gradient boosting on
  the neighbour features plus that logit and its neighbourhood aggregates
  (``stack_noagg``: without the aggregates);
- ``rank_mean`` / ``rank_max``: the mean / the higher of the GNN's and ``hgb_neighbours``'
  percentile ranks (``rank_max`` is what ``model.companion: trees`` ranks by).
``--no-stack`` skips the cross-fitting (fast). ``--caps`` adds, per cap, the fusion as the
champion ranks (``capped_C``) and two with a second tree model on the account's own
features (``hgb_features``): the higher of the two trees' scores (``own_C``) or their mean
(``avg_C``), each mapped onto the GNN's scale and capped the same way.

    .venv/bin/python benchmarks/loco_stack.py [--no-stack] SNAPSHOT_DIR
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.stats import rankdata

from sybilgnn.config import load_settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.evaluation.loco import held_out_snapshot
from sybilgnn.measures.population import MIN_POSITIVES, recall_at_budget
from sybilgnn.models.graph import prepare_graph
from sybilgnn.models.trees import TreeEnsemble
from sybilgnn.training import train
from sybilgnn.training.baselines import fit_gradient_boosting
from sybilgnn.training.companion import fuse_logits
from sybilgnn.training.crossfit import map_by_quantile
from sybilgnn.training.inputs import graph_inputs, resolve_settings
from sybilgnn.training.neighbours import neighbour_features
from sybilgnn.training.predict import load_model, predict_logits
from sybilgnn.training.refit import fit_for_epochs


@torch.no_grad()
def score_aggregates(snapshot: Snapshot, z: np.ndarray) -> np.ndarray:
    target = snapshot.labelled_type
    inputs = graph_inputs(snapshot)
    num_nodes = {nt: int(x.size(0)) for nt, x in inputs.x_dict.items()}
    graph = prepare_graph(inputs.edge_index_dict, inputs.edge_weight_dict, num_nodes)
    s = torch.from_numpy(z.astype(np.float32)).unsqueeze(1)
    cols = []
    for et, rel in graph.relations.items():
        if et[2] != target:
            continue
        if et[0] == target:
            cols += [rel.aggregate(s, "weighted_mean"), rel.aggregate(s, "max")]
            continue
        forward = next((r for e, r in graph.relations.items()
                        if e[0] == target and e[2] == et[0]), None)
        if forward is None:
            continue
        per_shared = torch.cat([forward.aggregate(s, "weighted_mean"),
                                forward.aggregate(s, "max")], dim=1)
        cols += [rel.aggregate(per_shared, "weighted_mean"), rel.aggregate(per_shared, "max")]
    return torch.cat(cols, dim=1).numpy() if cols else np.zeros((z.size, 0))


def campaign_folds(train_rows: np.ndarray, y: np.ndarray, group: np.ndarray, seed: int
                   ) -> list[np.ndarray]:
    """Fakes grouped by campaign (one fold each), legit accounts dealt at random."""
    fakes = train_rows[y[train_rows] == 1]
    codes = sorted(set(group[fakes].tolist()))
    folds = [fakes[group[fakes] == c] for c in codes]
    k = len(folds)
    legit = np.random.default_rng(seed).permutation(train_rows[y[train_rows] == 0])
    return [np.concatenate([folds[i], legit[i::k]]) for i in range(k)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot")
    parser.add_argument("--no-stack", action="store_true", help="fusions only (fast)")
    parser.add_argument("--set", action="append", default=[], help="a config override")
    parser.add_argument("--caps", default="", help="comma-separated lift caps (logits) for "
                        "the capped fusion, e.g. 2,3,4")
    args = parser.parse_args()
    settings = load_settings(config_file=None, overrides=["train.bootstrap=0", *args.set], environ={})
    snapshot = Snapshot.load(args.snapshot)
    store = snapshot.data["account"]
    y_all, group = store.y.numpy(), store.group.numpy()
    caps = [float(c) for c in args.caps.split(",") if c]
    rows = {"gnn": [], "hgb_features": [], "hgb_neighbours": [], "rank_mean": [], "rank_max": [],
            **{f"capped_{c:g}": [] for c in caps}, **{f"own_{c:g}": [] for c in caps},
            **{f"avg_{c:g}": [] for c in caps}}
    if not args.no_stack:
        rows.update({"stack": [], "stack_noagg": []})
    print("| campaign | fakes | " + " | ".join(rows) + " |")
    for code, campaign in enumerate(store.group_names):
        if int(((group == code) & (y_all == 1)).sum()) < MIN_POSITIVES:
            continue
        held = held_out_snapshot(snapshot, settings, str(campaign))
        result = train(held, settings)
        encoded = result.preprocessor.transform(held)
        z = predict_logits(load_model(result.model_config, result.state_dict), encoded, "cpu")
        account = held.data["account"]
        y = account.y.numpy()
        train_mask, val_mask = account.train_mask.numpy() & (y >= 0), account.val_mask.numpy()
        nbr = neighbour_features(held)[0]
        model_cfg, cfg = resolve_settings(settings, None)
        inputs = graph_inputs(encoded)
        train_rows = np.flatnonzero(train_mask)
        folds = campaign_folds(train_rows, y, group, cfg.seed)
        z_oof = z.copy()
        agg_full = score_aggregates(held, z)
        agg_oof = agg_full.copy()
        if len(folds) >= 2 and not args.no_stack:
            for fold in folds:
                keep = np.setdiff1d(train_rows, fold)
                _, zf, _ = fit_for_epochs(inputs, y, model_cfg, cfg, keep,
                                          max(result.best_epoch, 1), torch.device("cpu"),
                                          "account")
                zf = map_by_quantile(zf, z)
                z_oof[fold] = zf[fold]
                agg_oof[fold] = score_aggregates(held, zf)[fold]
        own = encoded.data["account"].x.float().numpy()
        scores = {"gnn": z, "hgb_features": fit_gradient_boosting(own, y, train_mask, cfg.seed),
                  "hgb_neighbours": fit_gradient_boosting(nbr, y, train_mask, cfg.seed)}
        for name, use_agg in (() if args.no_stack else (("stack", True), ("stack_noagg", False))):
            fit_x = np.column_stack([nbr, z_oof] + ([agg_oof] if use_agg else []))
            score_x = np.column_stack([nbr, z] + ([agg_full] if use_agg else []))
            trees = TreeEnsemble.fit(fit_x, y, train_mask, cfg.seed)
            scores[name] = trees.decision(score_x)
        candidates = ~(train_mask | val_mask)
        r_gnn, r_hgb = rankdata(z) / z.size, rankdata(scores["hgb_neighbours"]) / z.size
        scores["rank_mean"] = (r_gnn + r_hgb) / 2
        scores["rank_max"] = np.maximum(r_gnn, r_hgb) + 1e-6 * (r_gnn + r_hgb)
        mapped = map_by_quantile(scores["hgb_neighbours"], z)
        mapped_own = map_by_quantile(scores["hgb_features"], z)
        for c in caps:
            scores[f"capped_{c:g}"] = fuse_logits(z, mapped, max_lift=c)
        for c in caps:  # a second tree model on the account's own features, same cap
            scores[f"own_{c:g}"] = fuse_logits(z, np.maximum(mapped, mapped_own), max_lift=c)
            scores[f"avg_{c:g}"] = fuse_logits(z, (mapped + mapped_own) / 2, max_lift=c)
        positives = account.holdout_mask.numpy() & (y == 1)
        prevalence = float(result.threshold_info["prevalence"])
        cells = []
        for name, score in scores.items():
            value = recall_at_budget(score, positives, candidates, prevalence)["recall_at_budget"]
            rows[name].append(value)
            cells.append(f"{value:.3f}")
        print(f"| {campaign} | {int(positives.sum())} | " + " | ".join(cells) + " |",
              flush=True)
    print("| **mean** | | " + " | ".join(f"**{np.mean(v):.3f}**" for v in rows.values()) + " |")


if __name__ == "__main__":
    main()
