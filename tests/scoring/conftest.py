"""Fixtures of the scoring tests: the small world in Neo4j and settings sized for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sybilgnn.config import Settings
from tests.scoring.world import build_graph


@pytest.fixture()
def world(neo4j_driver: Any) -> Iterator[Any]:
    build_graph(neo4j_driver)
    yield neo4j_driver


@pytest.fixture()
def scoring_settings(neo4j_settings: Settings, tmp_path: Any) -> Settings:
    settings = neo4j_settings.model_copy(deep=True)
    settings.scoring.batch_size = 7
    settings.scoring.min_fleet_size = 3
    settings.scoring.fleet_max_shared_accounts = 10
    settings.scoring.report_dir = tmp_path / "reports"
    return settings
