"""A Neo4j the package does not manage: reached over Bolt with TLS (a self-signed
certificate), with authentication, a database other than ``neo4j`` and none of sybilgnn's
procedures installed. Ingest and export work through plain Cypher and say so once."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sybilgnn.config import Settings, load_settings
from sybilgnn.errors import InputError
from sybilgnn.export import export_snapshot
from sybilgnn.ingest import ingest_directory
from sybilgnn.neo4j import plugin
from sybilgnn.neo4j.connection import open_driver
from sybilgnn.neo4j.server import LocalNeo4j
from tests.conftest import REPO_ROOT, free_port
from tests.ingest.world import day1_tables, write_tables

pytestmark = pytest.mark.neo4j

DATABASE = "graphs"


class _TlsServer(LocalNeo4j):
    """The test's stand-in for a company's server: Bolt only over TLS, another database."""

    @property
    def bolt_uri(self) -> str:  # the start-up check trusts the self-signed certificate
        return f"bolt+ssc://127.0.0.1:{self.settings.bolt_port}"

    def _write_conf(self) -> None:
        super()._write_conf()
        certs = self.home / "certificates" / "bolt"
        with open(self.home / "conf" / "neo4j.conf", "a") as conf:
            conf.write("\n".join([
                "dbms.ssl.policy.bolt.enabled=true",
                f"dbms.ssl.policy.bolt.base_directory={certs}",
                "dbms.ssl.policy.bolt.private_key=private.key",
                "dbms.ssl.policy.bolt.public_certificate=public.crt",
                "dbms.ssl.policy.bolt.client_auth=NONE",
                "server.bolt.tls_level=REQUIRED",
                f"initial.dbms.default_database={DATABASE}",
            ]) + "\n")


def _self_signed(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "trusted").mkdir()
    (folder / "revoked").mkdir()
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(folder / "private.key"), "-out", str(folder / "public.crt"),
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return folder / "public.crt"


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    """(client settings for the TLS server, its certificate); the server stops at the end."""
    home = tmp_path_factory.mktemp("tls-neo4j")
    cert = _self_signed(home / "certificates" / "bolt")
    lib = Path(os.environ.get("SYBILGNN_TEST_NEO4J_LIB", REPO_ROOT / ".sybilgnn" / "neo4j-lib"))
    port = free_port()
    common = [f"neo4j.password_file={home / 'password'}", f"neo4j.database={DATABASE}",
              f"hashing.secret_file={home / 'hash-secret'}",
              f"export.cache_dir={home / 'snapshots'}"]
    server_settings = load_settings(config_file=None, environ={}, overrides=[
        *common, f"neo4j.home={home}", f"neo4j.lib_dir={lib}", f"neo4j.bolt_port={port}",
        f"neo4j.http_port={free_port()}", "neo4j.heap=512m", "neo4j.pagecache=128m"])
    server = _TlsServer(server_settings.neo4j)
    with pytest.MonkeyPatch.context() as patch:  # a server without sybilgnn's procedures
        patch.setattr("sybilgnn.neo4j.server.install_plugin", lambda *args: None)
        server.start()
    client = load_settings(config_file=None, environ={}, overrides=[
        *common, "neo4j.managed=false", f"neo4j.uri=bolt+s://localhost:{port}",
        f"neo4j.ca_file={cert}"])
    try:
        yield client, cert
    finally:
        server.stop()


def test_tls_with_the_servers_certificate_another_database_and_plain_cypher(
        remote: tuple[Settings, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings, _ = remote
    with open_driver(settings) as driver:
        assert driver.encrypted
        name = driver.execute_query("CALL db.info() YIELD name RETURN name",
                                    database_=DATABASE).records[0]["name"]
        assert name == DATABASE
    monkeypatch.setattr(plugin, "_ANNOUNCED", set())
    with caplog.at_level(logging.WARNING, logger="sybilgnn.neo4j.plugin"):
        summary = ingest_directory(settings, write_tables(tmp_path / "day1", day1_tables()))
        snapshot = export_snapshot(settings)
    assert summary.procedures is False
    assert summary.relationships == {"USED_IP": 4, "PAID_WITH": 3, "PROMPT_SIMILAR": 1}
    assert snapshot.data["account"].num_nodes == 4
    assert sorted(snapshot.id_maps["account"]) == ["a1", "a2", "a3", "a4"]
    said = [r.getMessage() for r in caplog.records if "plain Cypher" in r.getMessage()]
    assert said == ["the Neo4j server has none of sybilgnn's procedures; reading and writing "
                    "through plain Cypher (same results, slower). `sybilgnn neo4j plugin` "
                    "builds the jar to install"]


def _cli(settings: Settings, *overrides: str) -> subprocess.CompletedProcess[str]:
    base = [f"--set=neo4j.{key}={value}" for key, value in (
        ("managed", "false"), ("uri", settings.neo4j.uri), ("database", DATABASE),
        ("password_file", settings.neo4j.password_file))]
    return subprocess.run([sys.executable, "-m", "sybilgnn", *base, *overrides, "neo4j",
                           "query", "RETURN 1 AS one"],
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_trusts_the_ca_file_and_says_what_to_do_without_it(
        remote: tuple[Settings, Path]) -> None:
    settings, cert = remote
    trusted = _cli(settings, f"--set=neo4j.ca_file={cert}")
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout == "one\n---\n1\n(1 row)\n"
    untrusted = _cli(settings)  # the system's CAs do not know a self-signed certificate
    assert untrusted.returncode != 0
    assert "Traceback" not in untrusted.stderr
    lines = [line for line in untrusted.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "certificate" in lines[0] and "neo4j.ca_file" in lines[0]


def test_a_ca_file_needs_a_verified_tls_scheme(remote: tuple[Settings, Path]) -> None:
    settings, cert = remote
    plain = settings.model_copy(deep=True)
    plain.neo4j.uri = plain.neo4j.uri.replace("bolt+s://", "bolt://")
    with pytest.raises(InputError, match="does not ask for verified TLS"):
        open_driver(plain)
    missing = settings.model_copy(deep=True)
    missing.neo4j.ca_file = cert.with_name("absent.crt")
    with pytest.raises(InputError, match="absent.crt: no such file"):
        open_driver(missing)
