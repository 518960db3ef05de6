"""The managed local server against the real Neo4j: auth, Browser, persistence, clean stop."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import urllib.request
from pathlib import Path

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError

from sybilgnn.config import Settings, load_settings
from sybilgnn.neo4j.connection import bolt_uri, open_driver
from sybilgnn.neo4j.server import LocalNeo4j, Neo4jServerError
from tests.conftest import free_port

pytestmark = pytest.mark.neo4j


def test_answers_return_1_with_generated_password(neo4j_settings: Settings) -> None:
    with open_driver(neo4j_settings) as driver:
        records, _, _ = driver.execute_query("RETURN 1 AS one")
    assert records[0]["one"] == 1


def test_password_file_is_owner_only(neo4j_settings: Settings) -> None:
    mode = stat.S_IMODE(os.stat(neo4j_settings.neo4j.password_file).st_mode)
    assert mode == 0o600


def test_refuses_wrong_password(neo4j_settings: Settings) -> None:
    with GraphDatabase.driver(bolt_uri(neo4j_settings), auth=("neo4j", "not-the-password")) as d:
        with pytest.raises(AuthError):
            d.verify_connectivity()


def test_serves_browser(neo4j_settings: Settings) -> None:
    url = f"http://127.0.0.1:{neo4j_settings.neo4j.http_port}/browser/"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    assert response.status == 200
    assert "<title>Neo4j Browser</title>" in body


def test_binds_loopback_only(neo4j_settings: Settings, neo4j_server: LocalNeo4j) -> None:
    conf = (neo4j_server.home / "conf" / "neo4j.conf").read_text()
    assert f"server.bolt.listen_address=127.0.0.1:{neo4j_settings.neo4j.bolt_port}" in conf
    assert "server.default_listen_address=127.0.0.1" in conf


def test_start_is_noop_when_running_and_port_clash_is_explained(
    neo4j_settings: Settings, neo4j_server: LocalNeo4j, tmp_path: Path
) -> None:
    before = neo4j_server.status()
    again = neo4j_server.start()
    assert again.pid == before.pid and again.running
    other = load_settings(overrides=[
        f"neo4j.home={tmp_path / 'home'}",
        f"neo4j.lib_dir={neo4j_settings.neo4j.lib_dir}",
        f"neo4j.password_file={tmp_path / 'pw'}",
        f"neo4j.bolt_port={neo4j_settings.neo4j.bolt_port}",
        f"neo4j.http_port={free_port()}",
    ], environ={})
    with pytest.raises(Neo4jServerError, match=r"port \d+ \(neo4j.bolt_port\).*taken"):
        LocalNeo4j(other.neo4j).start()


def _java_pids_for(home: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"--home-dir={home}"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_restart_keeps_data_and_stop_leaves_no_process(
    neo4j_settings: Settings, tmp_path: Path
) -> None:
    """A second server in its own home: data survives restart; stop kills every process."""
    settings = load_settings(overrides=[
        f"neo4j.home={tmp_path / 'home'}",
        f"neo4j.lib_dir={neo4j_settings.neo4j.lib_dir}",
        f"neo4j.password_file={tmp_path / 'home' / 'password'}",
        f"neo4j.bolt_port={free_port()}",
        f"neo4j.http_port={free_port()}",
        "neo4j.heap=512m",
        "neo4j.pagecache=64m",
    ], environ={})
    server = LocalNeo4j(settings.neo4j)
    try:
        server.start()
        with open_driver(settings) as driver:
            driver.execute_query("CREATE (:Account {account_id: 'persisted'})")
        server.stop()
        assert not server.status().running
        assert _java_pids_for(server.home) == []
        server.stop()  # a no-op on a stopped server
        server.start()
        with open_driver(settings) as driver:
            records, _, _ = driver.execute_query(
                "MATCH (a:Account {account_id: 'persisted'}) RETURN count(a) AS c")
        assert records[0]["c"] == 1
    finally:
        server.stop()
    assert _java_pids_for(server.home) == []


def test_stale_pid_file_is_ignored(tmp_path: Path, neo4j_settings: Settings) -> None:
    settings = load_settings(overrides=[f"neo4j.home={tmp_path}",
                                        f"neo4j.lib_dir={neo4j_settings.neo4j.lib_dir}"],
                             environ={})
    server = LocalNeo4j(settings.neo4j)
    server.pid_file.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    server.pid_file.write_text(f"{dead.pid}\n")
    assert not server.status().running
    assert not server.pid_file.exists()


def test_free_port_helper_gives_bindable_port() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
