"""The scheduled retrain: export -> tune -> train -> evaluate -> register -> promote.

One library call for cron, systemd timers or Airflow. An exclusive ``fcntl.flock`` on
``registry.lock_file`` makes sure two scheduled runs never overlap; the lock is released by
the kernel when the process dies, so a crashed run never leaves a stale lock behind.

Exit codes of ``sybilgnn retrain`` (see docs/training.md):
0 promoted, 10 trained and registered but not promoted (not better than the champion),
3 another retrain holds the lock, 2 configuration or input error, 1 unexpected failure.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from sybilgnn.config import Settings
from sybilgnn.errors import SybilgnnError

if TYPE_CHECKING:  # heavy imports stay out of the lock path (a locked run exits at once)
    from sybilgnn.data.snapshot import Snapshot
    from sybilgnn.registry import PromotionDecision, RegisteredVersion
    from sybilgnn.tuning import TuneResult

__all__ = [
    "EXIT_PROMOTED", "EXIT_NOT_PROMOTED", "EXIT_LOCKED", "EXIT_INPUT", "EXIT_UNEXPECTED",
    "LockedError", "RetrainOutcome", "TrainOutcome", "retrain_lock", "retrain", "train_and_register",
    "load_or_export_snapshot",
]

EXIT_PROMOTED, EXIT_NOT_PROMOTED, EXIT_LOCKED, EXIT_INPUT, EXIT_UNEXPECTED = 0, 10, 3, 2, 1
log = logging.getLogger(__name__)


class LockedError(SybilgnnError):
    """Another retrain run holds the lock; this one did nothing."""

    exit_code = EXIT_LOCKED


@contextmanager
def retrain_lock(path: str | Path) -> Iterator[Path]:
    """Hold an exclusive, non-blocking lock on ``path`` for the duration of the block."""
    lock_path = Path(path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(f"another retrain is running (lock {lock_path} held by {holder}); "
                              "this run exits without doing anything") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}\n".encode(), 0)
        yield lock_path
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def load_or_export_snapshot(settings: Settings, snapshot_dir: str | Path | None = None) -> Snapshot:
    """A saved snapshot folder when given, else a fresh export from Neo4j."""
    from sybilgnn.data.snapshot import Snapshot

    if snapshot_dir is not None:
        folder = Path(snapshot_dir)
        if not (folder / "snapshot.json").is_file():
            raise SybilgnnError(f"--snapshot {folder}: no snapshot.json there; pass a folder "
                                "written by Snapshot.save")
        return Snapshot.load(folder)
    from sybilgnn.export import export_snapshot

    return export_snapshot(settings)


@dataclass
class TrainOutcome:
    version: RegisteredVersion
    metrics: dict[str, dict[str, float]]
    result: Any
    baselines: dict[str, dict[str, dict[str, float]]] | None = None
    loco: Any = None  # LocoResult: every campaign held out in turn

    @property
    def evaluation(self) -> dict[str, dict[str, dict[str, float]]]:
        """The GNN next to the baselines (model -> split -> metrics), for one report table."""
        return {"sybilgnn": self.metrics, **(self.baselines or {})}


@dataclass
class RetrainOutcome:
    snapshot_hash: str
    tune: TuneResult | None
    trained: TrainOutcome
    decision: PromotionDecision
    run_id: str

    @property
    def exit_code(self) -> int:
        return EXIT_PROMOTED if self.decision.promoted else EXIT_NOT_PROMOTED


def train_and_register(snapshot: Snapshot, settings: Settings, *, params: dict[str, Any] | None = None,
                       with_baselines: bool = True, study: Any = None,
                       parent_run_id: str | None = None, run_name: str = "train") -> TrainOutcome:
    """Train (optionally with tuned ``params``) on the time split, refit on every label with
    the settings that run chose (``train.refit_on_all_labels``), log, register, alias
    ``challenger``. Metrics and baselines are the time-split run's held-out ones."""
    from sybilgnn.registry import log_and_register
    from sybilgnn.training import train
    from sybilgnn.training.inputs import resolve_settings
    from sybilgnn.training.refit import refit_on_all_labels

    result = train(snapshot, settings, params=params or None)
    if resolve_settings(settings, params)[1].refit_on_all_labels:
        result = refit_on_all_labels(snapshot, settings, result, params=params or None)
    baselines = None
    prevalence = result.threshold_info.get("prevalence")
    if with_baselines:
        from sybilgnn.training.baselines import run_baselines

        baselines = run_baselines(snapshot, settings, prevalence=prevalence)
    loco = None
    if settings.train.leave_one_campaign_out:
        from sybilgnn.evaluation.loco import leave_one_campaign_out

        loco = leave_one_campaign_out(snapshot, settings, params=params or None,
                                      with_baselines=with_baselines, prevalence=prevalence)
    version = log_and_register(result, snapshot, settings, run_name=run_name, params=params,
                               baselines=baselines, study=study, parent_run_id=parent_run_id)
    return TrainOutcome(version, result.metrics, result, baselines, loco)


