"""Fixtures for the Browser tests: a scored graph as the scoring job leaves it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


def load_scored_graph_module() -> Any:
    """Import ``scored_graph.py`` by path, so tests/reporting can share it too."""
    name = "sybilgnn_test_scored_graph"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("scored_graph.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def scored_graph(neo4j_driver: Any) -> Any:
    """The facts of the graph written into the (wiped) test database."""
    return load_scored_graph_module().build_scored_graph(neo4j_driver)
