"""``sybilgnn pipeline``: the README's main job."""

from __future__ import annotations

from pathlib import Path

import click

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings


@cli.command("pipeline")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Event tables to ingest; without it a platform is simulated.")
@click.option("--accounts", type=int, default=None, help="Simulated accounts (simulate.accounts).")
@click.option("--scenario", default=None, help="Simulator scenario (simulate.scenario).")
@click.option("--seed", type=int, default=None, help="Simulator seed (simulate.seed).")
@click.option("--trials", type=int, default=6, show_default=True,
              help="Optuna trials for the retrain; 0 skips tuning.")
@pass_settings
def pipeline(settings: Settings, data_dir: str | None, accounts: int | None, scenario: str | None,
             seed: int | None, trials: int) -> None:
    """Simulate or take event tables, ingest, retrain, score, report."""
    from sybilgnn.pipeline import run_pipeline
    from sybilgnn.training.report import report_table

    summary = run_pipeline(settings, data_dir=Path(data_dir) if data_dir else None,
                           accounts=accounts, scenario=scenario, seed=seed, trials=trials,
                           say=lambda line: click.echo(line, err=True))
    click.echo("\nModel quality (time-split test set and held-out campaign):")
    click.echo(report_table(summary.retrain.trained.evaluation, splits=("test", "holdout")))
    scored = summary.scoring
    click.echo(f"\nScoring run {scored.run_id}: {scored.n_scored:,} accounts scored, "
               f"{scored.n_flagged:,} flagged, {scored.n_fleets:,} fleets.")
    click.echo(f"Report: {summary.report.resolve()}")
    port = settings.neo4j.http_port
    click.echo(f"Neo4j Browser: http://127.0.0.1:{port}/browser/  (user {settings.neo4j.user}, "
               f"password in {settings.neo4j.password_file}); run `sybilgnn guide` for the "
               "analysts' guide.")
    timings = ", ".join(f"{k} {v:.0f}s" for k, v in summary.stage_seconds.items())
    click.echo(f"Stage times: {timings}")
