"""One small planted-fleet world and one trained model shared by the training tests.

Torch and OpenMP run single-threaded here: the test machine is small and shared, and
oversubscribed threads make every op many times slower.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from threadpoolctl import threadpool_limits

from sybilgnn.config import Settings, load_settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.training import TrainResult, train
from tests.synthetic import planted_snapshot

WORLD = dict(accounts=1500, fake_share=0.12, fleet_size=20, seed=3)


@pytest.fixture(autouse=True, scope="session")
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(config_file=None, overrides=[
        "model.hidden=32", "train.epochs=80", "train.patience=15", "train.device=cpu",
        f"train.prevalence={WORLD['fake_share']}"],  # the planted world's true share
        environ={})


@pytest.fixture(scope="session")
def world() -> Snapshot:
    return planted_snapshot(**WORLD)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def trained(world: Snapshot, settings: Settings) -> TrainResult:
    return train(world, settings)
