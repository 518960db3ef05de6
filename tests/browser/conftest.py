"""Fixtures for the Browser tests: a scored graph as the scoring job leaves it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.scored_graph import build_scored_graph


@pytest.fixture()
def scored_graph(neo4j_driver: Any) -> Any:
    """The facts of the graph written into the (wiped) test database."""
    return build_scored_graph(neo4j_driver)
