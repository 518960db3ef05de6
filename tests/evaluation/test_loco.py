"""Leave-one-campaign-out on a planted world: every campaign held out in turn, exact splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sybilgnn.config import load_settings
from sybilgnn.evaluation.loco import held_out_snapshot, leave_one_campaign_out
from sybilgnn.measures.population import population_metrics
from tests.synthetic import planted_snapshot


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _settings() -> object:
    return load_settings(None, ["train.epochs=8", "train.min_epochs=1", "train.device=cpu",
                                "train.bootstrap=50"], environ={})


def test_each_campaign_is_held_out_in_turn_against_test_period_legit_accounts() -> None:
    world = planted_snapshot(accounts=3000, fake_share=0.12, fleet_size=20, seed=5)
    settings = _settings()
    store = world.data["account"]
    y, group = store.y.numpy(), store.group.numpy()
    held = held_out_snapshot(world, settings, "campaign-1")
    masks = {m: held.data["account"][m].numpy() for m in ("train_mask", "val_mask", "test_mask",
                                                            "holdout_mask")}
    in_c1 = (group == 1) & (y >= 0)
    assert not (in_c1 & (masks["train_mask"] | masks["val_mask"] | masks["test_mask"])).any()
    assert ((masks["holdout_mask"] & (y == 1)) == (in_c1 & (y == 1))).all()
    assert ((masks["holdout_mask"] & (y == 0))
            == ((masks["test_mask"] | masks["val_mask"]) & (y == 0))).all()
    assert store.holdout_mask.numpy().tolist() != masks["holdout_mask"].tolist()  # shared graph,
    assert held.data["account"].x is store.x                                       # new masks

    result = leave_one_campaign_out(world, settings)
    assert sorted(result.by_model) == ["gnn", "hgb_features", "hgb_neighbours"]
    for per in result.by_model.values():
        assert sorted(per) == ["campaign-0", "campaign-1", "campaign-2"]
        assert per["campaign-1"]["n_positive"] == float((in_c1 & (y == 1)).sum())
    # the headline: the campaign's fakes within a queue of prevalence x the accounts the
    # model did not learn from (train and validation slices excluded)
    masks = {m: held.data["account"][m].numpy() for m in ("train_mask", "val_mask")}
    unseen = int((~(masks["train_mask"] | masks["val_mask"])).sum())
    c1 = result.by_model["gnn"]["campaign-1"]
    assert c1["budget"] == float(math.ceil(0.02 * unseen))
    assert c1["budget_positives"] == float((in_c1 & (y == 1)).sum())
    headline = [m["recall_at_budget"] for m in result.by_model["gnn"].values()]
    labelled = [m["recall_at_1pct_fpr"] for m in result.by_model["gnn"].values()]
    assert result.mean("gnn") == pytest.approx(float(np.mean(headline)))
    assert result.mean("gnn", "recall_at_1pct_fpr") == pytest.approx(float(np.mean(labelled)))
    assert not math.isnan(result.mean("gnn"))
    mean, lo, hi = result.interval("gnn")
    assert lo <= mean <= hi
    flat = result.flat()
    assert flat["loco_gnn_mean_recall_at_budget"] == pytest.approx(result.mean("gnn"))
    assert flat["loco_gnn_mean_recall_at_1pct_fpr"] == pytest.approx(float(np.mean(labelled)))
    assert set(flat) >= {f"loco_hgb_neighbours_campaign-{i}_recall_at_budget" for i in range(3)}
    table = result.table()
    assert f"**{result.mean('gnn'):.3f}** / {float(np.mean(labelled)):.3f}" in table
    assert "within a review queue as long as the fakes" in table
    # every model's holdout probabilities are kept, on exactly the holdout rows, and give
    # back the figure the table shows
    holdout = held.data["account"].holdout_mask.numpy()
    keys = np.asarray(world.id_maps["account"], dtype=object)[holdout]
    for model, per in result.holdout.items():
        scores = per["campaign-1"]
        assert scores.keys.tolist() == keys.tolist()
        assert scores.y.tolist() == y[holdout].tolist()
        again = population_metrics(scores.y, scores.probs, 0.5, prevalence=None, n_boot=0)
        assert again["recall_at_1pct_fpr"] == pytest.approx(
            result.by_model[model]["campaign-1"]["recall_at_1pct_fpr"])


def test_campaigns_with_too_few_labelled_fakes_are_not_measurable() -> None:
    small = planted_snapshot(accounts=300, fleet_size=5, seed=1)  # 4 fleets of 5 or 6 fakes
    result = leave_one_campaign_out(small, _settings())
    assert result.by_model == {}
    assert set(result.skipped) == {"campaign-0", "campaign-1", "campaign-2"}
    assert all(why.endswith("labelled fakes: not measurable (at least 10 needed)")
               for why in result.skipped.values())
    # the only campaign of a world: without it no fake is left to train on
    single = planted_snapshot(accounts=300, seed=1)
    alone = leave_one_campaign_out(single, _settings())
    assert alone.skipped["campaign-0"].startswith(
        "could not train without it: snapshot: the train split needs labelled fake")


def test_a_campaign_whose_absence_empties_the_train_slice_gets_a_stratified_split() -> None:
    world = planted_snapshot(accounts=3000, fake_share=0.12, fleet_size=20, seed=5)
    store = world.data["account"]
    y, group = store.y.numpy(), store.group.numpy()
    times = store.label_time.numpy().copy()
    later = (y == 1) & (group != 0)
    times[later] = times[y >= 0].max() + 1.0 + np.arange(int(later.sum()))  # labelled last
    store.label_time = torch.from_numpy(times)
    held = held_out_snapshot(world, _settings(), "campaign-0")
    masks = {m: held.data["account"][m].numpy() for m in ("train_mask", "val_mask",
                                                            "test_mask", "holdout_mask")}
    in_c0 = (group == 0) & (y >= 0)
    assert not (in_c0 & (masks["train_mask"] | masks["val_mask"] | masks["test_mask"])).any()
    others = (y >= 0) & ~in_c0
    for cls in (0, 1):
        rows = others & (y == cls)
        # 60 / 20 / 20 within each class, so both slices train and stop on fakes
        assert int((masks["train_mask"] & rows).sum()) == round(rows.sum() * 0.6)
        assert int((masks["val_mask"] & rows).sum()) == round(rows.sum() * 0.2)
    assert ((masks["holdout_mask"] & (y == 1)) == (in_c0 & (y == 1))).all()
    # the time split alone trains on no fake: every other fake is labelled after all
    # legitimate accounts, beyond the validation cutoff
    from sybilgnn.data.splits import make_splits

    settings = _settings()
    split_settings = settings.split.model_copy(update={"holdout_value": "campaign-0"})
    timed = make_splits(y.astype(np.int64), times, split_settings, group.astype(np.int64),
                        list(store.group_names))
    assert int((timed.train_mask & (y == 1) & ~in_c0).sum()) == 0
