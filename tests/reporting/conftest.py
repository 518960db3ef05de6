"""Fixtures for the report tests: the same scored graph the Browser tests use."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_HELPER = Path(__file__).resolve().parents[1] / "browser" / "scored_graph.py"


def _scored_graph_module() -> Any:
    name = "sybilgnn_test_scored_graph"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _HELPER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def scored_graph(neo4j_driver: Any) -> Any:
    return _scored_graph_module().build_scored_graph(neo4j_driver)
