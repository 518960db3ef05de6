"""``sybilgnn pipeline``: the README's main job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings


@cli.command("pipeline")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Event tables to ingest; without it a platform is simulated.")
@click.option("--accounts", type=int, default=None, help="Simulated accounts (simulate.accounts).")
@click.option("--scenario", default=None, help="Simulator scenario (simulate.scenario).")
@click.option("--seed", type=int, default=None, help="Simulator seed (simulate.seed).")
@click.option("--trials", type=int, default=None,
              help="Optuna trials per retrain; 0 skips tuning [default: 6, with --days 0].")
@click.option("--days", type=int, default=None,
              help="Simulate N days of deliveries and replay them: ingest daily, score "
                   "daily, retrain every --retrain-every days (clears the local graph).")
@click.option("--retrain-every", type=int, default=7, show_default=True,
              help="With --days: retrain through the gate on day 0 and every N days.")
@click.option("--fresh", is_flag=True,
              help="Clear the database first (deletes everything in it): needed to simulate "
                   "a different platform into a graph that holds another.")
@pass_settings
def pipeline(settings: Settings, data_dir: str | None, accounts: int | None, scenario: str | None,
             seed: int | None, trials: int | None, days: int | None, retrain_every: int,
             fresh: bool) -> None:
    """Simulate or take event tables, ingest, retrain, score, report; with --days, replay
    day-by-day deliveries."""
    from sybilgnn.pipeline import run_pipeline

    if days is not None:
        _replay(settings, data_dir=data_dir, days=days, retrain_every=retrain_every,
                accounts=accounts, scenario=scenario, seed=seed, trials=trials)
        return
    trials = 6 if trials is None else trials

    summary = run_pipeline(settings, data_dir=Path(data_dir) if data_dir else None,
                           accounts=accounts, scenario=scenario, seed=seed, trials=trials,
                           fresh=fresh, say=lambda line: click.echo(line, err=True))
    _echo_model_quality(settings, summary.retrain)
    scored = summary.scoring
    click.echo(f"\nScoring run {scored.run_id}: {scored.n_scored:,} accounts scored, "
               f"{scored.n_flagged:,} flagged, {scored.n_fleets:,} fleets.")
    if summary.truth is not None:
        click.echo("")
        for line in summary.truth.lines():
            click.echo(line)
    click.echo(f"Report: {summary.report.resolve()}")
    port = settings.neo4j.http_port
    click.echo(f"Neo4j Browser: http://127.0.0.1:{port}/browser/  (user {settings.neo4j.user}, "
               f"password in {settings.neo4j.password_file}); run `sybilgnn guide` for the "
               "analysts' guide.")
    timings = ", ".join(f"{k} {v:.0f}s" for k, v in summary.stage_seconds.items())
    click.echo(f"Stage times: {timings}")


def _replay(settings: Settings, *, data_dir: str | None, days: int, retrain_every: int,
            accounts: int | None, scenario: str | None, seed: int | None,
            trials: int | None) -> None:
    """``--days``: simulate deliveries and replay them (no tuning unless --trials asks)."""
    from sybilgnn.pipeline import run_replay_pipeline

    if data_dir is not None:
        raise click.UsageError("--days simulates its deliveries; to replay your own "
                               "day-NNN folders use `sybilgnn replay DIR`")
    from sybilgnn.cli.replay_cmd import echo_replay

    echo_replay(run_replay_pipeline(
        settings, days=days, retrain_every=retrain_every, accounts=accounts,
        scenario=scenario, seed=seed, trials=0 if trials is None else trials,
        say=lambda line: click.echo(line, err=True)))


def _echo_model_quality(settings: Settings, retrain: Any) -> None:
    """What the retrain measured: tuning spread, test and held-out metrics, the operating
    point and, where campaigns are labelled, leave-one-campaign-out."""
    from sybilgnn.training.report import report_table

    tuned = retrain.tune
    if tuned is not None:
        click.echo(f"\nTuning: {tuned.describe_spread()}")
        click.echo(f"Trained with {tuned.adopted_params(settings.tune.adopt)[1]}.")
    click.echo("\nModel quality (time-split test set and held-out campaign):")
    click.echo(report_table(retrain.trained.evaluation, splits=("test", "holdout")))
    point = retrain.trained.result.threshold_info
    if "expected_flags" in point:
        _echo_operating_point(point)
    if retrain.trained.loco is not None:
        click.echo("\nLeave-one-campaign-out (every labelled campaign held out in turn):")
        click.echo(retrain.trained.loco.table())


def _echo_operating_point(point: dict[str, Any]) -> None:
    """The threshold with the precision, recall and flag count an analyst can expect of it."""
    queue = f" among {point['queue']:,} undecided accounts" if "queue" in point else ""
    click.echo(f"\nOperating point: threshold {point['threshold']:.4f}, estimated precision "
               f"of the new flags {point['precision']:.3f}{_precision_range(point)}, "
               f"held-out recall of labelled fakes {point['recall']:.3f}, "
               f"{point['expected_flags']:,} new flags expected{queue} "
               f"({point['positives']} labelled fakes, cross-fitted); prevalence "
               f"{point['prevalence']:.4f} from {point.get('prevalence_source', '?')}; "
               f"rule: {point.get('rule', '?')}.")


def _precision_range(point: dict[str, Any]) -> str:
    """The estimated precision at the prevalence interval's ends, where it has one."""
    low, high = point.get("precision_lo"), point.get("precision_hi")
    if low is None or high is None or low == high:
        return ""
    return f" ({low:.3f}-{high:.3f} over the prevalence interval)"
