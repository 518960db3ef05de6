"""Fixtures for the report tests: the same scored graph the Browser tests use."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.scored_graph import build_scored_graph


@pytest.fixture()
def scored_graph(neo4j_driver: Any) -> Any:
    return build_scored_graph(neo4j_driver)
