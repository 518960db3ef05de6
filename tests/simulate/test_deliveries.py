"""Daily deliveries: the same world as simulate_platform, cut by time, nothing lost or early."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sybilgnn.cli import main
from sybilgnn.errors import InputError
from sybilgnn.simulate import WORLD_DAYS, default_start_day, simulate_deliveries
from tests.simulate.measures import TABLE_NAMES

ARGS: dict[str, Any] = {"accounts": 1500, "scenario": "medium", "seed": 11, "events_scale": 0.2}
DATED_BY = {"accounts": "created_at", "labels": "labelled_at", "ip_events": "timestamp",
            "payments": "timestamp", "prompts": "timestamp"}
EVENTS = ("ip_events", "payments", "prompts")
DAY = pd.Timedelta(days=1)
WORLD_END = pd.Timestamp("2026-10-01", tz="UTC")
WORLD_START = WORLD_END - WORLD_DAYS * DAY


@pytest.fixture(scope="module")
def world(simulated):
    return simulated(**ARGS)


@pytest.fixture(scope="module")
def default_series(tmp_path_factory):
    """14 days, default start day: the youngest campaign starts inside the series."""
    return simulate_deliveries(tmp_path_factory.mktemp("deliv") / "d14", days=14, **ARGS)


@pytest.fixture(scope="module")
def closing_series(tmp_path_factory):
    """The last 10 days of the window: every row of the world is delivered."""
    return simulate_deliveries(tmp_path_factory.mktemp("deliv") / "last10", days=10,
                               start_day=WORLD_DAYS - 10, **ARGS)


def _days(out: Path, table: str) -> pd.DataFrame:
    """All deliveries of one table, with the delivery number in a ``day`` column."""
    parts = [pd.read_parquet(d / f"{table}.parquet").assign(day=int(d.name[4:]))
             for d in sorted(out.glob("day-*"))]
    return pd.concat(parts, ignore_index=True)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def test_a_series_that_ends_with_the_world_holds_every_row_once(world, closing_series) -> None:
    out = closing_series.out_dir
    for table in TABLE_NAMES:
        union = _days(out, table).drop(columns="day")
        pd.testing.assert_frame_equal(_sorted(union), _sorted(world[table]), obj=table)
    assert closing_series.withheld == dict.fromkeys(closing_series.withheld, 0)
    # 5 sessions are stamped at the world's last instant: in the final day
    last = _days(out, "ip_events").query("day == 10")
    assert int((last.timestamp == WORLD_END).sum()) == 5


def test_the_default_series_withholds_only_rows_after_its_end(world, default_series) -> None:
    end = WORLD_START + (default_series.start_day + 14) * DAY
    # labels: 25 of the platform's own and 38 of the prevalence audit, dated after the end
    expected = {"accounts": 150, "ground_truth": 150, "labels": 63, "ip_events": 1793,
                "payments": 1296, "prompts": 2030}
    assert default_series.withheld == expected
    for table, column in DATED_BY.items():
        union = _days(default_series.out_dir, table).drop(columns="day")
        kept = world[table][world[table][column] < end]
        pd.testing.assert_frame_equal(_sorted(union), _sorted(kept), obj=table)
        assert len(world[table]) - len(kept) == expected[table]


def test_every_row_falls_in_its_days_window(default_series) -> None:
    start = WORLD_START + default_series.start_day * DAY
    assert start == pd.Timestamp("2026-07-18", tz="UTC") == default_series.series_start
    for table, column in DATED_BY.items():
        rows = _days(default_series.out_dir, table)
        base, daily = rows[rows.day == 0], rows[rows.day > 0]
        assert (base[column] < start).all(), table
        assert (daily[column] >= start + (daily.day - 1) * DAY).all(), table
        assert (daily[column] < start + daily.day * DAY).all(), table
        counts = rows.groupby("day").size().reindex(range(15), fill_value=0).tolist()
        assert counts == [default_series.rows[f"day-{d:03d}"][table] for d in range(15)]
    assert default_series.accounts_per_delivery == [1291, 3, 2, 2, 3, 6, 22, 4, 1, 4, 1, 5, 2, 1, 3]


def test_no_row_references_an_account_not_yet_delivered(default_series) -> None:
    out = default_series.out_dir
    delivered = _days(out, "accounts").set_index("account_id").day
    truth = _days(out, "ground_truth")
    assert truth.set_index("account_id").day.equals(delivered)
    for table in ("labels", *EVENTS):
        rows = _days(out, table)
        account_day = rows.account_id.map(delivered)
        assert account_day.notna().all() and (account_day <= rows.day).all(), table


def test_default_start_day_makes_the_youngest_campaign_start_mid_series(default_series) -> None:
    # agentic_coding starts on day 110 of the window: day-001 is 5 (= round(14 / 3)) days earlier
    assert default_series.start_day == 105
    assert default_series.campaign_first_day == {
        "cot_elicitation": 0, "agentic_reasoning": 0, "agentic_coding": 6}
    out = default_series.out_dir
    coding = set(_days(out, "ground_truth").query("campaign == 'agentic_coding'").account_id)
    events = pd.concat([_days(out, t)[["account_id", "timestamp", "day"]] for t in EVENTS])
    coding_events = events[events.account_id.isin(coding)]
    first = coding_events.loc[coding_events.timestamp.idxmin()]
    assert first.day == 6 and first.timestamp == pd.Timestamp("2026-07-23 02:26:02", tz="UTC")
    assert int(coding_events.day.min()) == 6
    assert [default_start_day(110, d) for d in (1, 2, 3, 7, 14, 30, 120, 180)] == \
        [110, 109, 109, 108, 105, 100, 60, 0]
    assert default_start_day(0, 7) == 1   # clamped: day-000 always holds a day of the window


def test_manifest_and_truth(default_series) -> None:
    out = default_series.out_dir
    manifest = json.loads((out / "deliveries.json").read_text())
    assert {k: manifest[k] for k in ("days", "start_day", "day_1_start", "series_end", "seed",
                                     "scenario", "accounts")} == {
        "days": 14, "start_day": 105, "day_1_start": "2026-07-18T00:00:00Z",
        "series_end": "2026-08-01T00:00:00Z", "seed": 11, "scenario": "medium", "accounts": 1500}
    assert manifest["rows"] == default_series.rows and len(manifest["rows"]) == 15
    assert manifest["campaigns"]["agentic_coding"] == {
        "fakes": 23, "first_event_at": "2026-07-23T02:26:02Z", "first_event_day": 6}
    # round(1,464 legit x 0.005) script developers; 1,500 x 0.005 / 25 rounds to no team
    assert manifest["lookalikes"] == {"company_team": 0, "script_developer": 7, "company_teams": 0}
    truth = pd.read_parquet(out / "truth.parquet")
    assert list(truth.columns) == ["account_id", "is_fake", "campaign", "fleet", "lookalike",
                                   "team", "created_at", "first_event_at", "delivered_day"]
    assert len(truth) == 1500 and int(truth.is_fake.sum()) == 36
    assert truth.lookalike.value_counts().to_dict() == {"": 1493, "script_developer": 7}
    assert (truth.team == "").all()
    assert int(truth.delivered_day.isna().sum()) == 150
    delivered = _days(out, "accounts").set_index("account_id").day
    assert truth.dropna(subset="delivered_day").set_index("account_id").delivered_day \
        .astype(int).equals(delivered.rename("delivered_day"))
    assert sorted(p.name for p in out.iterdir()) == \
        [f"day-{d:03d}" for d in range(15)] + ["deliveries.json", "truth.parquet"]


def test_same_arguments_give_byte_identical_files(default_series, tmp_path) -> None:
    again = simulate_deliveries(tmp_path / "again", days=14, **ARGS)
    files = sorted(p.relative_to(default_series.out_dir)
                   for p in default_series.out_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.out_dir)
                           for p in again.out_dir.rglob("*") if p.is_file())
    assert len(files) == 15 * 6 + 2
    for name in files:
        assert (again.out_dir / name).read_bytes() == \
            (default_series.out_dir / name).read_bytes(), name


@pytest.mark.parametrize(("days", "start_day", "message"), [
    (0, None, "--days 0: give a whole number of days from 1 to 180 (the simulated window)"),
    (181, None, "--days 181: give a whole number of days from 1 to 180 (the simulated window)"),
    (10, -1, "--start-day -1: a 10-day series must begin on day 0 to 170 of the 180-day window "
             "so that it ends inside it"),
    (10, 171, "--start-day 171: a 10-day series must begin on day 0 to 170 of the 180-day "
              "window so that it ends inside it"),
])
def test_bad_arguments_are_input_errors(tmp_path, days, start_day, message) -> None:
    with pytest.raises(InputError) as err:
        simulate_deliveries(tmp_path / "x", days=days, start_day=start_day, **ARGS)
    assert str(err.value) == message
    assert not (tmp_path / "x").exists()


def test_an_out_dir_holding_deliveries_is_refused(tmp_path) -> None:
    (tmp_path / "out" / "day-000").mkdir(parents=True)
    with pytest.raises(InputError, match=r"already holds deliveries \(day-000\); remove them"):
        simulate_deliveries(tmp_path / "out", days=3, **ARGS)
    with pytest.raises(InputError, match="simulate at least 100 accounts"):
        simulate_deliveries(tmp_path / "new", days=3, **{**ARGS, "accounts": 50})
    assert not (tmp_path / "new").exists()   # a failed run leaves no folder behind


def test_cli_days_writes_deliveries_and_reports(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    main(["simulate", "--accounts", "1500", "--seed", "11", "--events-scale", "0.2",
          "--days", "14", "--out", "d"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("simulated 1,500 accounts (36 fake) scenario medium seed 11 as 14 "
                               "daily deliveries from 2026-07-18 (world day 105) in ")
    assert lines[1].split() == ["day-000", "(before", "the", "series)", "1,291", "accounts",
                                "5,555", "events", "49", "labels"]
    assert lines[2].startswith("  day-001..day-014  1-22 new accounts a day, ")
    assert lines[3] == ("  benign look-alikes (legit): 0 company-team members in 0 teams, "
                        "7 script developers")
    assert lines[6] == "  agentic_coding        first event 2026-07-23 02:26 UTC: starts in day-006"
    assert len(list((tmp_path / "d").glob("day-*"))) == 15


def test_cli_start_day_needs_days(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--accounts", "300", "--start-day", "5", "--out", "x"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == \
        "error: --start-day places a series of daily deliveries; give --days too"


@pytest.mark.neo4j
def test_base_load_then_two_days_ingest_cleanly(default_series, neo4j_settings, neo4j_driver,
                                                tmp_path) -> None:
    from sybilgnn.ingest.pipeline import ingest_directory

    for day in ("day-000", "day-001", "day-002"):   # copies: ingest writes _quarantine/ there
        directory = shutil.copytree(default_series.out_dir / day, tmp_path / day)
        summary = ingest_directory(neo4j_settings, directory, driver=neo4j_driver)
        assert summary.rows_quarantined == 0, day
    accounts = neo4j_driver.execute_query("MATCH (a:Account) RETURN count(a) AS c").records[0]["c"]
    assert accounts == 1291 + 3 + 2 == sum(default_series.accounts_per_delivery[:3])
