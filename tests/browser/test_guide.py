"""Guide page, Markdown twin, style file and the local guide server (no Neo4j needed)."""

from __future__ import annotations

import html
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sybilgnn.browser import (
    SAVED_QUERIES,
    GuideServer,
    load_style,
    parse_grass,
    render_guide_html,
    render_guide_markdown,
    write_guide_files,
)
from sybilgnn.browser.queries import param_line
from sybilgnn.scoring.bands import BAND_LABELS

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_guide_has_one_slide_per_query_with_runnable_blocks() -> None:
    page = render_guide_html("http://127.0.0.1:7480")
    assert '<article class="guide">' in page and "<carousel" in page
    assert page.count("<slide") == 1 + len(SAVED_QUERIES)
    runnable = [html.unescape(t) for t in re.findall(r'<pre class="runnable">(.*?)</pre>',
                                                      page, re.S)]
    assert runnable[0] == ":style http://127.0.0.1:7480/style.grass"
    for query in SAVED_QUERIES:
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
    assert render_guide_markdown() in doc, (
        "docs/analyst-guide.md is out of date: paste sybilgnn.browser.render_guide_markdown()")


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
    guide, style = write_guide_files(tmp_path / "site", "https://guides.example.org/sybil")
    assert guide.name == "sybilgnn.html" and style.read_text() == load_style()
    assert ":style https://guides.example.org/sybil/style.grass" in guide.read_text()


def test_guide_server_serves_guide_and_style_with_cors() -> None:
    with GuideServer(port=0) as server:
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
