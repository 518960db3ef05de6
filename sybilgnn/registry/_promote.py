"""The promotion gate: the challenger becomes champion only when it is better on the same data.

Both models are re-scored on one snapshot (the current export), each through its own saved
preprocessing, and compared on ``registry.promote_metric`` over the same rows of
``registry.promote_split``; the challenger must beat the champion by more than
``registry.promote_margin``. A champion that cannot be evaluated stops the gate with a
``GateError`` that says why: it is never a reason to promote. Every decision is written as
tags on the versions involved, so the registry itself tells why the champion is the champion.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NoReturn

import numpy as np

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import ACCOUNT, Snapshot
from sybilgnn.errors import InputError, SybilgnnError
from sybilgnn.registry._log import CHALLENGER, CHAMPION
from sybilgnn.registry._model_io import LoadedModel, ModelNotFoundError, load_registered_model, \
    resolve_version
from sybilgnn.registry._tracking import client_for

__all__ = ["PromotionDecision", "GateError", "promote", "evaluate_on_snapshot", "set_champion"]

log = logging.getLogger(__name__)


class GateError(SybilgnnError):
    """The gate could not compare the two models; nothing was promoted."""


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    champion_version: str | None      # champion after the decision
    challenger_version: str | None
    previous_champion: str | None
    metric: str
    split: str
    challenger_score: float | None = None
    champion_score: float | None = None

    def describe(self) -> str:
        scores = ""
        if self.challenger_score is not None:
            champ = "n/a" if self.champion_score is None else f"{self.champion_score:.4f}"
            scores = (f" ({self.split} {self.metric}: challenger {self.challenger_score:.4f}, "
                      f"champion {champ})")
        verdict = "promoted" if self.promoted else "not promoted"
        return f"v{self.challenger_version} {verdict}: {self.reason}{scores}"


def gate_rows(snapshot: Snapshot, split: str, since: float | None = None) -> np.ndarray:
    """Labelled accounts of ``split``, labelled after ``since`` (epoch seconds) when given."""
    store = snapshot.data[ACCOUNT]
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
                         rows: np.ndarray | None = None) -> dict[str, float]:
    """The model's metrics on ``split`` of ``snapshot`` (labelled accounts only), or on
    ``rows`` when given."""
    from sybilgnn.training.metrics import evaluate

    store = snapshot.data[ACCOUNT]
    y = store.y.cpu().numpy()
    mask = gate_rows(snapshot, split) if rows is None else rows
    if mask.sum() == 0 or len(np.unique(y[mask])) < 2:
        raise InputError(f"registry.promote_split={split!r}: the snapshot's {split} split needs "
                         "labelled accounts of both classes to compare models; label more "
                         "accounts or choose another split")
    scores = model.predict(snapshot)
    fleets = store.fleet.cpu().numpy()[mask] if "fleet" in store else None
    metrics = evaluate(y[mask], scores[mask], model.threshold, fleets=fleets)
    return {k: float(v) for k, v in metrics.items()}


def _when(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat(timespec="seconds")


def _champion_failed(settings: Settings, snapshot: Snapshot, champion: str, challenger: str,
                     now: str, exc: Exception) -> NoReturn:
    _tag_versions(settings, {challenger: {
        "promotion.decision": "error", "promotion.at": now,
        "promotion.reason": f"champion v{champion} could not be evaluated: {exc}"[:4000]}})
    raise GateError(
        f"promotion gate: champion v{champion} could not be evaluated on snapshot "
        f"{snapshot.content_hash[:12]}, so challenger v{challenger} was not compared and "
        f"nothing was promoted. Cause: {exc}. Fix the cause, or promote explicitly "
        f"(`sybilgnn promote --version {challenger}`) if the champion is known broken.")


def _tag_versions(settings: Settings, tags_by_version: dict[str, dict[str, Any]]) -> None:
    client, _ = client_for(settings)
    name = settings.registry.model_name
    for version, tags in tags_by_version.items():
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, str(value))


def _version_of(settings: Settings, alias: str) -> str | None:
    try:
        return str(resolve_version(settings, alias).version)
    except ModelNotFoundError:
        return None


def set_champion(settings: Settings, version: str | int, *, reason: str) -> PromotionDecision:
    """Point ``champion`` at ``version`` without a comparison: explicit rollback / roll-forward."""
    target = str(resolve_version(settings, version).version)
    previous = _version_of(settings, CHAMPION)
    client, _ = client_for(settings)
    client.set_registered_model_alias(settings.registry.model_name, CHAMPION, target)
    now = datetime.now(timezone.utc).isoformat()
    tags = {target: {"promotion.decision": "manual", "promotion.reason": reason,
                     "promotion.at": now, "promotion.previous_champion": previous or ""}}
    if previous and previous != target:
        tags[previous] = {"promotion.replaced_by": target, "promotion.replaced_at": now}
    _tag_versions(settings, tags)
    return PromotionDecision(True, reason, target, target, previous,
                             settings.registry.promote_metric, settings.registry.promote_split)


def promote(settings: Settings, snapshot: Snapshot | None = None, *,
            version: str | int | None = None) -> PromotionDecision:
    """Run the gate for the current challenger, or move champion to ``version`` explicitly."""
    reg = settings.registry
    if version is not None:
        return set_champion(settings, version, reason=f"explicit promote --version {version}")
    challenger = _version_of(settings, CHALLENGER)
    if challenger is None:
        raise ModelNotFoundError(f"registered model {reg.model_name!r} has no {CHALLENGER!r} "
                                 "alias; train one first (`sybilgnn train`)")
    champion = _version_of(settings, CHAMPION)
    now = datetime.now(timezone.utc).isoformat()
    if champion is None:
        decision = set_champion(settings, challenger, reason="first model: no champion yet")
        return PromotionDecision(True, decision.reason, challenger, challenger, None,
                                 reg.promote_metric, reg.promote_split)
    if champion == challenger:
        return PromotionDecision(False, "challenger already is the champion", champion,
                                 challenger, champion, reg.promote_metric, reg.promote_split)
    if snapshot is None:
        raise InputError("the promotion gate needs an evaluation snapshot; pass one or run "
                         "`sybilgnn promote` with a reachable Neo4j")
    challenger_model = load_registered_model(settings, challenger)
    try:
        champ_model = load_registered_model(settings, champion)
        champ_model.encode(snapshot)  # fails here, clearly, if it cannot read the graph
    except SybilgnnError as exc:
        _champion_failed(settings, snapshot, champion, challenger, now, exc)
    # Only labels neither model was fitted on: the champion's weights saw every label up
    # to its training, and a refitted challenger is judged by its time-split run.
    rows = gate_rows(snapshot, reg.promote_split, champ_model.labels_through)
    y = snapshot.data[ACCOUNT].y.cpu().numpy()[rows]
    if rows.sum() == 0 or len(np.unique(y)) < 2:
        since = ("" if champ_model.labels_through is None else " labelled after champion "
                 f"v{champion}'s training ({_when(champ_model.labels_through)})")
        reason = (f"not measurable: the {reg.promote_split} split has {int(rows.sum())} labels "
                  f"({int(y.sum())} fake){since}; the champion stays until newer labels of "
                  "both classes arrive")
        _tag_versions(settings, {challenger: {"promotion.decision": "rejected",
                                              "promotion.reason": reason, "promotion.at": now,
                                              "promotion.compared_with": champion,
                                              "promotion.rows": int(rows.sum())}})
        return PromotionDecision(False, reason, champion, challenger, champion,
                                 reg.promote_metric, reg.promote_split)
    challenger_metrics = evaluate_on_snapshot(challenger_model.selection_model(), snapshot,
                                              reg.promote_split, rows)
    if reg.promote_metric not in challenger_metrics:
        raise InputError(f"registry.promote_metric {reg.promote_metric!r} is not a metric; "
                         f"choose one of {', '.join(sorted(challenger_metrics))}")
    chal_score = challenger_metrics[reg.promote_metric]
    try:
        champ_score = evaluate_on_snapshot(champ_model, snapshot, reg.promote_split,
                                           rows)[reg.promote_metric]
    except SybilgnnError as exc:
        _champion_failed(settings, snapshot, champion, challenger, now, exc)
    if math.isnan(champ_score) or math.isnan(chal_score):
        raise GateError(
            f"promotion gate: {reg.promote_split} {reg.promote_metric} is undefined "
            f"(challenger {chal_score}, champion {champ_score}); nothing was promoted; "
            "label more accounts or choose another registry.promote_split")
    if chal_score > champ_score + reg.promote_margin:
        promoted, reason = True, f"beats the champion by more than the margin {reg.promote_margin}"
    else:
        promoted, reason = False, (f"does not beat champion v{champion} by more than the margin "
                                   f"{reg.promote_margin}")
    record = {"promotion.decision": "promoted" if promoted else "rejected",
              "promotion.reason": reason, "promotion.at": now,
              "promotion.metric": f"{reg.promote_split}_{reg.promote_metric}",
              "promotion.snapshot_hash": snapshot.content_hash,
              "promotion.challenger_score": f"{chal_score:.6g}",
              "promotion.champion_score": f"{champ_score:.6g}",
              "promotion.compared_with": champion,
              "promotion.rows": int(rows.sum())}
    tags: dict[str, dict[str, Any]] = {challenger: record}
    if promoted:
        client, _ = client_for(settings)
        client.set_registered_model_alias(reg.model_name, CHAMPION, challenger)
        tags[champion] = {"promotion.replaced_by": challenger, "promotion.replaced_at": now}
    _tag_versions(settings, tags)
    return PromotionDecision(promoted, reason, challenger if promoted else champion, challenger,
                             champion, reg.promote_metric, reg.promote_split, chal_score,
                             champ_score)
