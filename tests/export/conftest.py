"""Fixtures of the export tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.export.small_graph import write_small_graph


@pytest.fixture()
def small_graph(neo4j_driver: Any) -> Any:
    """The known graph of ``small_graph.py`` on an empty database; yields the driver."""
    write_small_graph(neo4j_driver)
    return neo4j_driver
