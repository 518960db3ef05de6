"""How many epochs pruning saved, computed from the study's own trial histories."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["PruningSummary", "summarize_pruning", "epochs_of"]


@dataclass(frozen=True)
class PruningSummary:
    trials: int              # finished trials (complete + pruned)
    pruned: int
    max_epochs: int          # per-trial budget
    epochs_run: int          # epochs actually trained, all finished trials
    epochs_budget: int       # trials * max_epochs: the cost with neither pruning nor early stop
    epochs_saved_by_pruning: int   # sum over pruned trials of (max_epochs - epochs run)
    epochs_saved_total: int        # budget - run (pruning + early stopping)

    @property
    def saved_fraction(self) -> float:
        return self.epochs_saved_total / self.epochs_budget if self.epochs_budget else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "saved_fraction": round(self.saved_fraction, 4)}

    def describe(self) -> str:
        return (f"{self.trials} trials ({self.pruned} pruned) trained {self.epochs_run} epochs of a "
                f"{self.epochs_budget}-epoch budget ({self.trials} x {self.max_epochs}): pruning "
                f"saved {self.epochs_saved_by_pruning}, pruning + early stopping "
                f"{self.epochs_saved_total} ({self.saved_fraction:.0%})")


def epochs_of(trial: FrozenTrial) -> int:
    """Epochs a trial trained: recorded by the objective, else its reported steps."""
    recorded = trial.user_attrs.get("epochs_run")
    if recorded is not None:
        return int(recorded)
    return len(trial.intermediate_values)


def summarize_pruning(study: optuna.Study, max_epochs: int) -> PruningSummary:
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    pruned = [t for t in finished if t.state == TrialState.PRUNED]
    run = sum(epochs_of(t) for t in finished)
    budget = len(finished) * max_epochs
    return PruningSummary(
        trials=len(finished),
        pruned=len(pruned),
        max_epochs=max_epochs,
        epochs_run=run,
        epochs_budget=budget,
        epochs_saved_by_pruning=sum(max(0, max_epochs - epochs_of(t)) for t in pruned),
        epochs_saved_total=budget - run,
    )
