"""Failures a user meets, caused for real and run through the CLI in a subprocess: one
line on stderr that says what happened and what to do, no traceback, a non-zero exit.

The cases the error boundary (``sybilgnn.cli.main``) names: wrong credentials, a URI the
driver cannot speak, no Java on PATH, a tracking store locked by another process,
Ctrl-C, and a server that dies while a command runs (a second throw-away server, killed
mid-query). A permission-denied file is covered by the boundary's unit test only: the
tests run as root in CI, and root reads any file.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sybilgnn.config import Settings, load_settings
from sybilgnn.neo4j.server import LocalNeo4j
from tests.conftest import REPO_ROOT, free_port

LIB = os.environ.get("SYBILGNN_TEST_NEO4J_LIB", str(REPO_ROOT / ".sybilgnn" / "neo4j-lib"))


def _env(**changes: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **changes}
    env.pop("SYBILGNN__NEO4J__PASSWORD", None)
    return env


def run_cli(args: list[str], cwd: Path, *, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sybilgnn", *args], cwd=cwd, env=env or _env(),
                          capture_output=True, text=True, timeout=timeout)


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr's lines, after checking that no traceback reached the user."""
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stderr.splitlines() if line.strip()]


def remote(settings: Settings, password_file: Path) -> list[str]:
    """Options that reach ``settings``' server as a server the package does not manage."""
    return [f"--set=neo4j.uri=bolt://127.0.0.1:{settings.neo4j.bolt_port}",
            "--set=neo4j.managed=false", f"--set=neo4j.password_file={password_file}"]


def test_wrong_credentials(neo4j_settings: Settings, tmp_path: Path) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password\n")
    done = run_cli([*remote(neo4j_settings, wrong), "neo4j", "query", "RETURN 1"], tmp_path)
    assert done.returncode == 2
    assert error_lines(done) == [
        "error: Neo4j refused the credentials (The client is unauthorized due to "
        "authentication failure.); check neo4j.user and the password "
        "(SYBILGNN__NEO4J__PASSWORD or neo4j.password_file)"]


def test_a_uri_the_driver_cannot_speak(tmp_path: Path) -> None:
    done = run_cli(["--set=neo4j.uri=http://127.0.0.1:7474", "--set=neo4j.managed=false",
                    "neo4j", "query", "RETURN 1"], tmp_path)
    assert done.returncode == 2
    lines = error_lines(done)
    assert lines[0] == "error: invalid configuration:"
    assert lines[1].strip().startswith("neo4j.uri: Value error, expected a Bolt URI such as "
                                       "bolt://host:7687 (schemes: bolt, bolt+s, bolt+ssc, ")
    assert len(lines) == 2


def test_no_java_on_path(tmp_path: Path) -> None:
    env = _env(PATH=str(Path(sys.executable).parent))  # python, no java
    done = run_cli([f"--set=neo4j.home={tmp_path / 'home'}", f"--set=neo4j.lib_dir={LIB}",
                    f"--set=neo4j.bolt_port={free_port()}", f"--set=neo4j.http_port={free_port()}",
                    "neo4j", "start"], tmp_path, env=env)
    assert done.returncode != 0
    assert error_lines(done)[-1] == ("error: Java is not on PATH; Neo4j 5.26 needs Java 17 "
                                     "(openjdk-17-jre)")


