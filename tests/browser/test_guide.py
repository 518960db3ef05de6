"""Guide page, Markdown twin, style file and the local guide server (no Neo4j needed)."""

from __future__ import annotations

import html
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sybilgnn.browser import (
    GuideServer,
    load_style,
    parse_grass,
    query_by_name,
    render_guide_html,
    render_guide_markdown,
    saved_queries,
    style_for,
    write_guide_files,
)
from sybilgnn.browser.queries import param_line
from sybilgnn.config import Settings
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.neo4j.cypher import SchemaError
from sybilgnn.scoring.bands import BAND_LABELS

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA = GraphSchema.default()


def _schema(export: dict[str, Any]) -> GraphSchema:
    return GraphSchema.from_settings(Settings.model_validate({"export": export}))


#: Users labelled for review, devices they own (a fleet hub pointing at the labelled type)
#: and a direct link between users; verdicts live in properties of their own.
USER_SCHEMA: dict[str, Any] = {
    "nodes": {"user": {"label": "User", "key": "uid"},
              "device": {"label": "Device", "key": "did", "fleet_count": "n_shared_devices"}},
    "relationships": {"owns": {"type": "OWNS", "source": "device", "target": "user"},
                      "invited": {"type": "INVITED", "source": "user", "target": "user"}},
    "labels": {"node_type": "user", "review": "verdict", "review_time": "verdict_at",
               "source": None},
}


def test_guide_has_one_slide_per_query_with_runnable_blocks() -> None:
    page = render_guide_html("http://127.0.0.1:7480", schema=SCHEMA)
    assert '<article class="guide">' in page and "<carousel" in page
    assert page.count("<slide") == 1 + len(saved_queries(SCHEMA))
    runnable = [html.unescape(t) for t in re.findall(r'<pre class="runnable">(.*?)</pre>',
                                                      page, re.S)]
    assert runnable[0] == ":style http://127.0.0.1:7480/style.grass"
    for query in saved_queries(SCHEMA):
        assert query.cypher in runnable
        for line in query.param_lines():
            assert line in runnable
    assert "<script" not in page


def test_param_lines_are_cypher_literals() -> None:
    assert param_line("fleet_id", "F-1") == ':param fleet_id => "F-1"'
    assert param_line("note", None) == ":param note => null"
    assert param_line("limit", 25) == ":param limit => 25"
    with pytest.raises(ValueError, match="not a plain identifier"):
        param_line("x; MATCH (n) DETACH DELETE n", 1)


def test_docs_hold_the_generated_saved_queries() -> None:
    doc = (REPO_ROOT / "docs" / "analyst-guide.md").read_text()
    assert render_guide_markdown(SCHEMA) in doc, (
        "docs/analyst-guide.md is out of date: paste sybilgnn.browser.render_guide_markdown("
        "GraphSchema.default())")


def test_style_parses_and_colours_every_graph_label() -> None:
    rules = parse_grass(load_style())
    for label in ("Account", "Flagged", "Fleet", "IP", "PaymentInstrument"):
        assert "color" in rules[f"node.{label}"], label
    assert rules["node.Flagged"]["color"] == "#E53935"
    sizes = [int(rules[f"node.{band}"]["diameter"].rstrip("px")) for band in BAND_LABELS]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    # Browser applies rules in file order: Flagged must come after Account to win
    order = list(rules)
    assert order.index("node.Flagged") > order.index("node.Account")
    assert rules["node.Fleet"]["caption"] == "{fleet_id}"


def test_parse_grass_rejects_unbalanced_rules() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        parse_grass("node.Account { color: #fff;")


def test_write_guide_files(tmp_path: Path) -> None:
    guide, style = write_guide_files(tmp_path / "site", "https://guides.example.org/sybil",
                                     schema=SCHEMA)
    assert guide.name == "sybilgnn.html" and style.read_text() == load_style()
    assert ":style https://guides.example.org/sybil/style.grass" in guide.read_text()


