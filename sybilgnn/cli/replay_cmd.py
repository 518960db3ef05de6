"""``sybilgnn replay``: operations over day-by-day deliveries, as a thin verb over
``run_replay``."""

from __future__ import annotations

from pathlib import Path

import click

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings


def echo_replay(summary: object) -> None:
    """The per-day table, the detection delays per campaign and where the files are."""
    from sybilgnn.replay import ReplaySummary

    assert isinstance(summary, ReplaySummary)
    click.echo(summary.table())
    click.echo("\nDetection delay per campaign (days from a fleet's first event to its first "
               "flag; fleets that started during the series):")
    for campaign, row in summary.campaigns.items():
        median = row["median_delay_days"]
        worst = row["worst_delay_days"]
        click.echo(f"  {campaign}: {row['fleets']} fleets, {row['started_in_series']} started "
                   f"in the series, median {'n/a' if median is None else f'{median:.1f}'}, "
                   f"worst {'n/a' if worst is None else worst}, never flagged "
                   f"{row['never_flagged_in_series']}")
    flips = sum(d.flips_without_new_data for d in summary.days)
    click.echo(f"\nFlag flips without new data under one model version: {flips}")
    click.echo(f"Minutes per simulated day: {summary.minutes_per_day:.2f}")
    click.echo(f"Tables: {summary.out_dir / 'days.csv'}, {summary.out_dir / 'fleets.csv'}, "
               f"{summary.out_dir / 'replay.json'}")


@cli.command("replay")
@click.argument("deliveries", type=click.Path(file_okay=False, exists=True))
@click.option("--retrain-every", type=int, default=7, show_default=True,
              help="Retrain (through the promotion gate) on day 0 and every N days.")
@click.option("--trials", type=int, default=0, show_default=True,
              help="Optuna trials per retrain; 0 trains with the configured settings.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where the tables go (default: DELIVERIES/replay).")
@click.option("--fresh", is_flag=True,
              help="Clear the database first (deletes everything in it).")
@pass_settings
def replay(settings: Settings, deliveries: str, retrain_every: int, trials: int,
           out_dir: str | None, fresh: bool) -> None:
    """Ingest day-NNN deliveries in order, score after each, retrain on a cadence; print the
    per-day table evaluated against the simulator's ground truth."""
    from sybilgnn.replay import run_replay

    summary = run_replay(settings, Path(deliveries), retrain_every=retrain_every, trials=trials,
                         out_dir=out_dir, fresh=fresh, say=lambda line: click.echo(line, err=True))
    echo_replay(summary)
