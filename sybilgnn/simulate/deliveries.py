"""``simulate_deliveries``: one simulated world cut into a base load and daily deltas.

A platform hands over its history once, then one delta a day (docs/data-format.md), and the
daily loop (ingest -> score -> retrain) is only tested as it will run when the simulator does
the same. The world is simulated once by ``simulate_platform`` (into a hidden folder that is
removed afterwards), so a delivery series holds exactly the rows of the single-directory
output for the same arguments, and every table is cut by time:

* ``day-000``: everything dated before the series starts (the base load);
* ``day-NNN``: the accounts created in the NNN-th 24 h UTC window, every event stamped in it
  and the labels dated in it.

No event precedes its account's signup, so no delivery references an account that is not
yet delivered; this is checked, because ingest would quarantine such rows. Rows dated after
the series are withheld and counted in ``deliveries.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from sybilgnn.errors import InputError
from sybilgnn.simulate.platform import simulate_platform, write_parquet
from sybilgnn.simulate.scenarios import Scenario, get_scenario
from sybilgnn.simulate.schema import GROUND_TRUTH, TIMESTAMP
from sybilgnn.simulate.world import DAY, WORLD_DAYS, WORLD_END

__all__ = ["DeliveriesSummary", "simulate_deliveries", "default_start_day", "delivery_name",
           "MANIFEST_FILE", "TRUTH_FILE", "TRUTH"]

MANIFEST_FILE = "deliveries.json"
TRUTH_FILE = "truth.parquet"
TRUTH = pa.schema([*GROUND_TRUTH,
                   pa.field("created_at", TIMESTAMP, nullable=False),
                   pa.field("first_event_at", TIMESTAMP),
                   pa.field("delivered_day", pa.int64())])   # null: created after the series

_US_PER_DAY = DAY * 1_000_000
_WORLD_START_US = (WORLD_END - WORLD_DAYS * DAY) * 1_000_000
_WORLD_END_US = WORLD_END * 1_000_000
_EVENT_TABLES = ("ip_events", "payments", "prompts")
# the column that dates a row; ground truth goes with its account's signup
_DATED_BY = {"accounts": "created_at", "ground_truth": None, "labels": "labelled_at",
             "ip_events": "timestamp", "payments": "timestamp", "prompts": "timestamp"}


@dataclass(frozen=True)
class DeliveriesSummary:
    """What was written, for the CLI and for tests."""

    out_dir: Path
    scenario: str
    seed: int
    accounts: int
    events_scale: float
    days: int
    start_day: int                            # day of the world window where day-001 begins
    series_start: datetime                    # first instant of day-001 (UTC)
    rows: dict[str, dict[str, int]]           # delivery directory -> table -> rows
    withheld: dict[str, int]                  # table -> rows dated after the series
    fakes_per_campaign: dict[str, int]
    lookalikes: dict[str, int]                # benign look-alike kind -> accounts
    company_teams: int
    campaign_first_event: dict[str, datetime]
    campaign_first_day: dict[str, int | None]  # delivery holding it; None after the series
    elapsed_s: float

    @property
    def accounts_per_delivery(self) -> list[int]:
        return [tables["accounts"] for tables in self.rows.values()]

    @property
    def fake_accounts(self) -> int:
        return sum(self.fakes_per_campaign.values())


def delivery_name(day: int) -> str:
    return f"day-{day:03d}"


def default_start_day(first_event_day: int, days: int) -> int:
    """World day on which day-001 begins when none is given.

    Chosen so that the youngest campaign's first event (on ``first_event_day`` of the
    window) lands about a third into the series, ``round(days / 3)`` days after day-001
    (at least 1, at most ``days - 1``): the series then shows a campaign that was never
    delivered before, as a model in production meets one. Clamped to the window.
    """
    lead = min(days - 1, max(1, round(days / 3)))
    latest = WORLD_DAYS - days
    return max(min(1, latest), min(latest, first_event_day - lead))


def _check_args(out: Path, days: int, start_day: int | None) -> None:
    if not isinstance(days, (int, np.integer)) or isinstance(days, bool) \
            or not 1 <= days <= WORLD_DAYS:
        raise InputError(f"--days {days!r}: give a whole number of days from 1 to {WORLD_DAYS} "
                         "(the simulated window)")
    latest = WORLD_DAYS - days
    if start_day is not None and (not isinstance(start_day, (int, np.integer))
                                  or isinstance(start_day, bool) or not 0 <= start_day <= latest):
        raise InputError(f"--start-day {start_day!r}: a {days}-day series must begin on day 0 to "
                         f"{latest} of the {WORLD_DAYS}-day window so that it ends inside it")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a directory")
    held = sorted(p.name for p in out.iterdir() if p.name.startswith("day-")
                  or p.name in (MANIFEST_FILE, TRUTH_FILE)) if out.is_dir() else []
    if held:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise InputError(f"{out} already holds deliveries ({shown}); remove them or choose "
                         "another --out")


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)


def _positions(account_ids: pa.ChunkedArray, ids: pa.Array, table: str) -> np.ndarray:
    """Row of each referenced account in the accounts table; unknown ids are a simulator bug."""
    pos = pc.index_in(account_ids, value_set=ids)
    if pos.null_count:
        raise RuntimeError(f"simulator bug: {pos.null_count} {table} rows name no account")
    return np.asarray(pos.to_numpy(), dtype=np.int64)


@dataclass(frozen=True)
class _Series:
    """The delivery clock: day-001 starts at ``start`` (microseconds since the epoch)."""

    start: int
    days: int

    def day_of(self, us: np.ndarray) -> np.ndarray:
        """Delivery of each instant: 0 before the series, 1..days in it, days + 1 after.

        Events are stamped up to WORLD_END inclusive; that last instant belongs to the final
        day of a series that ends with the world, so such a series loses nothing.
        """
        day = np.where(us < self.start, 0, (us - self.start) // _US_PER_DAY + 1)
        if self.start + self.days * _US_PER_DAY == _WORLD_END_US:
            day = np.where(us == _WORLD_END_US, self.days, day)
        return np.minimum(day, self.days + 1).astype(np.int64)


def _split(table: pa.Table, day: np.ndarray, days: int) -> tuple[list[pa.Table], int]:
    """Rows of deliveries 0..days, each in the world's order, and the count withheld."""
    order = np.argsort(day, kind="stable")
    bounds = np.searchsorted(day[order], np.arange(days + 2))
    taken = table.take(pa.array(order))
    parts = [taken.slice(lo, hi - lo) for lo, hi in zip(bounds[:-1], bounds[1:])]
    return parts, int(table.num_rows - bounds[-1])


