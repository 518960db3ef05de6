"""The main job never merges a simulated platform into a graph that holds another one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.ingest.pipeline import ingest_directory
from sybilgnn.pipeline import _guard_other_world
from sybilgnn.simulate import simulate_platform

pytestmark = pytest.mark.neo4j


def test_another_world_is_refused_unless_fresh(neo4j_driver: Any, neo4j_settings: Settings,
                                               tmp_path: Path) -> None:
    settings = neo4j_settings.model_copy(deep=True)
    first, second = tmp_path / "world-a", tmp_path / "world-b"
    simulate_platform(first, accounts=300, scenario="medium", seed=1, events_scale=0.05)
    simulate_platform(second, accounts=300, scenario="medium", seed=2, events_scale=0.05)
    said: list[str] = []
    _guard_other_world(settings, first, False, said.append)  # empty graph: fine
    ingest_directory(settings, first, driver=neo4j_driver)
    _guard_other_world(settings, first, False, said.append)  # a rerun of the same world: fine
    with pytest.raises(InputError, match=r"already holds 300 accounts that are not from the "
                                         r"simulated platform .*world-b.*--fresh"):
        _guard_other_world(settings, second, False, said.append)
    _guard_other_world(settings, second, True, said.append)
    records, _, _ = neo4j_driver.execute_query("MATCH (n) RETURN count(n) AS n")
    assert records[0]["n"] == 0 and said[-1].startswith("  cleared ")
