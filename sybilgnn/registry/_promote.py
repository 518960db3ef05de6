"""The promotion gate: the challenger becomes champion only when it is better on the same data.

Both models are re-scored on one snapshot (the current export), each through its own saved
preprocessing, on the same rows: the labelled accounts of ``registry.promote_split`` whose
label arrived after the champion's training (the challenger scored through its time-split
run), so neither was fitted on them. ``registry.promote_metric`` is measured at the
population's prevalence with a 95% bootstrap interval for each model, and the challenger's
gain over the champion with a paired interval (both models on every resample, so what the
rows share cancels). Intervals decide, not points: a challenger whose paired gain's interval
lies above ``registry.promote_margin`` is promoted; one whose gain's interval lies below zero
is worse; a gain that spans zero keeps the champion, unless its labels are more than
``registry.refresh_after_days`` behind the newest and the challenger is not worse on the
point estimate (rule ``refresh``). Too few rows keep the
champion (``not measurable``). A champion that cannot be evaluated stops the gate with a
``GateError`` that says why: it is never a reason to promote. When the retrain measured the
challenger's recipe with every labelled campaign held out in turn, a promotion also needs
the champion's recipe, refitted the same way on the same snapshot, not to find unseen
campaigns better by more than ``registry.loco_tolerance`` (rule ``loco``). Every decision, with its rule
and both intervals, is written as tags on the versions involved, so the registry itself
tells why the champion is the champion.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NoReturn

import numpy as np

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError, SybilgnnError
from sybilgnn.registry._aliases import (PromotionDecision, move_champion, tag_versions,
                                        version_of, set_champion)
from sybilgnn.registry._lease import promotion_lease
from sybilgnn.registry._log import CHALLENGER, CHAMPION
from sybilgnn.registry._model_io import LoadedModel, ModelNotFoundError, load_registered_model
from sybilgnn.registry._tracking import client_for

__all__ = ["PromotionDecision", "GateError", "promote", "evaluate_on_snapshot", "set_champion"]

log = logging.getLogger(__name__)


class GateError(SybilgnnError):
    """The gate could not compare the two models; nothing was promoted."""


def gate_rows(snapshot: Snapshot, split: str, since: float | None = None) -> np.ndarray:
    """Labelled nodes (accounts) of ``split``, labelled after ``since`` (epoch seconds) when
    given."""
    store = snapshot.data[snapshot.labelled_type]
    mask_name = f"{split}_mask"
    if mask_name not in store:
        raise InputError(f"registry.promote_split: the snapshot has no {mask_name}")
    y = store.y.cpu().numpy()
    mask = store[mask_name].cpu().numpy().astype(bool) & (y >= 0)
    if since is not None and "label_time" in store:
        with np.errstate(invalid="ignore"):
            mask &= store.label_time.cpu().numpy().astype(np.float64) > since
    return mask


def evaluate_on_snapshot(model: LoadedModel, snapshot: Snapshot, split: str,
                         rows: np.ndarray | None = None, *, prevalence: float | None = None,
                         n_boot: int = 0, scores: np.ndarray | None = None
                         ) -> dict[str, float]:
    """The model's metrics on ``split`` of ``snapshot`` (labelled accounts only), or on
    ``rows`` when given; at ``prevalence`` with ``n_boot``-resample intervals when given
    (the resamples depend on the labels only, so two models on the same rows share them).
    ``scores``: the model's predictions on ``snapshot`` when the caller already has them."""
    from sybilgnn.training.metrics import evaluate

    store = snapshot.data[snapshot.labelled_type]
    y = store.y.cpu().numpy()
    mask = gate_rows(snapshot, split) if rows is None else rows
    if mask.sum() == 0 or len(np.unique(y[mask])) < 2:
        raise InputError(f"registry.promote_split={split!r}: the snapshot's {split} split needs "
                         "labelled accounts of both classes to compare models; label more "
                         "accounts or choose another split")
    if scores is None:
        scores = model.predict(snapshot)
    fleets = store.fleet.cpu().numpy()[mask] if "fleet" in store else None
    metrics = evaluate(y[mask], scores[mask], model.threshold, fleets=fleets,
                       prevalence=prevalence, n_boot=n_boot)
    return {k: float(v) for k, v in metrics.items()}


@dataclass(frozen=True)
class _Interval:
    value: float
    lo: float
    hi: float

    @classmethod
    def of(cls, metrics: dict[str, float], name: str) -> _Interval:
        value = metrics[name]
        return cls(value, metrics.get(f"{name}_lo", value), metrics.get(f"{name}_hi", value))

    @property
    def measurable(self) -> bool:
        return not any(math.isnan(v) for v in (self.value, self.lo, self.hi))

    def text(self) -> str:
        return f"{self.value:.4f} [{self.lo:.4f}, {self.hi:.4f}]"


