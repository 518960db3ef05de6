"""Bulk first load through ``neo4j-admin database import``: same graph as the Cypher path.

The test restarts the session's server (that is what a bulk load does), so it opens its own
drivers around the import instead of holding one across it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.ingest import ingest_directory
from sybilgnn.ingest.schema import CONSTRAINTS
from sybilgnn.neo4j.connection import open_driver
from sybilgnn.simulate import simulate_platform
from tests.conftest import wipe_database
from tests.ingest.test_ingest import _counts, _graph_dump
from tests.ingest.world import day1_tables, day2_tables, write_tables

pytestmark = pytest.mark.neo4j


def _simulated_world(directory: Path) -> Path:
    """A small simulated platform plus cells the CSV writer must quote and escape."""
    simulate_platform(directory, accounts=400, scenario="easy", seed=11)
    labels_path = directory / "labels.parquet"
    labels = pd.read_parquet(labels_path)
    labels.loc[labels.index[0], "source"] = 'review, "tier 2"'
    labels.loc[labels.index[1], "source"] = "line one\nline two"
    labels.to_parquet(labels_path, index=False)
    return directory


def _with_ingest(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"ingest": settings.ingest.model_copy(update=changes)})


def test_small_first_load_stays_transactional(neo4j_settings: Settings, neo4j_driver: Any,
                                              tmp_path: Path) -> None:
    """Below ``bulk_min_rows`` a restart costs more than it saves; a caller's driver, or
    mode=transactional, never restarts the server."""
    day1 = write_tables(tmp_path / "day1", day1_tables())
    assert ingest_directory(neo4j_settings, day1).mode == "transactional"
    wipe_database(neo4j_driver)
    forced = _with_ingest(neo4j_settings, mode="transactional", bulk_min_rows=0)
    assert ingest_directory(forced, day1).mode == "transactional"
    wipe_database(neo4j_driver)
    with pytest.raises(InputError, match="caller's driver"):
        ingest_directory(_with_ingest(neo4j_settings, mode="bulk"), day1, driver=neo4j_driver)
    assert _counts(neo4j_driver)["Account"] == 0


def test_bulk_load_matches_transactional_load(neo4j_settings: Settings, neo4j_driver: Any,
                                              tmp_path: Path) -> None:
    world = _simulated_world(tmp_path / "world")
    reference = ingest_directory(neo4j_settings, world, driver=neo4j_driver)
    assert reference.mode == "transactional"
    expected_dump, expected_counts = _graph_dump(neo4j_driver), _counts(neo4j_driver)
    wipe_database(neo4j_driver)
    neo4j_driver.close()

    summary = ingest_directory(_with_ingest(neo4j_settings, bulk_min_rows=0), world)

    assert summary.mode == "bulk"
    assert summary.nodes == reference.nodes
    assert summary.relationships == reference.relationships
    assert summary.features_updated == reference.features_updated
    assert {t: (s.rows_loaded, s.rows_quarantined) for t, s in summary.tables.items()} == \
        {t: (s.rows_loaded, s.rows_quarantined) for t, s in reference.tables.items()}
    with open_driver(neo4j_settings) as driver:
        assert _counts(driver) == expected_counts
        assert _graph_dump(driver) == expected_dump
        names = {r["name"] for r in driver.execute_query("SHOW CONSTRAINTS YIELD name").records}
        assert names == {name for name, _, _ in CONSTRAINTS}
        sources = driver.execute_query(
            "MATCH (a:Account) WHERE a.label_source CONTAINS 'tier' OR a.label_source "
            "CONTAINS 'line' RETURN a.label_source AS s ORDER BY s").records
        assert [r["s"] for r in sources] == ["line one\nline two", 'review, "tier 2"']

    # the ledger came with it: the same delivery again is a no-op, a later one is a delta
    again = ingest_directory(neo4j_settings, world)
    assert again.mode == "transactional"
    assert {s.status for s in again.tables.values()} == {"skipped"}
    day2 = write_tables(tmp_path / "day2", day2_tables())
    with pytest.raises(InputError, match="already holds"):
        ingest_directory(_with_ingest(neo4j_settings, mode="bulk"), day2)
    with open_driver(neo4j_settings) as driver:
        assert _counts(driver) == expected_counts
