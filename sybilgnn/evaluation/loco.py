"""Leave-one-campaign-out: how the model does on a campaign it never saw, for every campaign.

One held-out campaign (the median-sized one of the time split) is one draw: a model can
look good or bad on it by chance. Here every labelled campaign (the groups of
``split.holdout_property``) is held out in turn: the time split is rebuilt without that
campaign's labels, the GNN and both gradient-boosting baselines are trained on it with the
same settings, and each is measured on the campaign's fakes.

Two figures per campaign. The headline, ``recall_at_budget``, is the share of the
campaign's labelled fakes that rank within a review queue as long as the fakes the
population is expected to hold (``prevalence`` x the accounts the model did not learn
from); it uses no labelled legitimate account, so fakes the platform mislabelled as
legitimate cannot count against a model that finds them. ``recall_at_1pct_fpr`` is the
same campaign against the labelled legitimate accounts of the validation and test periods,
as labelled; it is shown beside the headline because a mislabelled fake among ~150 labels
fills its whole 1% budget. A campaign with fewer than ``MIN_POSITIVES`` labelled fakes is
reported as not measurable and left out of the mean.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sybilgnn.config import Settings, SplitSettings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.data.splits import make_splits
from sybilgnn.errors import SybilgnnError
from sybilgnn.measures.population import MIN_POSITIVES

__all__ = ["HoldoutScores", "LocoResult", "leave_one_campaign_out", "held_out_snapshot"]

FIGURE = "recall_at_budget"
MIN_SLICE_FAKES = 5  # fewer fakes (or legitimate accounts) in train or validation: re-split
AS_LABELLED = "recall_at_1pct_fpr"
FIGURE_TEXT = "mean recall within the expected-fakes queue"


@dataclass(frozen=True)
class HoldoutScores:
    """One model's calibrated probabilities on one held-out campaign's evaluation rows (the
    campaign's labelled fakes and the later periods' labelled legitimate accounts): what
    an evaluation with better labels (a simulator's truth) re-measures without retraining."""

    keys: np.ndarray    # the accounts' ids (labelled node type's key)
    y: np.ndarray       # labels as the platform gave them
    probs: np.ndarray


@dataclass
class LocoResult:
    """model -> campaign -> holdout metrics, and the mean of ``FIGURE`` per model."""

    by_model: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # campaign -> why
    prevalence: float | None = None  # the queue's length was this share of unseen accounts
    holdout: dict[str, dict[str, HoldoutScores]] = field(default_factory=dict)

    def mean(self, model: str, figure: str = FIGURE) -> float:
        values = [m.get(figure, math.nan) for m in self.by_model.get(model, {}).values()]
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    def interval(self, model: str, figure: str = FIGURE) -> tuple[float, float, float]:
        """(mean, lo, hi) of ``figure`` over the measured campaigns; lo and hi are the means
        of the campaigns' 95% interval ends (conservative: wider than the mean's own)."""
        per = [m for m in self.by_model.get(model, {}).values()
               if not math.isnan(m.get(figure, math.nan))]
        if not per:
            return math.nan, math.nan, math.nan
        return (float(np.mean([m[figure] for m in per])),
                float(np.mean([m.get(f"{figure}_lo", m[figure]) for m in per])),
                float(np.mean([m.get(f"{figure}_hi", m[figure]) for m in per])))

    def table(self) -> str:
        """Markdown: one row per campaign, one column per model (the headline, then as
        labelled), the means last."""
        models = list(self.by_model)
        campaigns = sorted({c for per in self.by_model.values() for c in per})
        lines = ["| held-out campaign | fakes | " + " | ".join(models) + " |",
                 "|---|---|" + "---|" * len(models)]
        for campaign in campaigns:
            first = self.by_model[models[0]].get(campaign, {})
            cells = [_cell(self.by_model[m].get(campaign, {})) for m in models]
            lines.append(f"| {campaign} | {int(first.get('n_positive', 0))} | "
                         + " | ".join(cells) + " |")
        lines.append("| **mean** | | " + " | ".join(
            f"**{_number(self.mean(m))}** / {_number(self.mean(m, AS_LABELLED))}"
            for m in models) + " |")
        note = "".join(f"\n{c}: {why}" for c, why in sorted(self.skipped.items()))
        return ("\n".join(lines) + "\n\nEach cell: recall of the campaign's labelled fakes, "
                "when it was left out of training, within a review queue as long as the fakes "
                "the population is expected to hold (prevalence x accounts the model did not "
                "learn from) [95% bootstrap interval]; after the slash, recall at 1% "
                "false-positive rate against the labelled legitimate accounts of the "
                "validation and test periods as labelled (mislabelled fakes among them count "
                "as false positives)." + note + "\n")

    def flat(self) -> dict[str, float]:
        """MLflow metrics: ``loco_<model>_<campaign>_<figure>`` and ``loco_<model>_mean``."""
        out: dict[str, float] = {}
        for model, per in self.by_model.items():
            for figure in (FIGURE, AS_LABELLED):
                for campaign, metrics in per.items():
                    value = metrics.get(figure, math.nan)
                    if not math.isnan(value):
                        out[f"loco_{model}_{campaign}_{figure}"] = float(value)
                if not math.isnan(self.mean(model, figure)):
                    out[f"loco_{model}_mean_{figure}"] = self.mean(model, figure)
        return out


def _number(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def _cell(metrics: dict[str, float]) -> str:
    value = metrics.get(FIGURE, math.nan)
    head = ("not measurable" if math.isnan(value) else
            f"{value:.3f} [{metrics.get(FIGURE + '_lo', value):.3f}, "
            f"{metrics.get(FIGURE + '_hi', value):.3f}]")
    return f"{head} / {_number(metrics.get(AS_LABELLED, math.nan))}"


def held_out_snapshot(snapshot: Snapshot, settings: Settings, campaign: str) -> Snapshot:
    """The snapshot with its split rebuilt so that ``campaign`` is the held-out group (its
    labels in no training slice) and the holdout scored among the validation and test
    periods' legitimate accounts; the graph and features are shared, not copied.

    The time split is kept when, without the campaign, its train and validation slices
    each hold ``MIN_SLICE_FAKES`` fakes. Campaigns are labelled in turn, so holding out the
    oldest can leave the train slice with no fake at all (and the newest, validation with
    one, on which early stopping and calibration mean nothing); then the other labels are
    split at random within each class (``stratified_slices``), which for a campaign left out
    whole leaks nothing about it."""
    labelled = snapshot.labelled_type
    store = snapshot.data[labelled]
    y = store.y.cpu().numpy().astype(np.int64)
    group = store.group.cpu().numpy().astype(np.int64)
    names = list(store.group_names)
    split_settings = SplitSettings.model_validate(
        {**settings.split.model_dump(), "holdout_value": campaign})
    split = make_splits(y, store.label_time.cpu().numpy().astype(np.float64), split_settings,
                        group, names)
    in_campaign = (group == names.index(campaign)) & (y >= 0)
    masks = {name: getattr(split, name) & ~in_campaign
             for name in ("train_mask", "val_mask", "test_mask")}
    if any(int((masks[m] & (y == cls)).sum()) < MIN_SLICE_FAKES
           for m in ("train_mask", "val_mask") for cls in (0, 1)):
        masks = stratified_slices(y, (y >= 0) & ~in_campaign, settings.train.seed)
    out = copy.copy(snapshot)
    out.data = copy.copy(snapshot.data)
    held = out.data[labelled]
    for name, mask in masks.items():
        held[name] = torch.from_numpy(mask)
    legit = y == 0
    held.holdout_mask = torch.from_numpy((in_campaign & (y == 1))
                                         | ((masks["val_mask"] | masks["test_mask"]) & legit))
    return out


def stratified_slices(y: np.ndarray, eligible: np.ndarray, seed: int,
                      shares: tuple[float, float] = (0.6, 0.2)) -> dict[str, np.ndarray]:
    """Train / validation / test masks over ``eligible`` rows, drawn at random within each
    class (seeded), in ``shares`` (the rest is test)."""
    rng = np.random.default_rng(seed)
    masks = {name: np.zeros(len(y), dtype=bool) for name in ("train_mask", "val_mask", "test_mask")}
    for cls in (0, 1):
        rows = rng.permutation(np.flatnonzero(eligible & (y == cls)))
        cut1 = int(round(rows.size * shares[0]))
        cut2 = cut1 + int(round(rows.size * shares[1]))
        masks["train_mask"][rows[:cut1]] = True
        masks["val_mask"][rows[cut1:cut2]] = True
        masks["test_mask"][rows[cut2:]] = True
    return masks


def leave_one_campaign_out(snapshot: Snapshot, settings: Settings, *,
                           params: dict[str, Any] | None = None, with_baselines: bool = True,
                           prevalence: float | None = None) -> LocoResult:
    """Train the GNN (and the baselines) once per labelled campaign with it held out."""
    from sybilgnn.training import train
    from sybilgnn.training.baselines import run_baselines
    from sybilgnn.training.predict import predict

    result = LocoResult(prevalence=prevalence)
    store = snapshot.data[snapshot.labelled_type]
    if "group" not in store or not list(store.get("group_names", [])):
        result.skipped["*"] = "the snapshot has no campaign groups (split.holdout_property)"
        return result
    if prevalence is not None:  # the GNN's queue the same length as the baselines'
        settings = settings.model_copy(update={"train": settings.train.model_copy(
            update={"prevalence": prevalence, "prevalence_from_audit": False})})
    y = store.y.cpu().numpy()
    group = store.group.cpu().numpy()
    for code, campaign in enumerate(store.group_names):
        fakes = int(((group == code) & (y == 1)).sum())
        if fakes < MIN_POSITIVES:
            result.skipped[str(campaign)] = (f"{fakes} labelled fakes: not measurable "
                                             f"(at least {MIN_POSITIVES} needed)")
            continue
        held = held_out_snapshot(snapshot, settings, str(campaign))
        try:
            gnn = train(held, settings, params=params)
        except SybilgnnError as exc:  # e.g. no fakes left in a training slice
            result.skipped[str(campaign)] = f"could not train without it: {exc}"
            continue
        result.by_model.setdefault("gnn", {})[str(campaign)] = gnn.metrics.get("holdout", {})
        probs = {"gnn": predict(gnn, held)}
        if with_baselines:
            rate = prevalence if prevalence is not None else gnn.threshold_info.get("prevalence")
            for name, per_split in run_baselines(held, settings, prevalence=rate,
                                                 keep_probs=probs).items():
                result.by_model.setdefault(name, {})[str(campaign)] = per_split.get("holdout", {})
        rows = held.data[held.labelled_type].holdout_mask.cpu().numpy()
        keys = np.asarray(held.id_maps[held.labelled_type], dtype=object)[rows]
        for name, p in probs.items():
            result.holdout.setdefault(name, {})[str(campaign)] = HoldoutScores(
                keys, y[rows].astype(np.int64), np.asarray(p, dtype=np.float64)[rows])
    return result
