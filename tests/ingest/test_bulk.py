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
from sybilgnn.ingest import IngestSummary, ingest_directory
from sybilgnn.ingest.bulk import BulkImportError, _NodeIds, _write_csv, import_stages
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
    expected_dump = _graph_dump(neo4j_driver, change_stamps=False)
    expected_counts = _counts(neo4j_driver)
    wipe_database(neo4j_driver)
    neo4j_driver.close()

    summary = ingest_directory(_with_ingest(neo4j_settings, bulk_min_rows=0), world)

    assert summary.mode == "bulk"
    assert set(summary.import_stages) == {"node import", "relationship import",
                                          "relationship linking", "post processing",
                                          "tool total"}
    assert summary.import_stages["tool total"] > 0
    tool_lines = [line for line in summary.lines() if line.startswith("neo4j-admin import: ")]
    assert len(tool_lines) == 1 and " tool total " in tool_lines[0]
    assert summary.nodes == reference.nodes
    assert summary.relationships == reference.relationships
    assert summary.features_updated == reference.features_updated
    assert {t: (s.rows_loaded, s.rows_quarantined) for t, s in summary.tables.items()} == \
        {t: (s.rows_loaded, s.rows_quarantined) for t, s in reference.tables.items()}
    with open_driver(neo4j_settings) as driver:
        assert _counts(driver) == expected_counts
        assert _graph_dump(driver, change_stamps=False) == expected_dump
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


def test_import_stage_times_are_read_from_the_tool_report() -> None:
    report = "\n".join([
        "(1/4) Node import 2026-11-29 09:28:37.584+0000",
        "Node import COMPLETED in 10s 476ms",
        "(2/4) Relationship import 2026-11-29 09:28:48.061+0000",
        "Relationship import COMPLETED in 1m 7s 62ms",
        "-......... ..........   5% ∆834ms [834ms]",
        "Relationship linking COMPLETED in 822ms",
        "Post processing COMPLETED in 1h 2s",
        "IMPORT DONE in 1m 23s 238ms. ",
        "Imported:",
    ])
    assert import_stages(report) == {"node import": 10.476, "relationship import": 67.062,
                                     "relationship linking": 0.822,
                                     "post processing": 3602.0, "tool total": 83.238}
    assert import_stages("neo4j-admin printed nothing we know") == {}
    summary = IngestSummary(Path("day1"), mode="bulk",
                            import_stages={"node import": 10.476, "tool total": 23.238})
    assert "neo4j-admin import: node import 10.5s, tool total 23.2s" in summary.lines()
    assert not any(line.startswith("neo4j-admin") for line in IngestSummary(Path("d")).lines())


def test_import_csv_cells(tmp_path: Path) -> None:
    """Missing values of every kind are empty unquoted cells (no property); strings are
    quoted with embedded quotes doubled; lists join with the array delimiter."""
    frame = pd.DataFrame({
        "key": ["a", 'say "hi"', "x,y"],
        "when": [1712189334123, None, 0],
        "n": pd.array([3, None, -1], dtype="Int64"),
        "score": [0.25, float("nan"), 48050378058244.0],
        "flag": [True, None, False],
        "days": [[20577, 20657], [], None],
        "plan": pd.Categorical(["pro", None, "free"]),
        "mixed": [7, None, "text"],
    })
    types = {"key": "string", "when": "datetime", "n": "long", "score": "double",
             "flag": "boolean", "days": "long[]", "plan": "string", "mixed": "string"}
    header = {c: c for c in frame.columns}
    header["key"] = "key:ID(Thing)"
    path = tmp_path / "things.csv"
    assert _write_csv(path, frame, header, types) is False
    assert path.read_text().splitlines() == [
        "key:ID(Thing),when:datetime,n:long,score:double,flag:boolean,days:long[],plan,mixed",
        '"a","2024-04-04T00:08:54.123Z",3,0.25,true,"20577;20657","pro","7"',
        '"say ""hi""",,,,,,,',
        '"x,y","1970-01-01T00:00:00.000Z",-1,4.8050378058244e+13,false,,"free","text"',
    ]
    frame.loc[1, "key"] = "two\nlines"
    assert _write_csv(path, frame, header, types) is True


def test_node_ids_are_dense_blocks_and_unknown_ends_fail() -> None:
    """``--id-type=actual``: each label's keys take the next block of store ids; a
    relationship end outside every block, or a repeated key, is an error, not a bad import."""
    ids = _NodeIds()
    assert ids.assign("Account", pd.Series(["a", "b", "c"])).tolist() == [0, 1, 2]
    assert ids.assign("IP", pd.Series(["ip1", "ip2"])).tolist() == [3, 4]
    assert ids.lookup("IP", pd.Series(["ip2", "ip1", "ip2"]), "USED_IP").tolist() == [4, 3, 4]
    assert ids.lookup("Account", pd.Series(["c", "a"]), "USED_IP").tolist() == [2, 0]
    with pytest.raises(BulkImportError, match="USED_IP names IP 'ip9'"):
        ids.lookup("IP", pd.Series(["ip1", "ip9"]), "USED_IP")
    with pytest.raises(BulkImportError, match="PaymentInstrument keys are not unique"):
        ids.assign("PaymentInstrument", pd.Series(["p", "p"]))
