"""Shared fixtures: one real Neo4j server per test session, in a throw-away home.

The server uses free ports, so it runs beside a developer's own server. Jars come from the
shared lib folder (``SYBILGNN_TEST_NEO4J_LIB`` or the default ``.sybilgnn/neo4j-lib``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sybilgnn.config import Settings, load_settings
from sybilgnn.neo4j.connection import open_driver
from sybilgnn.neo4j.server import LocalNeo4j
from tests.mlflow_server import mlflow_server  # noqa: F401 - session fixture
from tests.postgres import postgres_server  # noqa: F401 - session fixture

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread() -> Iterator[None]:
    """One torch thread: the suite shares 2 cores with the Neo4j JVM, and torch's spinning
    intra-op threads slow every small op down several times under that contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def neo4j_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a running test server; stopped at the end of the session."""
    home = tmp_path_factory.mktemp("neo4j-home")
    lib = Path(os.environ.get("SYBILGNN_TEST_NEO4J_LIB", REPO_ROOT / ".sybilgnn" / "neo4j-lib"))
    settings = load_settings(
        config_file=None,
        overrides=[
            f"neo4j.home={home}",
            f"neo4j.lib_dir={lib}",
            f"neo4j.password_file={home / 'password'}",
            f"neo4j.bolt_port={free_port()}",
            f"neo4j.http_port={free_port()}",
            "neo4j.heap=768m",
            "neo4j.pagecache=256m",
            f"hashing.secret_file={home / 'hash-secret'}",
            f"export.cache_dir={home / 'snapshots'}",
        ],
        environ={},
    )
    server = LocalNeo4j(settings.neo4j)
    server.start()
    try:
        yield settings
    finally:
        server.stop()


@pytest.fixture(scope="session")
def neo4j_server(neo4j_settings: Settings) -> LocalNeo4j:
    return LocalNeo4j(neo4j_settings.neo4j)


@pytest.fixture()
def neo4j_driver(neo4j_settings: Settings) -> Iterator[Any]:
    """A driver on an empty database: every node, constraint and index is removed first."""
    with open_driver(neo4j_settings) as driver:
        wipe_database(driver)
        yield driver


def wipe_database(driver: Any) -> None:
    """Delete all data, constraints and (non-lookup) indexes so each test starts empty."""
    with driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
        for record in list(session.run("SHOW CONSTRAINTS YIELD name RETURN name")):
            session.run(f"DROP CONSTRAINT `{record['name']}` IF EXISTS").consume()
        for record in list(session.run("SHOW INDEXES YIELD name, type RETURN name, type")):
            if record["type"] != "LOOKUP":
                session.run(f"DROP INDEX `{record['name']}` IF EXISTS").consume()


def isolated_settings(base: Settings, tmp_path: Path, model_name: str) -> Settings:
    """``base`` with its own MLflow store, model name, lock, snapshot cache and report
    folder under ``tmp_path``, so a test's registry starts empty."""
    settings = base.model_copy(deep=True)
    settings.registry.tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings.registry.artifact_root = tmp_path / "artifacts"
    settings.registry.model_name = model_name
    settings.registry.lock_file = tmp_path / "retrain.lock"
    settings.export.cache_dir = tmp_path / "snapshots"
    settings.scoring.report_dir = tmp_path / "reports"
    return settings


def label_from_truth(driver: Any, truth: Any) -> None:
    """Every account of ``truth`` (account_id, is_fake) labelled with its truth, the label
    times spread over 30 days, so a tiny model has train and validation labels of both
    classes (the simulator labels few accounts)."""
    rows = [{"id": str(a), "label": int(f), "day": i % 30}
            for i, (a, f) in enumerate(zip(truth["account_id"], truth["is_fake"]))]
    driver.execute_query(
        "UNWIND $rows AS row MATCH (a:Account {account_id: row.id}) "
        "SET a.label = row.label, a.label_source = 'test', "
        "a.label_at = datetime('2024-01-01T00:00:00Z') + duration({days: row.day})", rows=rows)
