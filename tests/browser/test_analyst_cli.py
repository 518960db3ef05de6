"""The analysts' verbs through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sybilgnn.cli import cli
from sybilgnn.config import Settings

pytestmark = pytest.mark.neo4j


def _args(settings: Settings) -> list[str]:
    n = settings.neo4j
    return ["--config", str(Path(__file__).with_name("empty.yaml")),
            "--set", f"neo4j.bolt_port={n.bolt_port}", "--set", f"neo4j.http_port={n.http_port}",
            "--set", f"neo4j.password_file={n.password_file}"]


def test_verdict_and_report_verbs(neo4j_settings: Settings, neo4j_driver: Any,
                                  scored_graph: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, [*_args(neo4j_settings), "verdict", "acct-05", "confirmed",
                             "--analyst", "ana", "--note", "shared card"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("acct-05: confirmed by ana at ")
    bad = runner.invoke(cli, [*_args(neo4j_settings), "verdict", "acct-05", "maybe"])
    assert bad.exit_code == 2 and "'maybe' is not one of 'confirmed', 'false_positive'" in bad.output
    out = tmp_path / "report.html"
    done = runner.invoke(cli, [*_args(neo4j_settings), "report", "run-2", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert f"report written: {out}" in done.output and 'id="n-flagged">14<' in out.read_text()


def test_guide_verb_prints_browser_url_and_commands(neo4j_settings: Settings) -> None:
    result = CliRunner().invoke(cli, [*_args(neo4j_settings), "guide", "--port", "7999"])
    assert result.exit_code == 0, result.output
    assert f"http://127.0.0.1:{neo4j_settings.neo4j.http_port}/browser/" in result.output
    assert ":guide http://localhost:7999/sybilgnn.html" in result.output
    assert ":style http://localhost:7999/style.grass" in result.output
