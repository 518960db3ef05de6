"""A small multi-day replay against the real Neo4j: the day-0 champion scores every later
day, a country first seen on day 3 scores, nothing outside the reach of a change flips, and
the campaign that starts mid-series is flagged within two days of its first event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sybilgnn.config import Settings
from sybilgnn.replay import run_replay
from sybilgnn.simulate import simulate_deliveries
from sybilgnn.simulate.vocab import COUNTRIES
from tests.conftest import isolated_settings

pytestmark = pytest.mark.neo4j

NEW_COUNTRY = "IS"  # the simulator never draws it


def _move_day_to_new_country(folder: Path) -> int:
    """Every account delivered in ``folder`` signs up from a country training never saw."""
    path = folder / "accounts.parquet"
    table = pq.read_table(path)
    index = table.schema.get_field_index("country")
    column = pa.array([NEW_COUNTRY] * table.num_rows, type=table.schema.field("country").type)
    pq.write_table(table.set_column(index, table.schema.field("country"), column), path)
    return table.num_rows


def test_replay_scores_every_day_with_the_day_zero_champion(
        neo4j_driver: Any, neo4j_settings: Settings, tmp_path: Path) -> None:
    assert NEW_COUNTRY not in COUNTRIES
    summary = simulate_deliveries(tmp_path / "deliveries", accounts=8000, scenario="medium",
                                  seed=3, days=5, events_scale=0.15)
    assert summary.campaign_first_day == {"cot_elicitation": 0, "agentic_reasoning": 0,
                                          "agentic_coding": 3}
    moved = _move_day_to_new_country(tmp_path / "deliveries" / "day-003")
    assert moved > 0

    settings = isolated_settings(neo4j_settings, tmp_path, "replay-test")
    settings.train.epochs = 60
    settings.train.leave_one_campaign_out = False  # measured in tests/evaluation; time

    lines: list[str] = []
    replay = run_replay(settings, tmp_path / "deliveries", retrain_every=100, trials=0,
                        out_dir=tmp_path / "out", say=lines.append)

    assert [d.day for d in replay.days] == [0, 1, 2, 3, 4, 5]
    assert [d.retrain for d in replay.days] == ["promoted", "", "", "", "", ""]
    assert {d.model_version for d in replay.days} == {"1"}  # day-0's champion, every day
    assert all(d.quarantined == 0 for d in replay.days)
    delivered = summary.accounts_per_delivery
    assert [d.new_accounts for d in replay.days] == delivered
    assert replay.days[-1].accounts == sum(delivered)
    # Nothing flips unless its data or a neighbour's within the model's reach changed, and
    # that check is not vacuous: on later days some accounts are out of reach.
    assert [d.flips_without_new_data for d in replay.days] == [0] * 6
    assert all(d.within_reach_of_changes < d.accounts for d in replay.days[1:])
    # The new country is scored (through <other>) and shows up as drift on the run.
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (a:Account {country: $c}) RETURN count(a) AS n, "
        "count(a.sybil_score) AS scored, collect(DISTINCT a.model_version) AS versions",
        c=NEW_COUNTRY)
    assert (records[0]["n"], records[0]["scored"], records[0]["versions"]) == (moved, moved, ["1"])
    runs, _, _ = neo4j_driver.execute_query(
        "MATCH (r:ScoringRun) RETURN r.drift_inputs AS inputs, r.drift_psi AS psi "
        "ORDER BY r.started_at")
    assert len(runs) == 6
    country_psi = [dict(zip(r["inputs"], r["psi"]))["account.country"] for r in runs]
    assert country_psi[3] > country_psi[2]
    # The campaign that began on day 3, after the only training, is flagged within 2 days.
    coding = [f for f in replay.fleets if f.campaign == "agentic_coding"]
    assert coding and all(f.first_event_day == 3 for f in coding)
    assert all(f.delay_days is not None and f.delay_days <= 2 for f in coding)
    assert replay.campaigns["agentic_coding"]["worst_delay_days"] <= 2

    days = pd.read_csv(tmp_path / "out" / "days.csv")
    assert days["day"].tolist() == [0, 1, 2, 3, 4, 5]
    assert (tmp_path / "out" / "fleets.csv").is_file()
    assert len(lines) == 6 and lines[3].startswith("[day   3]")
