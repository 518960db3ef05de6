"""`sybilgnn neo4j query` against the real server: table and JSON output, read-only."""

from __future__ import annotations

import json

import pytest

from sybilgnn.cli import main
from sybilgnn.config import Settings

pytestmark = pytest.mark.neo4j


def _flags(settings: Settings) -> list[str]:
    n = settings.neo4j
    return [f"--set=neo4j.bolt_port={n.bolt_port}", f"--set=neo4j.password_file={n.password_file}"]


def test_query_prints_json_lines_with_params(neo4j_settings, neo4j_driver, capsys) -> None:
    neo4j_driver.execute_query(
        "UNWIND ['a1','a2','a3'] AS id CREATE (:Account {account_id: id, n: 2})")
    main(_flags(neo4j_settings) + [
        "neo4j", "query", "MATCH (a:Account) WHERE a.account_id <> $skip "
        "RETURN a.account_id AS id, a.n AS n ORDER BY id", "--param", "skip=a2", "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line) for line in lines] == [{"id": "a1", "n": 2}, {"id": "a3", "n": 2}]


def test_query_table_and_write_refused(neo4j_settings, neo4j_driver, capsys) -> None:
    main(_flags(neo4j_settings) + ["neo4j", "query", "RETURN 1 AS one, 'x' AS s"])
    assert capsys.readouterr().out.splitlines() == ["one | s", "----+--", "1   | x", "(1 row)"]
    with pytest.raises(SystemExit) as exit_info:
        main(_flags(neo4j_settings) + ["neo4j", "query", "CREATE (:Account {account_id: 'w'})"])
    assert exit_info.value.code == 2
    assert "Writing in read access mode not allowed" in capsys.readouterr().err
    records, _, _ = neo4j_driver.execute_query("MATCH (a:Account {account_id: 'w'}) RETURN a")
    assert records == []


def test_status_names_the_procedures_jar(neo4j_settings, neo4j_server, capsys) -> None:
    from sybilgnn.neo4j.plugin import PLUGIN_PREFIX, _source_digest

    n = neo4j_settings.neo4j
    main(_flags(neo4j_settings) + [f"--set=neo4j.home={n.home}",
                                    f"--set=neo4j.lib_dir={n.lib_dir}", "neo4j", "status"])
    out = capsys.readouterr().out
    assert out.startswith("neo4j running") and "bolt:" in out
    assert out.rstrip().endswith(f"procedures: {PLUGIN_PREFIX}{_source_digest()}.jar")
