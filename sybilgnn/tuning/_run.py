"""Run (or join, or resume) the Optuna study over one snapshot.

Each trial trains with the sampled parameters through ``sybilgnn.training.train``, which
reports validation AUPRC per epoch to the trial and raises ``optuna.TrialPruned`` when the
pruner says so. The objective is the negative log loss of the trial's calibrated
probabilities on validation at the population's prevalence: a proper scoring rule, which
keeps telling trials apart after their validation ranking is perfect (AUPRC 1.0 for all,
as on the default world). A new study's first trial is the configuration as it stands, so
the study shows whether tuning beat it; ``TuneResult.spread`` gives the best, median and
default trials with their intervals, and ``TuneResult.margins`` the best trial's gain over
the median and the default on the same validation rows (a paired interval, ``_paired``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import optuna
from optuna.trial import TrialState

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError
from sybilgnn.tuning._paired import TrialMargin, paired_margin, validation_attrs
from sybilgnn.tuning._space import SearchSpace, load_search_space
from sybilgnn.tuning._storage import (MLFLOW_RUN_ATTR, WORKER_ATTR, fail_dead_local_trials,
                                      open_study_created, worker_id)
from sybilgnn.tuning._summary import PruningSummary, summarize_pruning
from sybilgnn.tuning._tracking import (close_trial_run, log_epoch, parent_run_for_study,
                                       start_trial_run)

if TYPE_CHECKING:
    from sybilgnn.training import TrainResult

__all__ = ["TuneResult", "TrialScore", "run_study", "trial_settings", "FINISHED_STATES",
           "DEFAULT_ATTR", "snapshot_study_name", "wait_for_running"]

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)

# Optuna's per-trial INFO lines ("Trial 4 pruned. ...") repeat what the progress bar and the
# pruning summary say; its warnings still show.
optuna.logging.set_verbosity(optuna.logging.WARNING)
DEFAULT_ATTR = "default_config"


@dataclass(frozen=True)
class TrialScore:
    """One complete trial's objective with its 95% interval."""

    number: int
    value: float
    lo: float
    hi: float

    def describe(self) -> str:
        return f"trial {self.number}: {self.value:.4f} [{self.lo:.4f}, {self.hi:.4f}]"


@dataclass
class TuneResult:
    study_name: str
    best_params: dict[str, Any]
    best_value: float | None
    best_trial: int | None
    finished_since_start: int
    counts: dict[str, int]
    pruning: PruningSummary
    parent_run_id: str
    revived: list[int] = field(default_factory=list)
    spread: dict[str, TrialScore] = field(default_factory=dict)  # best, median, default
    objective: str = "log_loss"  # tune.objective
    # the best trial's paired gain over the median and the default (same validation rows)
    margins: dict[str, TrialMargin] = field(default_factory=dict)

    def beats(self, name: str) -> bool | None:
        """Whether the best trial is better than the ``name`` trial (median or default)
        beyond the noise: by the paired interval on the same rows when both trials kept
        their validation scores, else by the two intervals not overlapping. None when that
        trial is the best one or missing."""
        best, other = self.spread.get("best"), self.spread.get(name)
        if best is None or other is None or other.number == best.number:
            return None
        margin = self.margins.get(name)
        return margin.separated if margin is not None else best.lo > other.hi

    @property
    def best_separated(self) -> bool | None:
        """Whether the best trial is better than the default and the median beyond the
        noise (``beats``)."""
        verdicts = [v for v in (self.beats("default"), self.beats("median")) if v is not None]
        return all(verdicts) if verdicts else None

    def adopted_params(self, rule: str = "separated") -> tuple[dict[str, Any] | None, str]:
        """The parameters a retrain trains with under ``tune.adopt`` (None: the configuration
        as it stands), and why. With ``separated`` a best trial inside the noise of the
        configured one does not replace it: the study could not tell them apart, and a
        change nobody can defend is churn."""
        best, default = self.spread.get("best"), self.spread.get("default")
        if best is None or not self.best_params:
            return None, "no complete trial: the configuration as it stands"
        if default is not None and best.number == default.number:
            return None, f"the configuration as it stands was the best trial ({best.describe()})"
        if rule == "best" or default is None:
            why = "tune.adopt=best" if rule == "best" else "no configured trial to compare with"
            return dict(self.best_params), f"best {best.describe()} ({why})"
        margin = self.margins.get("default")
        by = f"paired gain {margin.describe()}" if margin else f"{default.describe()}"
        if self.beats("default"):
            return dict(self.best_params), (f"best {best.describe()}: better than the "
                                            f"configuration beyond the noise, {by}")
        return None, (f"the configuration as it stands: best {best.describe()} is within the "
                      f"noise of it, {by} (tune.adopt=best would take it)")

    def describe_spread(self) -> str:
        parts = [f"{name} {score.describe()}" for name, score in self.spread.items()]
        parts += [f"best vs {name}: {margin.describe()}" for name, margin in self.margins.items()]
        verdict = {True: "the best trial is better than the default and the median beyond "
                         "the noise",
                   False: "the best trial is within the noise of the default or the median",
                   None: "not enough complete trials to compare"}[self.best_separated]
        what = OBJECTIVES.get(self.objective, self.objective)
        return f"objective ({what}): " + "; ".join(parts) + f" -> {verdict}"


