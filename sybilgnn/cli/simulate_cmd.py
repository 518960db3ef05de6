"""``sybilgnn simulate``: write a simulated platform's event tables (thin over the library)."""

from __future__ import annotations

import click

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings

__all__ = ["simulate_cmd"]


@cli.command("simulate")
@click.option("--accounts", type=int, default=None, help="Accounts to simulate (default simulate.accounts).")
@click.option("--scenario", default=None,
              help="easy | medium | hard | hydra (default simulate.scenario).")
@click.option("--seed", type=int, default=None, help="Random seed (default simulate.seed).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory (default simulate.out_dir).")
@click.option("--events-scale", type=float, default=None,
              help="Multiply every account's activity, e.g. 0.1 for a quick small run.")
@pass_settings
def simulate_cmd(settings: Settings, accounts: int | None, scenario: str | None,
                 seed: int | None, out_dir: str | None, events_scale: float | None) -> None:
    """Simulate legit users and three fake-account campaigns; write Parquet tables."""
    from sybilgnn.simulate import simulate_platform

    cfg = settings.simulate
    summary = simulate_platform(
        out_dir if out_dir is not None else cfg.out_dir,
        accounts=accounts if accounts is not None else cfg.accounts,
        scenario=scenario if scenario is not None else cfg.scenario,
        seed=seed if seed is not None else cfg.seed,
        events_scale=events_scale if events_scale is not None else cfg.events_scale,
        progress=True,
    )
    click.echo(f"simulated {summary.accounts:,} accounts ({summary.fake_accounts:,} fake) "
               f"scenario {summary.scenario} seed {summary.seed} in {summary.elapsed_s:.1f} s "
               f"-> {summary.out_dir}")
    for table, rows in summary.rows.items():
        click.echo(f"  {table + '.parquet':<22}{rows:>12,} rows")
    for campaign, fakes in summary.fakes_per_campaign.items():
        click.echo(f"  {campaign:<22}{fakes:>8,} fakes in {summary.fleets_per_campaign[campaign]:>4} "
                   f"fleets, {summary.labelled_per_campaign[campaign]:>7,} labelled")
    click.echo(f"  modelled interactions {summary.interactions:,} "
               f"({summary.fake_interactions:,} by fakes; prompts.parquet holds a sample)")
