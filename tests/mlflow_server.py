"""A real MLflow tracking server for the tests: ``mlflow server`` with its backend store on
the session's PostgreSQL server and its artifacts in a folder the server serves
(``--artifacts-destination``), on a free port, started once per test session.

Clients reach it only through ``http://``, as a second machine would: the artifacts travel
through the server, never through a shared folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.postgres import PostgresServer

__all__ = ["TrackingServer", "mlflow_server"]


@dataclass(frozen=True)
class TrackingServer:
    url: str
    artifacts: Path     # the server's --artifacts-destination
    backend: str        # its PostgreSQL backend store


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited ({process.returncode}): "
                        f"{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"mlflow server at {url} not healthy after 180 s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def mlflow_server(postgres_server: PostgresServer) -> Iterator[TrackingServer]:
    from tests.conftest import free_port

    root = Path(tempfile.mkdtemp(prefix="sybilgnn-mlflow-server-"))
    backend = postgres_server.url("mlflow_registry")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(mlflow_cli), "server", "--backend-store-uri", backend,
             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, process, log)
        yield TrackingServer(url, root / "artifacts", backend)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)
