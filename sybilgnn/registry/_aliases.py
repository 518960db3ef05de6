"""The registry's aliases and version tags: what a promotion decided and how it is recorded.

``champion`` moves only here: through the gate (``_promote``) or explicitly (``set_champion``),
both under the registry's promotion lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sybilgnn.config import Settings
from sybilgnn.registry._lease import promotion_lease
from sybilgnn.registry._log import CHAMPION
from sybilgnn.registry._model_io import ModelNotFoundError, resolve_version
from sybilgnn.registry._tracking import client_for

__all__ = ["PromotionDecision", "move_champion", "set_champion", "tag_versions", "version_of"]


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



def tag_versions(settings: Settings, tags_by_version: dict[str, dict[str, Any]]) -> None:
    client, _ = client_for(settings)
    name = settings.registry.model_name
    for version, tags in tags_by_version.items():
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, str(value))


def version_of(settings: Settings, alias: str) -> str | None:
    try:
        return str(resolve_version(settings, alias).version)
    except ModelNotFoundError:
        return None


def set_champion(settings: Settings, version: str | int, *, reason: str) -> PromotionDecision:
    """Point ``champion`` at ``version`` without a comparison: explicit rollback / roll-forward."""
    with promotion_lease(settings):
        return move_champion(settings, version, reason=reason)


def move_champion(settings: Settings, version: str | int, *, reason: str) -> PromotionDecision:
    """``set_champion`` for a caller that holds the promotion lease."""
    target = str(resolve_version(settings, version).version)
    previous = version_of(settings, CHAMPION)
    client, _ = client_for(settings)
    client.set_registered_model_alias(settings.registry.model_name, CHAMPION, target)
    now = datetime.now(timezone.utc).isoformat()
    tags = {target: {"promotion.decision": "manual", "promotion.reason": reason,
                     "promotion.at": now, "promotion.previous_champion": previous or ""}}
    if previous and previous != target:
        tags[previous] = {"promotion.replaced_by": target, "promotion.replaced_at": now}
    tag_versions(settings, tags)
    return PromotionDecision(True, reason, target, target, previous,
                             settings.registry.promote_metric, settings.registry.promote_split)