OBJECTIVES = {
    "log_loss": "negative validation log loss at population prevalence",
    "loco": "mean recall within the expected-fakes queue over labelled campaigns held out in turn",
}


OBJECTIVE_METRIC = {"log_loss": "objective_val_neg_log_loss",
                    "loco": "objective_loco_mean_recall_at_budget"}


def trial_settings(settings: Settings) -> Settings:
    """Settings for one trial: epochs capped at ``tune.trial_epochs`` when set."""
    epochs = settings.tune.trial_epochs
    if epochs is None:
        return settings
    return settings.model_copy(update={"train": settings.train.model_copy(update={"epochs": epochs})})


def _objective(snapshot: Snapshot, settings: Settings, space: SearchSpace,
               parent_run_id: str) -> Callable[[optuna.Trial], float]:
    per_trial = trial_settings(settings)
    fixed = {"max_epochs": per_trial.train.epochs, "snapshot_hash": snapshot.content_hash,
             "pruner": settings.tune.pruner}

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, worker_id())
        params = space.suggest(trial)
        run_id = start_trial_run(settings, parent_run_id, trial, params, fixed)
        trial.set_user_attr(MLFLOW_RUN_ATTR, run_id)
        result = _train_trial(snapshot, settings, per_trial, trial, params, run_id)
        val = result.metrics["val"]
        value, lo, hi = _objective_interval(snapshot, settings, per_trial, params, val)
        trial.set_user_attr("objective_lo", lo)
        trial.set_user_attr("objective_hi", hi)
        if settings.tune.objective == "log_loss" and result.val_probs is not None:
            for key, attr in validation_attrs(result.val_labels, result.val_probs,
                                              result.metrics["val"]["log_loss_prevalence"],
                                              snapshot.content_hash).items():
                trial.set_user_attr(key, attr)
        trial.set_user_attr("epochs_run", int(result.epochs_run))
        trial.set_user_attr("best_epoch", int(result.best_epoch))
        close_trial_run(settings, run_id, status="FINISHED",
                        metrics={OBJECTIVE_METRIC[settings.tune.objective]: value,
                                 "val_auprc": float(val.get("auprc", math.nan)),
                                 "epochs_run": result.epochs_run,
                                 "best_epoch": result.best_epoch},
                        tags={"optuna.state": "COMPLETE"})
        return value

    return objective


