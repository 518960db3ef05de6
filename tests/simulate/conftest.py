"""Simulated worlds shared by the simulator tests: built once per argument set per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from sybilgnn.simulate import Scenario, SimulationSummary, get_scenario, simulate_platform


class World:
    """A simulated output directory with its summary and lazily read tables."""

    def __init__(self, summary: SimulationSummary) -> None:
        self.summary = summary
        self.dir = Path(summary.out_dir)
        self._tables: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            self._tables[name] = pd.read_parquet(self.dir / f"{name}.parquet")
        return self._tables[name]


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., World]:
    cache: dict[tuple, World] = {}

    def build(scenario: str | Scenario = "medium", accounts: int = 2000, seed: int = 11,
              events_scale: float = 1.0) -> World:
        """``scenario``: a name, or a Scenario (e.g. a ``dataclasses.replace`` variant)."""
        key = (scenario, accounts, seed, events_scale)
        if key not in cache:
            name = get_scenario(scenario).name
            out = tmp_path_factory.mktemp(f"sim-{name}-{accounts}-{seed}")
            cache[key] = World(simulate_platform(out, accounts=accounts, scenario=scenario,
                                                 seed=seed, events_scale=events_scale))
        return cache[key]

    return build
