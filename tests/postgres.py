"""A real PostgreSQL server for the tests: Debian's ``postgresql`` binaries, an own data
directory, a free port, started once per test session and stopped at its end.

PostgreSQL refuses to run as root; under root (CI) the server runs as the ``postgres`` user
the Debian package creates, with the data directory handed to it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["postgres_server", "PostgresServer"]


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.fail("no PostgreSQL server binaries (initdb): install Debian's `postgresql` "
                    "package (scripts/setup.sh does, as root)")
    return Path(initdb).resolve().parent


class PostgresServer:
    """One running server; ``url(database)`` creates the database on first use."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.data, self.sockets = root / "data", root / "sockets"
        self.bindir = _bindir()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_user, *args], capture_output=True, text=True,
                              check=False, timeout=120)

    def start(self) -> None:
        self.data.mkdir(parents=True)
        self.sockets.mkdir()
        if self._as_user:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.data, "postgres")
            shutil.chown(self.sockets, "postgres")
        done = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                         "--auth=trust", "-E", "UTF8", "--locale=C")
        assert done.returncode == 0, done.stderr[-2000:]
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        done = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                         "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                      dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{database}"')
        connection.close()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    from tests.conftest import free_port

    # not under pytest's private temp folder: the postgres user must reach its data
    root = Path(tempfile.mkdtemp(prefix="sybilgnn-postgres-"))
    os.chmod(root, 0o755)
    server = PostgresServer(root, free_port())
    server.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # accepting connections (pg_ctl -w waited already)
        try:
            server.url("postgres")
            break
        except Exception:  # noqa: BLE001 - retried until the deadline
            time.sleep(0.5)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