def _train_trial(snapshot: Snapshot, settings: Settings, per_trial: Settings,
                 trial: optuna.Trial, params: dict[str, Any], run_id: str) -> TrainResult:
    """Train one trial, logging each epoch to its MLflow run; a pruned or failed trial
    closes its run (KILLED or FAILED, with the epochs it ran) before the error goes on."""
    from sybilgnn.training import train  # heavy import, and only needed when trials run

    epochs_seen: list[int] = []

    def on_epoch(record: dict[str, Any]) -> None:
        epochs_seen.append(int(record.get("epoch", len(epochs_seen))))
        log_epoch(settings, run_id, record)

    try:
        return train(snapshot, per_trial, params=params, trial=trial, epoch_callback=on_epoch)
    except optuna.TrialPruned:
        trial.set_user_attr("epochs_run", len(epochs_seen))
        close_trial_run(settings, run_id, status="KILLED",
                        metrics={"epochs_run": len(epochs_seen)},
                        tags={"optuna.state": "PRUNED"})
        raise
    except BaseException as exc:
        trial.set_user_attr("epochs_run", len(epochs_seen))
        close_trial_run(settings, run_id, status="FAILED",
                        tags={"optuna.state": "FAIL", "failure": repr(exc)[:500]})
        raise


def _objective_interval(snapshot: Snapshot, settings: Settings, per_trial: Settings,
                        params: dict[str, Any], val: dict[str, Any]
                        ) -> tuple[float, float, float]:
    """(value, lo, hi) of the trial's objective, higher is better; the interval lets the
    study tell whether the best trial is separated from the rest."""
    if settings.tune.objective == "loco":
        value, lo, hi = _loco_objective(snapshot, per_trial, params)
    else:
        # the interval of the objective: of the negated loss, so lo <= value <= hi
        value, lo, hi = (-float(val["log_loss"]), -float(val["log_loss_hi"]),
                         -float(val["log_loss_lo"]))
    if math.isnan(value):
        raise InputError("the validation slice needs fakes and legitimate accounts to "
                         "score a trial; label more accounts or change split.*")
    return value, lo, hi


def snapshot_study_name(settings: Settings, snapshot: Snapshot) -> str:
    """The study of one snapshot: what ``sybilgnn retrain`` runs and ``sybilgnn tune
    --worker`` joins (every worker must export the same graph to find it)."""
    return f"{settings.tune.study_name}-{snapshot.content_hash[:12]}"


def run_study(
    snapshot: Snapshot,
    settings: Settings,
    *,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    until_total: bool = False,
    study_name: str | None = None,
    pruner: str | None = None,
    parent_run_id: str | None = None,
    show_progress: bool = False,
    wait_for_others: bool = False,
) -> TuneResult:
    """Run trials in this process.

    ``n_trials`` (default ``tune.n_trials``) counts trials run by this worker, so workers on
    one study add up. With ``until_total`` it is the study's target instead: the worker
    stops once the study holds that many finished (complete or pruned) trials, which is
    what a resumed or re-run budget wants. With ``wait_for_others`` the result waits for
    the trials other workers are still running (``wait_for_running``), so the best trial is
    chosen from the whole study.
    """
    space = load_search_space(settings.tune.search_space)
    budget = n_trials if n_trials is not None else settings.tune.n_trials
    if budget < 0:
        raise InputError(f"--n-trials must be >= 0, got {budget}")
    timeout = timeout_s if timeout_s is not None else settings.tune.timeout_s
    study, created = open_study_created(settings, study_name=study_name, pruner=pruner)
    revived = fail_dead_local_trials(study, settings)
    _fail_stale(study)
    parent = parent_run_for_study(settings, study, created=created, parent_run_id=parent_run_id)
    if created:
        configured = space.configured(settings)
        if configured is not None:  # trial 0: the configuration as it stands
            study.enqueue_trial(configured, user_attrs={DEFAULT_ATTR: True})

    before = len(study.get_trials(deepcopy=False, states=FINISHED_STATES))
    to_run = max(0, budget - before) if until_total else budget
    if to_run > 0:
        study.optimize(_objective(snapshot, settings, space, parent), n_trials=to_run,
                       timeout=timeout, show_progress_bar=show_progress,
                       callbacks=[_stop_at(budget)] if until_total else [])
    if wait_for_others:
        wait_for_running(study, settings, timeout_s=timeout)
    after = len(study.get_trials(deepcopy=False, states=FINISHED_STATES))
    return _result(study, settings, parent, after - before, revived)


