"""``sybilgnn simulate``: write a simulated platform's event tables (thin over the library).

With ``--days`` the same world is written as a base load plus daily deltas
(``simulate_deliveries``), the way a platform hands data over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings
from sybilgnn.errors import InputError

if TYPE_CHECKING:
    from sybilgnn.simulate import DeliveriesSummary

__all__ = ["simulate_cmd"]


@cli.command("simulate")
@click.option("--accounts", type=int, default=None, help="Accounts to simulate (default simulate.accounts).")
@click.option("--scenario", default=None,
              help="easy | medium | hard | hydra | evasive (default simulate.scenario; "
                   "docs/simulator.md#scenarios).")
@click.option("--seed", type=int, default=None, help="Random seed (default simulate.seed).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory (default simulate.out_dir).")
@click.option("--events-scale", type=float, default=None,
              help="Multiply every account's activity, e.g. 0.1 for a quick small run.")
@click.option("--days", type=int, default=None,
              help="Write day-000 (the base load) plus this many daily deliveries instead of "
                   "one directory.")
@click.option("--start-day", type=int, default=None,
              help="Day of the 180-day window on which day-001 begins (with --days; default: "
                   "the youngest campaign starts a third into the series).")
@pass_settings
def simulate_cmd(settings: Settings, accounts: int | None, scenario: str | None,
                 seed: int | None, out_dir: str | None, events_scale: float | None,
                 days: int | None, start_day: int | None) -> None:
    """Simulate legit users (with benign look-alikes) and three fake-account campaigns;
    write Parquet tables."""
    from sybilgnn.simulate import simulate_deliveries, simulate_platform

    cfg = settings.simulate
    args = {
        "accounts": accounts if accounts is not None else cfg.accounts,
        "scenario": scenario if scenario is not None else cfg.scenario,
        "seed": seed if seed is not None else cfg.seed,
        "events_scale": events_scale if events_scale is not None else cfg.events_scale,
        "progress": True,
    }
    out = out_dir if out_dir is not None else cfg.out_dir
    if days is not None:
        _report_deliveries(simulate_deliveries(out, days=days, start_day=start_day, **args))
        return
    if start_day is not None:
        raise InputError("--start-day places a series of daily deliveries; give --days too")
    summary = simulate_platform(out, **args)
    click.echo(f"simulated {summary.accounts:,} accounts ({summary.fake_accounts:,} fake) "
               f"scenario {summary.scenario} seed {summary.seed} in {summary.elapsed_s:.1f} s "
               f"-> {summary.out_dir}")
    for table, rows in summary.rows.items():
        click.echo(f"  {table + '.parquet':<22}{rows:>12,} rows")
    for campaign, fakes in summary.fakes_per_campaign.items():
        click.echo(f"  {campaign:<22}{fakes:>8,} fakes in {summary.fleets_per_campaign[campaign]:>4} "
                   f"fleets, {summary.labelled_per_campaign[campaign]:>7,} labelled")
    _report_lookalikes(summary.lookalikes, summary.company_teams)
    click.echo(f"  modelled interactions {summary.interactions:,} "
               f"({summary.fake_interactions:,} by fakes; prompts.parquet holds a sample)")


def _report_lookalikes(lookalikes: dict[str, int], teams: int) -> None:
    team, script = lookalikes["company_team"], lookalikes["script_developer"]
    click.echo(f"  benign look-alikes (legit): {team:,} company-team members in {teams:,} "
               f"teams, {script:,} script developers")


def _report_deliveries(summary: DeliveriesSummary) -> None:
    """Base load, the range of daily sign-ups and events, and where each campaign starts."""
    from sybilgnn.simulate.deliveries import delivery_name

    def events(tables: dict[str, int]) -> int:
        return tables["ip_events"] + tables["payments"] + tables["prompts"]

    base, *daily = summary.rows.values()
    last = delivery_name(summary.days)
    click.echo(f"simulated {summary.accounts:,} accounts ({summary.fake_accounts:,} fake) "
               f"scenario {summary.scenario} seed {summary.seed} as {summary.days} daily "
               f"deliveries from {summary.series_start:%Y-%m-%d} (world day {summary.start_day}) "
               f"in {summary.elapsed_s:.1f} s -> {summary.out_dir}")
    click.echo(f"  day-000 (before the series) {base['accounts']:>9,} accounts "
               f"{events(base):>11,} events {base['labels']:>7,} labels")
    signups, volumes = [d["accounts"] for d in daily], [events(d) for d in daily]
    click.echo(f"  day-001..{last}  {min(signups):,}-{max(signups):,} new accounts a day, "
               f"{min(volumes):,}-{max(volumes):,} events a day, "
               f"{sum(d['labels'] for d in daily):,} labels in all")
    _report_lookalikes(summary.lookalikes, summary.company_teams)
    for campaign, at in summary.campaign_first_event.items():
        day = summary.campaign_first_day[campaign]
        where = "after the series" if day is None else (
            "before the series (day-000)" if day == 0 else f"starts in {delivery_name(day)}")
        click.echo(f"  {campaign:<22}first event {at:%Y-%m-%d %H:%M} UTC: {where}")
    later = summary.withheld
    if later["accounts"] or events(later) or later["labels"]:
        click.echo(f"  dated after {last}, not delivered: {later['accounts']:,} accounts, "
                   f"{events(later):,} events, {later['labels']:,} labels")
