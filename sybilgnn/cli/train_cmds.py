"""``sybilgnn train | tune | promote | retrain``: thin verbs over sybilgnn.retrain/tuning/registry."""

from __future__ import annotations

import json

import click

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings

_SNAPSHOT_OPTION = click.option(
    "--snapshot", "snapshot_dir", type=click.Path(file_okay=False), default=None,
    help="Use a saved snapshot folder instead of exporting from Neo4j.")


@cli.command("train")
@_SNAPSHOT_OPTION
@click.option("--no-baselines", is_flag=True, help="Skip the gradient-boosting baselines.")
@pass_settings
def train_cmd(settings: Settings, snapshot_dir: str | None, no_baselines: bool) -> None:
    """Train once with the current config; register the model as the challenger."""
    from sybilgnn.retrain import load_or_export_snapshot, train_and_register

    snapshot = load_or_export_snapshot(settings, snapshot_dir)
    outcome = train_and_register(snapshot, settings, with_baselines=not no_baselines)
    test = outcome.metrics.get("test", {})
    click.echo(f"registered {outcome.version.model_name} v{outcome.version.version} as challenger "
               f"(run {outcome.version.run_id}); test AUPRC {test.get('auprc', float('nan')):.4f}")


@cli.command("tune")
@_SNAPSHOT_OPTION
@click.option("--n-trials", type=int, default=None,
              help="Trials this worker runs (default tune.n_trials); workers add up.")
@click.option("--until-total", is_flag=True,
              help="Treat --n-trials as the study's total of finished trials (resume a budget).")
@click.option("--timeout", "timeout_s", type=float, default=None, help="Seconds for this worker.")
@click.option("--study-name", default=None, help="Default tune.study_name.")
@click.option("--pruner", type=click.Choice(["median", "hyperband", "none"]), default=None,
              help="Override tune.pruner ('none' gives the no-pruning comparison).")
@click.option("--seed", type=int, default=None, help="Sampler seed; give parallel workers distinct ones.")
@click.option("--train-best", is_flag=True, help="Retrain the best parameters and register them.")
@click.option("--worker", is_flag=True,
              help="Join the study `sybilgnn retrain` runs for the current graph (same "
                   "snapshot, same tune.storage) and help it to its budget (tune.n_trials).")
@pass_settings
def tune_cmd(settings: Settings, snapshot_dir: str | None, n_trials: int | None, until_total: bool,
             timeout_s: float | None, study_name: str | None, pruner: str | None,
             seed: int | None, train_best: bool, worker: bool) -> None:
    """Run or join an Optuna study (storage tune.storage); several workers may share it."""
    from sybilgnn.retrain import load_or_export_snapshot, train_and_register
    from sybilgnn.tuning import open_study, run_study, snapshot_study_name

    if worker and (study_name or train_best):
        raise click.UsageError("--worker joins the retrain's study of the current graph; it "
                               "takes neither --study-name nor --train-best")
    if seed is not None:
        settings = settings.model_copy(update={"tune": settings.tune.model_copy(update={"seed": seed})})
    snapshot = load_or_export_snapshot(settings, snapshot_dir)
    if worker:
        study_name, until_total = snapshot_study_name(settings, snapshot), True
    result = run_study(snapshot, settings, n_trials=n_trials, timeout_s=timeout_s,
                       until_total=until_total, study_name=study_name, pruner=pruner,
                       show_progress=True)
    click.echo(f"study {result.study_name}: {json.dumps(result.counts)}")
    click.echo(f"best trial {result.best_trial}: objective {result.best_value} "
               f"params {json.dumps(result.best_params)}")
    click.echo(result.describe_spread())
    click.echo(f"pruning: {result.pruning.describe()}")
    if train_best and result.best_params:
        study = open_study(settings, study_name=result.study_name)
        outcome = train_and_register(snapshot, settings, params=result.best_params, study=study,
                                     run_name="tuned")
        click.echo(f"registered v{outcome.version.version} as challenger")


@cli.command("promote")
@_SNAPSHOT_OPTION
@click.option("--version", "version", default=None,
              help="Point champion at this version without comparing (rollback / roll-forward).")
@click.option("--challenger", "challenger", default=None,
              help="Judge this version instead of the one the challenger alias points at "
                   "(e.g. a retrain's version that gave up waiting for the promotion lease).")
@pass_settings
def promote_cmd(settings: Settings, snapshot_dir: str | None, version: str | None,
                challenger: str | None) -> None:
    """Make the challenger champion if it beats the champion on the current snapshot.

    Exit code 0 when promoted, 10 when the challenger is not better, 3 when another
    promotion held the registry's lease for longer than registry.promotion_wait_s.
    """
    from sybilgnn.registry import promote
    from sybilgnn.retrain import EXIT_NOT_PROMOTED, load_or_export_snapshot

    if version is not None and challenger is not None:
        raise click.UsageError("--version moves the champion without a comparison; "
                               "--challenger names the version the gate compares: pick one")
    snapshot = None
    if version is None:
        snapshot = load_or_export_snapshot(settings, snapshot_dir)
    decision = promote(settings, snapshot, version=version, challenger=challenger)
    click.echo(decision.describe())
    click.echo(f"champion: v{decision.champion_version}")
    if not decision.promoted:
        raise click.exceptions.Exit(EXIT_NOT_PROMOTED)


@cli.command("retrain")
@_SNAPSHOT_OPTION
@click.option("--n-trials", type=int, default=None, help="Tuning budget (default tune.n_trials; 0 skips).")
@click.option("--timeout", "timeout_s", type=float, default=None, help="Tuning time budget, seconds.")
@click.option("--no-baselines", is_flag=True, help="Skip the gradient-boosting baselines.")
@pass_settings
def retrain_cmd(settings: Settings, snapshot_dir: str | None, n_trials: int | None,
                timeout_s: float | None, no_baselines: bool) -> None:
    """Export, tune, train, evaluate, register and promote behind the gate, under a lock.

    Exit codes: 0 promoted, 10 not promoted (not better), 3 another run holds the lock,
    2 configuration/input error, 1 unexpected failure.
    """
    from sybilgnn.retrain import retrain

    outcome = retrain(settings, snapshot_dir=snapshot_dir, n_trials=n_trials, timeout_s=timeout_s,
                      with_baselines=not no_baselines, show_progress=True)
    if outcome.tune is not None:
        click.echo(f"tuning: {outcome.tune.pruning.describe()}")
        click.echo(f"tuning: {outcome.tune.describe_spread()}")
        click.echo(f"tuning: trained with {outcome.tune.adopted_params(settings.tune.adopt)[1]}")
    click.echo(f"registered v{outcome.trained.version.version} (run {outcome.run_id})")
    click.echo(outcome.decision.describe())
    if outcome.exit_code:
        raise click.exceptions.Exit(outcome.exit_code)