def _days_behind(snapshot: Snapshot, labels_through: float | None) -> float | None:
    """Days between the champion's newest label and the snapshot's newest label."""
    from sybilgnn.training.inputs import labels_through as newest_label

    newest = newest_label(snapshot)
    if labels_through is None or newest is None:
        return None
    return (newest - labels_through) / 86_400


def _decide(chal: _Interval, champ: _Interval, gain: _Interval, margin: float,
            refresh_after_days: float | None, behind_days: float | None, champion: str
            ) -> tuple[bool, str, str]:
    """(promoted, rule, reason): the paired gain's interval, not points, decides; see the
    module docstring."""
    if not (chal.measurable and champ.measurable and gain.measurable):
        return False, "not measurable", (
            f"not measurable: too few labels on these rows (challenger {chal.text()}, "
            f"champion {champ.text()}); the champion stays until more labels arrive")
    paired = f"paired gain {gain.text()} on the same rows"
    if gain.lo > margin:
        return True, "interval", (f"better than champion v{champion} beyond the noise: "
                                  f"{paired}, above the margin {margin:g}")
    if (refresh_after_days is not None and behind_days is not None
            and behind_days > refresh_after_days and chal.value >= champ.value):
        return True, "refresh", (f"within the noise ({paired}), not worse on the point "
                                 f"estimate, and champion v{champion}'s labels are "
                                 f"{behind_days:.1f} days behind the newest "
                                 f"(> registry.refresh_after_days {refresh_after_days:g})")
    if gain.hi < 0:
        return False, "interval", f"worse than champion v{champion} beyond the noise: {paired}"
    if gain.lo > 0:
        return False, "interval", (f"better than champion v{champion} ({paired}) but not "
                                   f"beyond registry.promote_margin {margin:g}; the champion "
                                   "stays")
    return False, "interval", (f"within the noise of champion v{champion} ({paired} spans "
                               "zero); the champion stays")


def _loco_check(settings: Settings, snapshot: Snapshot, loco: Any, champ_model: LoadedModel,
                champion: str, rule: str, reason: str) -> tuple[bool, str, str, dict[str, Any]]:
    """Keep the champion when its recipe, refitted on ``snapshot`` with each labelled
    campaign held out in turn, finds unseen campaigns measurably better than the
    challenger's did: the challenger's interval (mean recall within the expected-fakes queue) lies below the
    champion's by more than ``registry.loco_tolerance``. Labels that arrived since the
    champion's training say how it does on the campaigns of today; this says how its
    recipe does on the campaigns of tomorrow."""
    from sybilgnn.evaluation.loco import leave_one_campaign_out

    tolerance = float(settings.registry.loco_tolerance or 0.0)
    chal_mean, chal_lo, chal_hi = loco.interval("gnn")
    recipe = champ_model.recipe()
    if math.isnan(chal_mean):
        return True, rule, reason, {"promotion.loco": "not measurable (no campaign measured)"}
    if recipe is None:
        return True, rule, reason, {"promotion.loco": f"champion v{champion} carries no "
                                                      "training recipe; not refitted"}
    champ_mean, champ_lo, champ_hi = leave_one_campaign_out(
        snapshot, settings, params=recipe, with_baselines=False,
        prevalence=getattr(loco, "prevalence", None)).interval("gnn")
    chal = _Interval(chal_mean, chal_lo, chal_hi)
    champ = _Interval(champ_mean, champ_lo, champ_hi)
    tags = {"promotion.loco_challenger": chal.text(), "promotion.loco_champion": champ.text()}
    if champ.measurable and chal.hi + tolerance < champ.lo:
        return False, "loco", (
            f"{reason}, but on campaigns held out in turn its recipe's interval "
            f"{chal.text()} (mean recall within the expected-fakes queue) lies below champion v{champion}'s recipe "
            f"refitted on the same snapshot, {champ.text()} (registry.loco_tolerance "
            f"{tolerance:g}); the champion stays"), tags
    return True, rule, (f"{reason}; held-out campaigns: {chal.text()} against "
                        f"{champ.text()} for the champion's recipe"), tags


