"""Build sybilgnn's server-side procedures and find out whether a server has them.

The Java source beside this file (``plugin/``) is compiled with the JDK's ``javac`` against
the server's own jars in ``lib_dir`` and zipped into a jar named after the source digest, so
an edited source builds a new jar and a server home never runs a stale one. Without a JDK the
managed server simply starts without the procedures and the client uses Cypher (slower, same
results); ``sybilgnn neo4j status`` says which.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sybilgnn.errors import SybilgnnError

__all__ = ["API_VERSION", "PLUGIN_PREFIX", "build_plugin", "install_plugin",
           "server_procedures_version", "use_procedures"]

LOG = logging.getLogger(__name__)
SOURCE_DIR = Path(__file__).with_name("plugin")
PLUGIN_PREFIX = "sybilgnn-procedures-"
API_VERSION = 5  # SybilgnnProcedures.API_VERSION


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.glob("*.java")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_plugin(lib_dir: Path) -> Path | None:
    """The procedures jar for the current source, built on first use; None without ``javac``."""
    jar = lib_dir.parent / "neo4j-plugins" / f"{PLUGIN_PREFIX}{_source_digest()}.jar"
    if jar.exists():
        return jar
    javac = shutil.which("javac")
    if javac is None:
        LOG.warning("no JDK (`javac`) on PATH: the Neo4j server starts without the sybilgnn "
                    "procedures and export/scoring use plain Cypher (slower); install "
                    "openjdk-17-jdk-headless to get them")
        return None
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sybilgnn-plugin-") as tmp:
        classes = Path(tmp) / "classes"
        sources = [str(p) for p in sorted(SOURCE_DIR.glob("*.java"))]
        proc = subprocess.run(
            [javac, "--release", "17", "-nowarn", "-encoding", "UTF-8",
             "-cp", f"{lib_dir}/*", "-d", str(classes), *sources],
            capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("could not compile the sybilgnn Neo4j procedures:\n"
                               + (proc.stdout + proc.stderr)[-3000:])
        partial = jar.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n\n")
            for path in sorted(classes.rglob("*.class")):
                archive.write(path, path.relative_to(classes).as_posix())
        partial.rename(jar)
    return jar


def install_plugin(lib_dir: Path, plugins_dir: Path) -> Path | None:
    """Put the current procedures jar into ``plugins_dir`` and remove older ones."""
    jar = build_plugin(lib_dir)
    plugins_dir.mkdir(parents=True, exist_ok=True)
    for old in plugins_dir.glob(f"{PLUGIN_PREFIX}*.jar"):
        if jar is None or old.name != jar.name:
            old.unlink()
    if jar is None:
        return None
    target = plugins_dir / jar.name
    if not target.exists():
        shutil.copyfile(jar, target)
    return target


def server_procedures_version(session: Any) -> int | None:
    """The procedures' API version on the server of ``session``, or None when absent."""
    record = session.run(
        "SHOW PROCEDURES YIELD name WHERE name = 'sybilgnn.version' RETURN count(*) AS n"
    ).single()
    if not record or record["n"] == 0:
        return None
    return int(session.run("CALL sybilgnn.version() YIELD version RETURN version").single()[0])


def use_procedures(session: Any, mode: str) -> bool:
    """Whether to read and write through the procedures (``neo4j.procedures`` setting)."""
    if mode == "off":
        return False
    version = server_procedures_version(session)
    if version == API_VERSION:
        return True
    if mode == "required":
        found = "none" if version is None else f"API version {version}"
        raise SybilgnnError(
            f"neo4j.procedures is 'required' but the server has {found} of the sybilgnn "
            f"procedures (version {API_VERSION} needed); copy the jar built by "
            "`sybilgnn neo4j install` into the server's plugins/ folder, or set "
            "neo4j.procedures to auto")
    _say_once_plain_cypher(version)
    return False


_ANNOUNCED: set[int | None] = set()


def _say_once_plain_cypher(version: int | None) -> None:
    """Tell the user, once per process, that the server lacks the procedures this client
    needs (every export and ingest asks; one line is enough)."""
    if version in _ANNOUNCED:
        return
    _ANNOUNCED.add(version)
    found = ("has none of sybilgnn's procedures" if version is None else
             f"has sybilgnn's procedures at API version {version}, this client needs "
             f"{API_VERSION}")
    LOG.warning("the Neo4j server %s; reading and writing through plain Cypher (same results, "
                "slower). `sybilgnn neo4j plugin` builds the jar to install", found)
