"""Drive the real Neo4j Browser 5 in headless Chromium: log in, load the sybilgnn style and
guide from the local guide server, run the fleet query and check the graph is drawn.

Needs /usr/bin/chromium (scripts/install-browser-deps.sh); Playwright never downloads a
browser here. The screenshot goes to tests/artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sybilgnn.browser import GuideServer, query_by_name
from sybilgnn.config import Settings
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.scoring.bands import apply_score_bands

pytestmark = [pytest.mark.browser, pytest.mark.neo4j]

CHROMIUM = Path(os.environ.get("SYBILGNN_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TIMEOUT_MS = 120_000  # generous: CI machines and shared boxes are slow to start Browser


@pytest.fixture()
def page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/install-browser-deps.sh")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.set_default_timeout(TIMEOUT_MS)
            yield tab
        finally:
            browser.close()


def _run_in_editor(page: Any, text: str) -> None:
    """Replace the editor content and press the run button (insert_text: no auto-brackets)."""
    page.click('[data-testid="activeEditor"]')
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
    page.click('[data-testid="editor-Run"]')


def _fill_of_nodes(page: Any) -> dict[str, int]:
    fills: list[str] = page.eval_on_selector_all(
        "svg g.node circle.b-outline", "els => els.map(e => e.getAttribute('fill'))")
    counts: dict[str, int] = {}
    for fill in fills:
        counts[fill.upper()] = counts.get(fill.upper(), 0) + 1
    return counts


def test_browser_draws_a_styled_fleet_from_the_guide(page: Any, neo4j_settings: Settings,
                                                    neo4j_driver: Any, scored_graph: Any) -> None:
    apply_score_bands(neo4j_driver)
    http_port, bolt_port = neo4j_settings.neo4j.http_port, neo4j_settings.neo4j.bolt_port
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with GuideServer(port=0, schema=GraphSchema.default()) as guide:
        page.goto(f"http://127.0.0.1:{http_port}/browser/?dbms=bolt://127.0.0.1:{bolt_port}")
        page.fill('[data-testid="username"]', neo4j_settings.neo4j.user)
        page.fill('[data-testid="password"]', neo4j_settings.resolved_password())
        page.click('[data-testid="connect"]')
        page.wait_for_selector("text=You are connected as user")

        # style and guide come from the local guide server (allowlisted host 127.0.0.1)
        _run_in_editor(page, f":style {guide.style_url}")
        _run_in_editor(page, f":guide {guide.guide_url}")
        try:
            page.wait_for_selector("text=review flagged fleets")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser-failure.png"))
            (ARTIFACTS / "browser-failure.html").write_text(page.content())
            raise
        assert page.locator("text=Hostname is not allowed").count() == 0

        _run_in_editor(page, ':param fleet_id => "F-0001"')
        page.wait_for_selector("text=F-0001")
        _run_in_editor(page, ":param max_members => 200")
        page.wait_for_selector("text=max_members")
        _run_in_editor(page, query_by_name("fleet_subgraph", GraphSchema.default()).cypher)
        page.wait_for_selector("text=Displaying 12 nodes, 35 relationships")
        # the force layout animates: wait until the nodes are painted inside the window
        page.wait_for_function(
            """() => [...document.querySelectorAll('svg g.node')].filter(n => {
                 const r = n.getBoundingClientRect();
                 return r.width > 0 && r.left >= 0 && r.top >= 0 &&
                        r.right <= window.innerWidth && r.bottom <= window.innerHeight;
               }).length >= 10""")
        page.wait_for_timeout(3000)
        page.screenshot(path=str(ARTIFACTS / "browser-fleet-F-0001.png"))

        assert page.locator("svg g.node").count() == 12
        # colours come from sybilgnn/browser/style.grass: 8 flagged members, 1 fleet,
        # 2 shared IPs, 1 shared card
        assert _fill_of_nodes(page) == {"#E53935": 8, "#8E44AD": 1, "#2A9D8F": 2,
                                        "#F4A261": 1}
        radii = page.eval_on_selector_all(
            "svg g.node circle.b-outline", "els => els.map(e => Number(e.getAttribute('r')))")
        # diameters: fleet 80px, ScoreHigh accounts 66px, IPs and cards 34px
        assert sorted(radii) == [17] * 3 + [33] * 8 + [40]