def _when(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat(timespec="seconds")


def _champion_failed(settings: Settings, snapshot: Snapshot, champion: str, challenger: str,
                     now: str, exc: Exception) -> NoReturn:
    tag_versions(settings, {challenger: {
        "promotion.decision": "error", "promotion.at": now,
        "promotion.reason": f"champion v{champion} could not be evaluated: {exc}"[:4000]}})
    raise GateError(
        f"promotion gate: champion v{champion} could not be evaluated on snapshot "
        f"{snapshot.content_hash[:12]}, so challenger v{challenger} was not compared and "
        f"nothing was promoted. Cause: {exc}. Fix the cause, or promote explicitly "
        f"(`sybilgnn promote --version {challenger}`) if the champion is known broken.")


@dataclass(frozen=True)
class _Contest:
    """The two versions the gate compares, and when (ISO time, for the tags)."""

    challenger: str
    champion: str
    now: str


def promote(settings: Settings, snapshot: Snapshot | None = None, *,
            version: str | int | None = None, loco: Any = None,
            challenger: str | int | None = None) -> PromotionDecision:
    """Run the gate for the challenger, or move champion to ``version`` explicitly.

    ``challenger`` names the version to judge (a retrain passes the one it registered:
    another retrain may have moved the ``challenger`` alias since); by default the alias.
    ``loco`` (the retrain's ``LocoResult`` of the challenger's recipe on ``snapshot``) arms
    the leave-one-campaign-out check (``registry.loco_tolerance``). The champion is read
    under the registry's promotion lease, so two promotions never judge against the same
    champion and both move it."""
    reg = settings.registry
    if version is not None:
        return set_champion(settings, version, reason=f"explicit promote --version {version}")
    if challenger is None:
        challenger = version_of(settings, CHALLENGER)
        if challenger is None:
            raise ModelNotFoundError(f"registered model {reg.model_name!r} has no "
                                     f"{CHALLENGER!r} alias; train one first (`sybilgnn train`)")
    challenger = str(challenger)
    with promotion_lease(settings):
        champion = version_of(settings, CHAMPION)
        now = datetime.now(timezone.utc).isoformat()
        if champion is None:
            decision = move_champion(settings, challenger,
                                      reason="first model: no champion yet")
            return PromotionDecision(True, decision.reason, challenger, challenger, None,
                                     reg.promote_metric, reg.promote_split)
        if champion == challenger:
            return PromotionDecision(False, "challenger already is the champion", champion,
                                     challenger, champion, reg.promote_metric,
                                     reg.promote_split)
        if snapshot is None:
            raise InputError("the promotion gate needs an evaluation snapshot; pass one or "
                             "run `sybilgnn promote` with a reachable Neo4j")
        return _gate(settings, snapshot, _Contest(challenger, champion, now), loco)


def _gate(settings: Settings, snapshot: Snapshot, contest: _Contest, loco: Any
          ) -> PromotionDecision:
    """Both models on the same fresh rows of ``snapshot``; the intervals (and ``loco``)
    decide, and the decision is tagged on the versions."""
    reg = settings.registry
    challenger_model = load_registered_model(settings, contest.challenger)
    champ_model = _loaded_champion(settings, snapshot, contest)
    # Only labels neither model was fitted on: the champion's weights saw every label up
    # to its training, and a refitted challenger is judged by its time-split run.
    rows = gate_rows(snapshot, reg.promote_split, champ_model.labels_through)
    too_few = _too_few_rows(settings, snapshot, rows, champ_model, contest)
    if too_few is not None:
        return too_few
    prevalence = settings.train.prevalence
    if prevalence is None:
        prevalence = challenger_model.prevalence or champ_model.prevalence
    chal, champ, gain = _intervals(settings, snapshot, rows, challenger_model, champ_model,
                                   contest, prevalence)
    behind_days = _days_behind(snapshot, champ_model.labels_through)
    promoted, rule, reason = _decide(chal, champ, gain, reg.promote_margin,
                                     reg.refresh_after_days, behind_days, contest.champion)
    loco_tags: dict[str, Any] = {}
    if promoted and loco is not None and reg.loco_tolerance is not None:
        promoted, rule, reason, loco_tags = _loco_check(settings, snapshot, loco, champ_model,
                                                        contest.champion, rule, reason)
    record = {"promotion.decision": "promoted" if promoted else "rejected",
              "promotion.reason": reason, "promotion.rule": rule, "promotion.at": contest.now,
              "promotion.metric": f"{reg.promote_split}_{reg.promote_metric}",
              "promotion.prevalence": "" if prevalence is None else f"{prevalence:.6g}",
              "promotion.snapshot_hash": snapshot.content_hash,
              "promotion.challenger_score": f"{chal.value:.6g}",
              "promotion.challenger_interval": chal.text(),
              "promotion.champion_score": f"{champ.value:.6g}",
              "promotion.champion_interval": champ.text(),
              "promotion.paired_gain": gain.text(),
              "promotion.compared_with": contest.champion,
              "promotion.rows": int(rows.sum()), **loco_tags}
    _record_decision(settings, contest, promoted, record)
    return PromotionDecision(promoted, reason,
                             contest.challenger if promoted else contest.champion,
                             contest.challenger, contest.champion, reg.promote_metric,
                             reg.promote_split, chal.value, champ.value)


def _loaded_champion(settings: Settings, snapshot: Snapshot, contest: _Contest) -> LoadedModel:
    """The champion, shown able to read ``snapshot``; else the gate stops (``GateError``)."""
    try:
        champ_model = load_registered_model(settings, contest.champion)
        champ_model.encode(snapshot)  # fails here, clearly, if it cannot read the graph
    except SybilgnnError as exc:
        _champion_failed(settings, snapshot, contest.champion, contest.challenger, contest.now,
                         exc)
    return champ_model


def _too_few_rows(settings: Settings, snapshot: Snapshot, rows: np.ndarray,
                  champ_model: LoadedModel, contest: _Contest) -> PromotionDecision | None:
    """The rejection (tagged on the challenger) when the gate's rows lack a class; None
    when both classes are there to compare on."""
    reg = settings.registry
    y = snapshot.data[snapshot.labelled_type].y.cpu().numpy()[rows]
    if rows.sum() > 0 and len(np.unique(y)) >= 2:
        return None
    since = ("" if champ_model.labels_through is None else " labelled after champion "
             f"v{contest.champion}'s training ({_when(champ_model.labels_through)})")
    reason = (f"not measurable: the {reg.promote_split} split has {int(rows.sum())} labels "
              f"({int(y.sum())} fake){since}; the champion stays until newer labels of "
              "both classes arrive")
    tag_versions(settings, {contest.challenger: {
        "promotion.decision": "rejected", "promotion.reason": reason,
        "promotion.at": contest.now, "promotion.compared_with": contest.champion,
        "promotion.rows": int(rows.sum())}})
    return PromotionDecision(False, reason, contest.champion, contest.challenger,
                             contest.champion, reg.promote_metric, reg.promote_split)


def _intervals(settings: Settings, snapshot: Snapshot, rows: np.ndarray,
               challenger_model: LoadedModel, champ_model: LoadedModel, contest: _Contest,
               prevalence: float | None) -> tuple[_Interval, _Interval, _Interval]:
    """(challenger, champion, challenger's paired gain over the champion) intervals of
    ``registry.promote_metric`` on the same rows and bootstrap resamples; a champion that
    fails here stops the gate (``GateError``)."""
    from sybilgnn.measures.population import INTERVAL_METRICS, paired_metric_gain

    reg, metric = settings.registry, settings.registry.promote_metric
    if metric not in INTERVAL_METRICS:
        raise InputError(f"registry.promote_metric {metric!r} is not a metric the gate can "
                         f"compare; choose one of {', '.join(INTERVAL_METRICS)}")
    n_boot = max(settings.train.bootstrap, 50)
    selection = challenger_model.selection_model()
    chal_scores = selection.predict(snapshot)
    challenger_metrics = evaluate_on_snapshot(selection, snapshot, reg.promote_split, rows,
                                              prevalence=prevalence, n_boot=n_boot,
                                              scores=chal_scores)
    try:
        champ_scores = champ_model.predict(snapshot)
        champ_metrics = evaluate_on_snapshot(champ_model, snapshot, reg.promote_split, rows,
                                             prevalence=prevalence, n_boot=n_boot,
                                             scores=champ_scores)
    except SybilgnnError as exc:
        _champion_failed(settings, snapshot, contest.champion, contest.challenger, contest.now,
                         exc)
    y = snapshot.data[snapshot.labelled_type].y.cpu().numpy()
    gain = paired_metric_gain(y[rows], chal_scores[rows], selection.threshold,
                              champ_scores[rows], champ_model.threshold, metric,
                              prevalence=prevalence, n_boot=n_boot)
    return (_Interval.of(challenger_metrics, metric), _Interval.of(champ_metrics, metric),
            _Interval(*gain))


def _record_decision(settings: Settings, contest: _Contest, promoted: bool,
                     record: dict[str, Any]) -> None:
    """Tag the decision on the challenger; a promotion also moves the alias and tags the
    replaced champion."""
    tags: dict[str, dict[str, Any]] = {contest.challenger: record}
    if promoted:
        client, _ = client_for(settings)
        client.set_registered_model_alias(settings.registry.model_name, CHAMPION,
                                          contest.challenger)
        tags[contest.champion] = {"promotion.replaced_by": contest.challenger,
                                  "promotion.replaced_at": contest.now}
    tag_versions(settings, tags)