def _stop_at(budget: int) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """A callback that stops the worker once the study holds ``budget`` finished trials
    (other workers' included)."""
    def stop_at_target(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if len(study.get_trials(deepcopy=False, states=FINISHED_STATES)) >= budget:
            study.stop()
    return stop_at_target


def _fail_stale(study: optuna.Study) -> None:
    """Fail the RUNNING trials whose heartbeat is older than the grace period (Optuna's
    experimental API, its warning kept out of the user's output)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def wait_for_running(study: optuna.Study, settings: Settings, *,
                     timeout_s: float | None = None, poll_s: float | None = None) -> list[int]:
    """Wait until no trial of ``study`` is RUNNING, polling every heartbeat interval; a
    trial whose worker died stops counting once its heartbeat is older than the grace
    period (it is failed and queued again, as any worker would). Returns the trials still
    running when ``timeout_s`` ran out (none when they all ended)."""
    import time

    poll = poll_s if poll_s is not None else settings.tune.heartbeat_interval_s
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        _fail_stale(study)
        running = [t.number for t in study.get_trials(deepcopy=False,
                                                      states=(TrialState.RUNNING,))]
        if not running or (deadline is not None and time.monotonic() >= deadline):
            return running
        time.sleep(poll)


def _loco_objective(snapshot: Snapshot, settings: Settings,
                    params: dict[str, Any]) -> tuple[float, float, float]:
    """Mean recall within the expected-fakes queue over the labelled campaigns, each held
    out in turn (``evaluation.loco``: no labelled legitimate account enters it), with the
    mean of the per-campaign interval ends as its (conservative) interval."""
    from sybilgnn.evaluation.loco import leave_one_campaign_out

    loco = leave_one_campaign_out(snapshot, settings, params=params, with_baselines=False)
    value, lo, hi = loco.interval("gnn")
    if math.isnan(value):
        raise InputError("tune.objective=loco: no labelled campaign could be measured "
                         f"({'; '.join(f'{k}: {v}' for k, v in loco.skipped.items())}); "
                         "use tune.objective=log_loss or label campaigns "
                         "(split.holdout_property)")
    return value, lo, hi


def _result(study: optuna.Study, settings: Settings, parent: str, ran: int,
            revived: list[int]) -> TuneResult:
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value if t.value is not None else -1.0) if complete else None
    return TuneResult(
        study_name=study.study_name,
        best_params=dict(best.params) if best else {},
        best_value=float(best.value) if best and best.value is not None else None,
        best_trial=best.number if best else None,
        finished_since_start=ran,
        counts=counts,
        pruning=summarize_pruning(study, trial_settings(settings).train.epochs),
        parent_run_id=parent,
        revived=revived,
        spread=_spread(complete),
        objective=settings.tune.objective,
        margins=_margins(complete),
    )


def _score(trial: optuna.trial.FrozenTrial) -> TrialScore:
    value = float(trial.value if trial.value is not None else math.nan)
    return TrialScore(trial.number, value, float(trial.user_attrs.get("objective_lo", value)),
                      float(trial.user_attrs.get("objective_hi", value)))


def _ranked(complete: list[optuna.trial.FrozenTrial]
            ) -> dict[str, optuna.trial.FrozenTrial]:
    """The best, median and (when the study has one) default trials."""
    scored = sorted((t for t in complete if t.value is not None), key=lambda t: t.value)
    if not scored:
        return {}
    out = {"best": scored[-1], "median": scored[(len(scored) - 1) // 2]}
    default = [t for t in scored if t.user_attrs.get(DEFAULT_ATTR)]
    if default:
        out["default"] = default[0]
    return out


def _spread(complete: list[optuna.trial.FrozenTrial]) -> dict[str, TrialScore]:
    return {name: _score(trial) for name, trial in _ranked(complete).items()}


def _margins(complete: list[optuna.trial.FrozenTrial]) -> dict[str, TrialMargin]:
    """The best trial's paired gain over the median and the default trials."""
    ranked = _ranked(complete)
    out: dict[str, TrialMargin] = {}
    for name in ("default", "median"):
        other = ranked.get(name)
        if other is None or other.number == ranked["best"].number:
            continue
        margin = paired_margin(ranked["best"], other)
        if margin is not None:
            out[name] = margin
    return out