def test_a_tracking_store_locked_by_another_process(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("CREATE TABLE held (a)")
    holder.execute("BEGIN EXCLUSIVE")  # as a retrain writing to the store would
    try:  # a rollback: the registry alone, no Neo4j
        done = run_cli([f"--set=registry.tracking_uri=sqlite:///{store}", "promote",
                        "--version", "1"], tmp_path)
    finally:
        holder.close()
    assert done.returncode == 2
    assert error_lines(done) == [
        "error: the tracking store failed (database is locked); check "
        "registry.tracking_uri and tune.storage, and that no other process holds the store "
        "locked (a retrain or tune still running)"]


def _default_sigint() -> None:
    """A terminal's Ctrl-C: a test runner started in the background (``cmd &`` in a
    script) ignores SIGINT, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_with_exit_130_and_says_how_to_resume(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sybilgnn", "simulate", "--accounts", "3000000", "--out",
         str(tmp_path / "world")], cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    try:
        assert proc.stderr is not None
        seen, deadline = "", time.monotonic() + 180
        while "simulating" not in seen and time.monotonic() < deadline:  # past start-up
            char = proc.stderr.read(1)
            if not char:
                break
            seen += char
        assert "simulating" in seen, f"the simulation never started: {seen}"
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        err = seen + proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    assert error_lines(done)[-1] == (
        "interrupted; a re-run resumes (ingest ledger, Optuna study) or starts over "
        "(scoring writes are idempotent)")


@pytest.fixture()
def doomed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A throw-away server of its own, for a test that kills it."""
    home = tmp_path_factory.mktemp("doomed-neo4j")
    settings = load_settings(None, [
        f"neo4j.home={home}", f"neo4j.lib_dir={LIB}", f"neo4j.password_file={home / 'pw'}",
        f"neo4j.bolt_port={free_port()}", f"neo4j.http_port={free_port()}",
        "neo4j.heap=512m", "neo4j.pagecache=64m"], environ={})
    server = LocalNeo4j(settings.neo4j)
    server.start()
    try:
        yield settings
    finally:
        server.stop()


def test_a_server_that_dies_mid_run(doomed_server: Settings, tmp_path: Path) -> None:
    server = LocalNeo4j(doomed_server.neo4j)
    pid = server.status().pid
    assert pid is not None
    long_query = "UNWIND range(1, 4000000000) AS x WITH x WHERE x < 0 RETURN count(x)"
    retry_s = 5
    proc = subprocess.Popen(
        [sys.executable, "-m", "sybilgnn", *remote(doomed_server, doomed_server.neo4j.password_file),
         f"--set=neo4j.retry_s={retry_s}", "--set=neo4j.connect_timeout_s=5",
         "neo4j", "query", long_query], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_running(doomed_server, "4000000000", proc)
        os.killpg(pid, signal.SIGKILL)
        killed = time.monotonic()
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    waited = time.monotonic() - killed
    assert proc.returncode == 2
    lines = error_lines(subprocess.CompletedProcess(proc.args, proc.returncode, "", err))
    assert len(lines) == 1
    # the driver retries the read until its retry time runs out: the last attempt finds
    # the server gone ("not reachable"); a failure outside the retries says "broke mid-run"
    assert lines[0].startswith(("error: the connection to Neo4j broke mid-run (",
                                "error: Neo4j is not reachable (")), lines[0]
    # the driver's retries end within the configured budget (neo4j.retry_s), not after its
    # own default of 30 s plus connection timeouts; the margin covers a loaded CI machine
    assert waited < retry_s + 30


def _wait_until_running(settings: Settings, marker: str, proc: subprocess.Popen[str]) -> None:
    """Until the server lists a transaction whose query contains ``marker``."""
    from sybilgnn.neo4j.connection import open_driver

    deadline = time.monotonic() + 120
    with open_driver(settings) as driver:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            records, _, _ = driver.execute_query(
                "SHOW TRANSACTIONS YIELD currentQuery WHERE currentQuery CONTAINS $marker "
                "RETURN count(*) AS running", marker=marker)
            if records[0]["running"]:
                return
            time.sleep(0.5)
    raise AssertionError("the query never started on the server")


def test_verbose_shows_what_the_quiet_defaults_hide(tmp_path: Path) -> None:
    notice = ("import warnings; warnings.warn('An input example was not provided when "
              "logging the model', UserWarning)")
    quiet = subprocess.run([sys.executable, "-c", f"import sybilgnn; {notice}"], cwd=tmp_path,
                           env=_env(), capture_output=True, text=True, check=True)
    assert quiet.stderr == ""
    verbose = subprocess.run(
        [sys.executable, "-c", "import sybilgnn; from sybilgnn.cli.common import "
         f"show_third_party_output; show_third_party_output(); {notice}"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, check=True)
    assert "UserWarning: An input example was not provided" in verbose.stderr
