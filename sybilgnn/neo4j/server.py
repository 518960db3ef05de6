"""Lifecycle of the local Neo4j Community server that the package owns.

The server's jars come from Maven Central through ``pom.xml`` beside this file and live in a
shared ``lib_dir``; each server home (``conf/``, ``data/``, ``logs/``, ``run/``) is separate, so
the test suite runs its own throw-away home next to a developer's long-lived one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sybilgnn.config import Neo4jSettings
from sybilgnn.errors import SybilgnnError
from sybilgnn.neo4j.plugin import install_plugin
from sybilgnn.processes import pid_alive

__all__ = ["LocalNeo4j", "Neo4jServerError", "ServerStatus", "pinned_version"]

POM_PATH = Path(__file__).with_name("pom.xml")
MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"
ADMIN_CLASS = "org.neo4j.cli.AdminTool"
JVM_OPENS = [
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
]


class Neo4jServerError(SybilgnnError):
    """The local server could not be installed, started or stopped; says what to do."""


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    bolt_uri: str
    browser_url: str
    home: Path


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pinned_version() -> str:
    """The Neo4j version the package installs and builds its procedures against (pom.xml)."""
    import re

    found = re.search(r"<neo4j\.version>([^<]+)</neo4j\.version>", POM_PATH.read_text())
    return found.group(1) if found else "unknown"


class LocalNeo4j:
    """A Neo4j server bound to 127.0.0.1 with auth on and a generated password."""

    def __init__(self, settings: Neo4jSettings) -> None:
        self.settings = settings
        self.home = settings.home.resolve()
        self.lib_dir = settings.lib_dir.resolve()
        self.password_file = settings.password_file.resolve()

    # ---- paths -------------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "sybilgnn-neo4j.pid"

    @property
    def console_log(self) -> Path:
        return self.home / "logs" / "console.log"

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.settings.bolt_port}"

    @property
    def browser_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}/browser/"

    # ---- install -----------------------------------------------------------------------
    def _pom_digest(self) -> str:
        return hashlib.sha256(POM_PATH.read_bytes()).hexdigest()[:16]

    def installed(self) -> bool:
        return (self.lib_dir / f".installed-{self._pom_digest()}").exists()

    def install(self) -> None:
        """Copy the server and Browser jars from Maven (the local ~/.m2 cache makes reruns fast)."""
        if self.installed():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise Neo4jServerError("Maven (`mvn`) is not on PATH; install it (apt-get install maven)")
        staging = self.lib_dir.with_name(self.lib_dir.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [mvn, "-q", "-B", "-f", str(POM_PATH), "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise Neo4jServerError(f"Maven could not resolve the Neo4j server jars:\n{tail}")
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        staging.rename(self.lib_dir)
        (self.lib_dir / f".installed-{self._pom_digest()}").touch()

    # ---- configuration -----------------------------------------------------------------
    def _write_conf(self) -> None:
        s = self.settings
        for sub in ("conf", "data", "logs", "run", "plugins"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        lines = [
            "# Written by sybilgnn on every start; edit the sybilgnn config instead.",
            "server.default_listen_address=127.0.0.1",
            "server.default_advertised_address=127.0.0.1",
            f"server.bolt.listen_address=127.0.0.1:{s.bolt_port}",
            f"server.http.listen_address=127.0.0.1:{s.http_port}",
            "server.https.enabled=false",
            f"server.directories.data={self.home / 'data'}",
            f"server.directories.logs={self.home / 'logs'}",
            f"server.directories.run={self.home / 'run'}",
            f"server.directories.plugins={self.home / 'plugins'}",
            f"server.memory.pagecache.size={s.pagecache}",
            "dbms.security.auth_enabled=true",
            "dbms.usage_report.enabled=false",
            "server.config.strict_validation.enabled=false",
            "db.tx_log.rotation.retention_policy=2 files",
            "client.allow_telemetry=false",
            # the sybilgnn guide and style are served locally (`sybilgnn guide --serve`);
            # 5.26 knows this setting only by its old name (the *_allowlist name is ignored)
            "browser.remote_content_hostname_whitelist=localhost,127.0.0.1",
            # Bolt waits 5 s for idle connections and 5 s more for its thread pool on every
            # stop, which made a stop take ~10.5 s on an idle server; the package stops its
            # own server only when nothing of its own is using it (bulk import, tests, CLI),
            # so 1 s each is plenty: a stop takes ~2.5 s
            "internal.server.bolt.connection_shutdown_wait_time=1s",
            "internal.server.bolt.thread_pool_shutdown_wait_time=1s",
        ]
        (self.home / "conf" / "neo4j.conf").write_text("\n".join(lines) + "\n")

    def _java_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NEO4J_HOME"] = str(self.home)
        env["NEO4J_CONF"] = str(self.home / "conf")
        return env

    def _ensure_password(self) -> None:
        """Generate the password before the very first start; the file is owner-only (0600)."""
        first_start = not (self.home / "data" / "databases" / "system").exists()
        if not first_start:
            if not self.password_file.exists():
                raise Neo4jServerError(
                    f"{self.home} already holds a database but the password file "
                    f"{self.password_file} is missing; restore it or remove {self.home / 'data'}"
                )
            return
        if self.password_file.exists():
            password = self.password_file.read_text().strip()
        else:
            # hex, so the password never starts with "-" (the admin tool would read an option)
            password = secrets.token_hex(20)
            self.password_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
        os.chmod(self.password_file, 0o600)
        cmd = ["java", "-cp", f"{self.lib_dir}/*", ADMIN_CLASS, "dbms", "set-initial-password",
               password]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self._java_env())
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).replace(password, "***")
            raise Neo4jServerError(f"could not set the initial Neo4j password:\n{out[-2000:]}")

    def run_admin(self, *args: str, jvm_options: tuple[str, ...] = ()
                  ) -> subprocess.CompletedProcess[str]:
        """Run ``neo4j-admin ARGS`` against this home (the server must be stopped for
        offline commands such as ``database import full``)."""
        self.install()
        self._write_conf()
        cmd = ["java", f"-Xmx{self.settings.heap}", *jvm_options, *JVM_OPENS,
               "-cp", f"{self.lib_dir}/*", ADMIN_CLASS, *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=self._java_env(),
                              cwd=self.home)

    # ---- lifecycle ---------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        """The server's pid, or None; a stale pid file (dead or foreign process) is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid_alive(pid) and self._owns(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def _owns(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return MAIN_CLASS in cmdline and f"--home-dir={self.home}" in cmdline

    def status(self) -> ServerStatus:
        pid = self._read_pid()
        return ServerStatus(pid is not None, pid, self.bolt_uri, self.browser_url, self.home)

    def _log_tail(self, lines: int = 30) -> str:
        chunks = []
        for log in (self.console_log, self.home / "logs" / "neo4j.log",
                    self.home / "logs" / "debug.log"):
            if log.exists():
                text = log.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    chunks.append(f"--- {log} ---\n" + "\n".join(text))
        return "\n".join(chunks) or "(the server wrote no log)"

    def _bolt_answers(self, password: str) -> bool:
        from neo4j import GraphDatabase
        from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired

        try:
            with GraphDatabase.driver(self.bolt_uri, auth=(self.settings.user, password),
                                      connection_timeout=2) as driver:
                with driver.session(database=self.settings.database) as session:
                    record = session.run("RETURN 1 AS one").single()
                return bool(record and record["one"] == 1)
        except (ServiceUnavailable, SessionExpired, OSError):
            return False
        except Neo4jError as exc:
            if "DatabaseUnavailable" in (exc.code or "") or "NotFound" in (exc.code or ""):
                return False
            raise

    def start(self) -> ServerStatus:
        """Start the server and return once Bolt answers ``RETURN 1``; a no-op when running."""
        current = self.status()
        if current.running:
            return current
        if shutil.which("java") is None:
            raise Neo4jServerError("Java is not on PATH; Neo4j 5.26 needs Java 17 (openjdk-17-jre)")
        self.install()
        for name, port in (("neo4j.bolt_port", self.settings.bolt_port),
                           ("neo4j.http_port", self.settings.http_port)):
            if not _port_free(port):
                raise Neo4jServerError(
                    f"port {port} ({name}) on 127.0.0.1 is taken by another process; stop it or "
                    f"choose another port, e.g. --set {name}={port + 1}"
                )
        self._write_conf()
        self._ensure_password()
        try:
            install_plugin(self.lib_dir, self.home / "plugins")
        except RuntimeError as exc:
            raise Neo4jServerError(str(exc)) from None
        password = self.password_file.read_text().strip()
        cmd = ["java", f"-Xms{self.settings.heap}", f"-Xmx{self.settings.heap}",
               "-XX:+UseG1GC", "-XX:-OmitStackTraceInFastThrow", "-Dfile.encoding=UTF-8",
               *JVM_OPENS, "-cp", f"{self.home / 'plugins'}/*:{self.lib_dir}/*", MAIN_CLASS,
               f"--home-dir={self.home}", f"--config-dir={self.home / 'conf'}"]
        with open(self.console_log, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self._java_env(),
                                    start_new_session=True, cwd=self.home)
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise Neo4jServerError(
                    f"Neo4j exited with code {proc.returncode} while starting:\n{self._log_tail()}"
                )
            if self._bolt_answers(password):
                return self.status()
            time.sleep(0.5)
        self.stop()
        raise Neo4jServerError(
            f"Neo4j did not answer on {self.bolt_uri} within {self.settings.start_timeout_s:.0f}s:"
            f"\n{self._log_tail()}"
        )

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop the server; no Java process is left behind. A no-op when stopped."""
        pid = self._read_pid()
        if pid is None:
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(pid):
            _reap(pid)
            time.sleep(0.2)
        if pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while pid_alive(pid):
                _reap(pid)
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (tests start it in-process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
