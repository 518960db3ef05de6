"""Fixtures for the report tests: the same scored graph the Browser tests use."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.scored_graph import build_scored_graph
from tests.reporting.run_history import add_run_history


@pytest.fixture()
def scored_graph(neo4j_driver: Any) -> Any:
    return build_scored_graph(neo4j_driver)


@pytest.fixture()
def run_history(neo4j_driver: Any, scored_graph: Any) -> Any:
    """The scored graph with drift and score histograms stored, and older runs before it."""
    add_run_history(neo4j_driver)
    return scored_graph
