"""Shared test helpers: one real SQLite MLflow store per session, tiny planted snapshots.

Each test gets its own experiment and registered-model name inside the shared store (MLflow's
first-use schema migration is the slow part), its own Optuna database and lock file.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sybilgnn.config import Settings, load_settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.registry import configure_tracking
from tests.synthetic import planted_snapshot

_names = itertools.count()


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The CI box has 2 shared cores: more torch threads only add contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("mlruns")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    configure_tracking(make_settings(root, uri, []))  # migrate the schema once
    return uri


@pytest.fixture(scope="session")
def tiny_snapshot() -> Snapshot:
    return planted_snapshot(accounts=300, seed=1)


@pytest.fixture(scope="session")
def tiny_snapshot_dir(tiny_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_snapshot.save(tmp_path_factory.mktemp("snapshot"))


def make_settings(root: Path, mlflow_uri: str, overrides: list[str]) -> Settings:
    n = next(_names)
    return load_settings(
        config_file=None,
        overrides=[
            f"registry.tracking_uri={mlflow_uri}",
            f"registry.artifact_root={root / 'artifacts'}",
            f"registry.experiment=exp-{n}",
            f"registry.model_name=model-{n}",
            f"registry.lock_file={root / 'retrain.lock'}",
            f"tune.storage=sqlite:///{root / 'optuna.db'}",
            "tune.heartbeat_interval_s=1",
            "tune.grace_period_s=2",
            "train.epochs=5",
            "train.min_epochs=1",
            "train.device=cpu",
            *overrides,
        ],
        environ={},
    )
