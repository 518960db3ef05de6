"""Bad rows go to the quarantine CSV with file, row, column and reason; good rows still load."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.ingest import ingest_directory
from sybilgnn.ingest.tables import find_tables, read_table, validate_table

T = "2024-01-02T00:00:00Z"
FILES = {
    "accounts.csv": ["account_id,created_at,country,plan",
                     "a1,2024-01-01T00:00:00Z,US,free",
                     ",2024-01-01T00:00:00Z,US,free",
                     "a3,not-a-date,US,free",
                     "a4,2024-01-01T00:00:00Z,US,gold"],
    "labels.csv": ["account_id,label,source,labelled_at",
                   f"a1,2,manual,{T}",
                   f"zz,1,manual,{T}",
                   f"a1,1,manual,{T}"],
    "ip_events.csv": ["account_id,ip,timestamp,asn,is_datacenter",
                      "a1,10.0.0.1,yesterday,100,false",
                      f"a9,10.0.0.1,{T},100,false",
                      f"a1,not-an-ip,{T},100,false",
                      f"a1,10.0.0.1,{T},abc,false",
                      f"a1,10.0.0.1,{T},100,maybe",
                      f"a1,10.0.0.1,{T},100,true"],
    "prompts.csv": ["account_id,timestamp,text",
                    f"a1,{T},",
                    f"a3,{T},hello",
                    f"a1,{T},hello"],
}
EXPECTED = [
    ("accounts", "accounts.csv", "2", "account_id", "missing value", ""),
    ("accounts", "accounts.csv", "3", "created_at",
     "unparsable timestamp (expected ISO-8601 UTC)", "not-a-date"),
    ("accounts", "accounts.csv", "4", "plan", "not one of ['api', 'free', 'pro', 'team']", "gold"),
    ("ip_events", "ip_events.csv", "1", "timestamp",
     "unparsable timestamp (expected ISO-8601 UTC)", "yesterday"),
    ("ip_events", "ip_events.csv", "2", "account_id",
     "unknown account_id (not in accounts table nor in the graph)", ""),
    ("ip_events", "ip_events.csv", "3", "ip", "not an IPv4/IPv6 address", "<redacted>"),
    ("ip_events", "ip_events.csv", "4", "asn", "not an integer", "abc"),
    ("ip_events", "ip_events.csv", "5", "is_datacenter", "not a boolean (true/false/1/0)", "maybe"),
    ("labels", "labels.csv", "1", "label", "label must be 0 (legit) or 1 (fake)", "2"),
    ("labels", "labels.csv", "2", "account_id",
     "unknown account_id (not in accounts table nor in the graph)", ""),
    ("prompts", "prompts.csv", "1", "text", "missing value", ""),
    ("prompts", "prompts.csv", "2", "account_id",
     "unknown account_id (not in accounts table nor in the graph)", ""),
]


def _write(directory: Path, files: dict[str, list[str]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (directory / name).write_text("\n".join(lines) + "\n")
    return directory


@pytest.mark.neo4j
def test_bad_rows_are_quarantined_and_good_rows_load(neo4j_settings: Settings, neo4j_driver: Any,
                                                     tmp_path: Path) -> None:
    directory = _write(tmp_path / "in", FILES)
    summary = ingest_directory(neo4j_settings, directory, driver=neo4j_driver)
    assert summary.quarantine_file == directory / "_quarantine" / "quarantine.csv"
    with summary.quarantine_file.open() as handle:
        rows = [tuple(r.values()) for r in csv.DictReader(handle)]
    assert sorted(rows) == sorted(EXPECTED)
    assert {t: (s.rows_read, s.rows_loaded, s.rows_quarantined)
            for t, s in summary.tables.items()} == {
        "accounts": (4, 1, 3), "labels": (3, 1, 2), "ip_events": (6, 1, 5), "prompts": (3, 1, 2)}
    assert "ip_events  ip_events.csv: 6 rows, 1 loaded, 5 quarantined" in summary.lines()
    record = neo4j_driver.execute_query(
        "MATCH (a:Account)-[r:USED_IP]->(i:IP) RETURN a.account_id AS a, a.label AS label, "
        "r.n_events AS n, i.is_datacenter AS dc, a.f_n_prompts AS p").records
    assert [dict(r) for r in record] == [{"a": "a1", "label": 1, "n": 1, "dc": True, "p": 1}]
    assert "10.0.0.1" not in summary.quarantine_file.read_text()


def test_missing_column_and_missing_accounts_table_are_input_errors(tmp_path: Path) -> None:
    directory = _write(tmp_path / "bad", {"accounts.csv": ["account_id,created_at,country",
                                                           "a1,2024-01-01T00:00:00Z,US"]})
    table = find_tables(directory)[0]
    with pytest.raises(InputError, match=r"accounts.csv: missing required column\(s\) plan"):
        validate_table("accounts", table.path, read_table(table.path), digest="x", num_perm=64)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no accounts.parquet or accounts.csv"):
        find_tables(empty)


def test_minhash_column_is_validated(tmp_path: Path) -> None:
    directory = _write(tmp_path / "m", {"prompts.csv": [
        "account_id,timestamp,minhash", f"a1,{T},\"[1, 2, 3, 4]\"", f"a1,{T},\"[1, 2]\"",
        f"a1,{T},not-json"]})
    path = directory / "prompts.csv"
    result = validate_table("prompts", path, read_table(path), digest="x", num_perm=4)
    assert result.clean["minhash"].tolist() == [[1, 2, 3, 4]]
    assert [(r["row"], r["column"]) for r in result.quarantine] == [(2, "minhash"), (3, "minhash")]