def test_guide_server_serves_guide_and_style_with_cors() -> None:
    with GuideServer(port=0, schema=SCHEMA) as server:
        with urllib.request.urlopen(server.guide_url, timeout=10) as response:
            body = response.read().decode()
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert response.headers["Content-Type"].startswith("text/html")
        assert f":style {server.style_url}" in html.unescape(body)
        with urllib.request.urlopen(server.style_url, timeout=10) as response:
            assert response.read().decode() == load_style()
        preflight = urllib.request.Request(server.guide_url, method="OPTIONS", headers={
            "Origin": "http://127.0.0.1:7474", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "cache-control, pragma"})
        with urllib.request.urlopen(preflight, timeout=10) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Headers"] == "*"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{server.base_url}/../etc/passwd", timeout=10)
        assert missing.value.code == 404


def test_queries_name_the_labelled_type_hubs_and_verdict_properties_of_the_schema() -> None:
    schema = _schema(USER_SCHEMA)
    queries = {q.name: q for q in saved_queries(schema)}
    text = "\n".join(q.cypher for q in queries.values())
    assert "Account" not in text and "account_id" not in text and "`review`" not in text
    assert queries["account_evidence"].params == {"uid": "uid-0001"}
    assert queries["record_verdict"].cypher.startswith(
        "WITH $verdict IN ['confirmed', 'false_positive'] AS valid\n"
        "OPTIONAL MATCH (a:`User` {`uid`: $uid})\n"
        "FOREACH (_ IN CASE WHEN valid AND a IS NOT NULL THEN [1] ELSE [] END |\n"
        "  SET a.`verdict` = $verdict, a.`verdict_at` = datetime(),\n")
    assert ("       f.`n_shared_devices` AS `shared_devices`,\n"
            in queries["fleets"].cypher)
    # the device points at the user: members reach shared devices against the arrow
    assert ("  MATCH p = (a)<-[:`OWNS`]-(shared)\n"
            "  WHERE COUNT { (shared)-[:`OWNS`]->(other) WHERE other IN members } >= 2\n"
            in queries["fleet_subgraph"].cypher)
    assert "  MATCH p = (a)-[:`INVITED`]->(b)\n" in queries["fleet_subgraph"].cypher
    assert "a.`label` AS label, null AS label_source," in queries["label_conflicts"].cypher
    assert "OPTIONAL MATCH (a:`User` {run_id: cur.run_id})" in queries["changes"].cypher
    with pytest.raises(KeyError, match="no saved query 'nope'; known: fleets, "):
        query_by_name("nope", schema)


def test_configured_names_reach_cypher_only_as_plain_identifiers() -> None:
    bad = {**USER_SCHEMA, "nodes": {**USER_SCHEMA["nodes"],
                                    "user": {"label": "User`) DETACH DELETE (x", "key": "uid"}}}
    with pytest.raises(SchemaError, match="is not a plain identifier"):
        saved_queries(_schema(bad))


def test_style_of_another_schema_styles_its_labelled_type_like_accounts() -> None:
    assert style_for(SCHEMA) == load_style()
    default = parse_grass(load_style())
    rules = parse_grass(style_for(_schema(USER_SCHEMA)))
    assert "node.Account" not in rules
    assert rules["node.User"] == {**default["node.Account"], "caption": "{uid}"}
    # same place in the file: Flagged and the score bands still win over it
    assert list(rules) == [("node.User" if s == "node.Account" else s) for s in default]
    assert {s: r for s, r in rules.items() if s != "node.User"} == {
        s: r for s, r in default.items() if s != "node.Account"}


def test_guide_of_another_schema_serves_its_queries_and_style(tmp_path: Path) -> None:
    schema = _schema(USER_SCHEMA)
    guide, style = write_guide_files(tmp_path, schema=schema)
    page = html.unescape(guide.read_text())
    for query in saved_queries(schema):
        assert query.cypher in page
    assert ":param uid => \"uid-0001\"" in page and "account" not in page.lower()
    assert style.read_text() == style_for(schema)
    with GuideServer(port=0, schema=schema) as server:
        with urllib.request.urlopen(server.style_url, timeout=10) as response:
            assert response.read().decode() == style_for(schema)