def _first_events(world_dir: Path, ids: pa.Array) -> np.ndarray:
    """Each account's earliest event (microseconds) over the event tables; -1 for none."""
    none = np.iinfo(np.int64).max
    first = np.full(len(ids), none, dtype=np.int64)
    for name in _EVENT_TABLES:
        table = pq.read_table(world_dir / f"{name}.parquet", columns=["account_id", "timestamp"])
        earliest = table.group_by("account_id").aggregate([("timestamp", "min")])
        pos = _positions(earliest["account_id"], ids, name)
        first[pos] = np.minimum(first[pos], _micros(earliest["timestamp_min"]))
    return np.where(first == none, -1, first)


def _write_days(src: Path, stage: Path, series: _Series, account_day: np.ndarray,
                progress: bool) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Cut every table of the world in ``src`` into ``stage/day-NNN``; rows per day, withheld.

    One table is in memory at a time, so a large world needs memory for its largest table,
    not for all of them.
    """
    names = [delivery_name(d) for d in range(series.days + 1)]
    for name in names:
        (stage / name).mkdir(parents=True)
    rows: dict[str, dict[str, int]] = {name: {} for name in names}
    withheld: dict[str, int] = {}
    ids = pq.read_table(src / "accounts.parquet", columns=["account_id"])[0].combine_chunks()
    for table_name, column in tqdm(_DATED_BY.items(), desc="splitting into days",
                                   unit="table", disable=not progress):
        table = pq.read_table(src / f"{table_name}.parquet")
        if column is None:
            day = account_day
        else:
            day = series.day_of(_micros(table[column]))
            early = account_day[_positions(table["account_id"], ids, table_name)] > day
            if early.any():
                raise RuntimeError(f"simulator bug: {int(early.sum())} {table_name} rows are "
                                   "dated before their account signs up")
        parts, withheld[table_name] = _split(table, day, series.days)
        for name, part in zip(names, parts):
            write_parquet(stage / name / f"{table_name}.parquet", part)
            rows[name][table_name] = part.num_rows
    return rows, withheld


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, tz=timezone.utc)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _campaign_first_events(truth: pa.Table, first: np.ndarray,
                           campaigns: list[str]) -> dict[str, int]:
    """Earliest event of each campaign's fakes (microseconds), in campaign order."""
    campaign = np.asarray(truth["campaign"].to_numpy(zero_copy_only=False), dtype=object)
    out: dict[str, int] = {}
    for name in campaigns:
        times = first[(campaign == name) & (first >= 0)]
        if times.size:
            out[name] = int(times.min())
    return out