def _log_tuning(tuned: TuneResult) -> None:
    """The study's pruning figures, its spread and the best trial's paired margins, on the
    retrain's MLflow run."""
    import mlflow

    mlflow.log_metrics({f"tune_{k}": v for k, v in tuned.pruning.to_dict().items()})
    mlflow.log_metrics({f"tune_{name}_{part}": getattr(score, part)
                        for name, score in tuned.spread.items() for part in ("value", "lo", "hi")})
    mlflow.log_metrics({f"tune_best_gain_over_{name}_{part}": getattr(margin, part)
                        for name, margin in tuned.margins.items()
                        for part in ("gain", "lo", "hi")})
    mlflow.set_tags({"tune.best_separated": str(tuned.best_separated),
                     "optuna.study": tuned.study_name})


def retrain(settings: Settings, *, snapshot: Snapshot | None = None, snapshot_dir: str | Path | None = None,
            n_trials: int | None = None, timeout_s: float | None = None,
            with_baselines: bool = True, show_progress: bool = False) -> RetrainOutcome:
    """The whole pipeline under the lock; ``n_trials=0`` skips tuning (current config)."""
    with retrain_lock(settings.registry.lock_file):
        import mlflow

        from sybilgnn.registry import configure_tracking, flat_metrics, promote
        from sybilgnn.tuning import open_study, run_study, snapshot_study_name

        snap = snapshot if snapshot is not None else load_or_export_snapshot(settings, snapshot_dir)
        experiment_id = configure_tracking(settings)
        started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        budget = settings.tune.n_trials if n_trials is None else n_trials
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"retrain-{started}",
                              tags={"sybilgnn.kind": "retrain",
                                    "snapshot_hash": snap.content_hash}) as run:
            tuned: TuneResult | None = None
            study = None
            if budget > 0:
                # One study per snapshot: a re-run after a crash resumes it up to the budget,
                # and `sybilgnn tune --worker` processes elsewhere join it.
                study_name = snapshot_study_name(settings, snap)
                tuned = run_study(snap, settings, n_trials=budget, timeout_s=timeout_s,
                                  until_total=True, study_name=study_name,
                                  parent_run_id=run.info.run_id, show_progress=show_progress,
                                  wait_for_others=True)
                study = open_study(settings, study_name=study_name)
                _log_tuning(tuned)
            params, adopted = (tuned.adopted_params(settings.tune.adopt) if tuned
                               else (None, "no tuning: the configuration as it stands"))
            mlflow.set_tag("tune.adopted", adopted[:4000])
            trained = train_and_register(snap, settings, params=params,
                                         with_baselines=with_baselines, study=study,
                                         parent_run_id=run.info.run_id, run_name="final")
            decision = promote(settings, snap, loco=trained.loco,
                               challenger=trained.version.version)
            mlflow.log_metrics(flat_metrics(trained.metrics))
            if trained.loco is not None:
                mlflow.log_metrics(trained.loco.flat())
                mlflow.log_text(trained.loco.table(), "leave_one_campaign_out.md")
            mlflow.set_tags({"registered_version": trained.version.version,
                             "promotion.decision": "promoted" if decision.promoted else "rejected",
                             "promotion.reason": decision.reason,
                             "champion_version": decision.champion_version or ""})
        return RetrainOutcome(snap.content_hash, tuned, trained, decision, run.info.run_id)