def simulate_deliveries(
    out_dir: str | os.PathLike[str],
    *,
    accounts: int,
    scenario: str | Scenario,
    seed: int,
    days: int,
    events_scale: float = 1.0,
    start_day: int | None = None,
    progress: bool = False,
) -> DeliveriesSummary:
    """Simulate one world and write it as ``day-000`` plus ``days`` daily deliveries.

    ``start_day`` is the day of the 180-day window on which ``day-001`` begins; by default
    ``default_start_day`` puts the youngest campaign's first event a third into the series.
    Also writes ``truth.parquet`` and ``deliveries.json`` (evaluation only, never ingested).
    """
    began = time.perf_counter()
    out = Path(out_dir)
    _check_args(out, days, start_day)
    get_scenario(scenario)
    fresh = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        summary = _simulate_into(out, accounts=accounts, scenario=scenario, seed=seed,
                                 days=days, events_scale=events_scale, start_day=start_day,
                                 progress=progress)
    except BaseException:
        if fresh:   # leave nothing behind for a rerun to trip over
            shutil.rmtree(out, ignore_errors=True)
        raise
    return replace(summary, elapsed_s=time.perf_counter() - began)


def _simulate_into(out: Path, *, accounts: int, scenario: str | Scenario, seed: int, days: int,
                   events_scale: float, start_day: int | None,
                   progress: bool) -> DeliveriesSummary:
    """The work of ``simulate_deliveries`` once its arguments are checked."""
    with tempfile.TemporaryDirectory(prefix=".simulating-", dir=out) as tmp:
        world = simulate_platform(Path(tmp) / "world", accounts=accounts, scenario=scenario,
                                  seed=seed, events_scale=events_scale, progress=progress)
        src = world.out_dir
        gt = pq.read_table(src / "ground_truth.parquet")
        signups = pq.read_table(src / "accounts.parquet", columns=["account_id", "created_at"])
        if not signups["account_id"].equals(gt["account_id"]):
            raise RuntimeError("simulator bug: ground truth is not in the accounts' order")
        created = _micros(signups["created_at"])
        first = _first_events(src, gt["account_id"].combine_chunks())
        campaign_first = _campaign_first_events(gt, first, list(world.fakes_per_campaign))
        if start_day is None:
            youngest = max(campaign_first.values())
            start_day = default_start_day((youngest - _WORLD_START_US) // _US_PER_DAY, days)
        series = _Series(_WORLD_START_US + int(start_day) * _US_PER_DAY, days)
        account_day = series.day_of(created)

        stage = Path(tmp) / "deliveries"
        rows, withheld = _write_days(src, stage, series, account_day, progress)
        delivered = np.where(account_day <= days, account_day, -1)
        truth = pa.table([*gt.columns, pa.array(created, TIMESTAMP),
                          pa.array(first, TIMESTAMP, mask=first < 0),
                          pa.array(delivered, mask=delivered < 0)], schema=TRUTH)
        write_parquet(stage / TRUTH_FILE, truth)
        summary = DeliveriesSummary(
            out_dir=out, scenario=world.scenario, seed=world.seed, accounts=world.accounts,
            events_scale=world.events_scale, days=days, start_day=int(start_day),
            series_start=_utc(series.start), rows=rows, withheld=withheld,
            fakes_per_campaign=world.fakes_per_campaign,
            lookalikes=world.lookalikes, company_teams=world.company_teams,
            campaign_first_event={c: _utc(t) for c, t in campaign_first.items()},
            campaign_first_day={c: _delivered(series, t) for c, t in campaign_first.items()},
            elapsed_s=0.0)
        (stage / MANIFEST_FILE).write_text(json.dumps(_manifest(summary), indent=2) + "\n")
        for entry in sorted(stage.iterdir()):
            os.replace(entry, out / entry.name)
    return summary


def _manifest(summary: DeliveriesSummary) -> dict[str, Any]:
    """deliveries.json: what a replay of the series needs to know, without ground truth rows."""
    end = summary.series_start + timedelta(days=summary.days)
    return {
        "days": summary.days, "start_day": summary.start_day,
        "day_1_start": _iso(summary.series_start), "series_end": _iso(end),
        "scenario": summary.scenario, "seed": summary.seed, "accounts": summary.accounts,
        "events_scale": summary.events_scale, "rows": summary.rows, "withheld": summary.withheld,
        "campaigns": {c: {"fakes": summary.fakes_per_campaign[c], "first_event_at": _iso(at),
                          "first_event_day": summary.campaign_first_day[c]}
                      for c, at in summary.campaign_first_event.items()},
        "lookalikes": {**summary.lookalikes, "company_teams": summary.company_teams},
    }


def _delivered(series: _Series, us: int) -> int | None:
    day = int(series.day_of(np.array([us]))[0])
    return day if day <= series.days else None
