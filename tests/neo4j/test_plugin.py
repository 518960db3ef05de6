"""Building and installing sybilgnn's server-side procedures (the jar, not the server)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from sybilgnn.config import Settings
from sybilgnn.neo4j import plugin


def _lib_dir(neo4j_settings: Settings) -> Path:
    return neo4j_settings.neo4j.lib_dir.resolve()


def test_jar_is_built_once_per_source_digest(neo4j_settings: Settings) -> None:
    lib_dir = _lib_dir(neo4j_settings)
    jar = plugin.build_plugin(lib_dir)
    assert jar is not None and jar.parent == lib_dir.parent / "neo4j-plugins"
    assert jar.name == f"{plugin.PLUGIN_PREFIX}{plugin._source_digest()}.jar"
    built_at = jar.stat().st_mtime_ns
    assert plugin.build_plugin(lib_dir) == jar and jar.stat().st_mtime_ns == built_at
    with zipfile.ZipFile(jar) as archive:
        assert "sybilgnn/neo4j/SybilgnnProcedures.class" in archive.namelist()


def test_install_replaces_stale_jars(neo4j_settings: Settings, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / f"{plugin.PLUGIN_PREFIX}0000000000000000.jar").write_bytes(b"old")
    (plugins / "apoc-core.jar").write_bytes(b"someone else's")
    installed = plugin.install_plugin(_lib_dir(neo4j_settings), plugins)
    assert installed is not None
    assert sorted(p.name for p in plugins.iterdir()) == sorted(["apoc-core.jar", installed.name])
    assert installed.read_bytes() == plugin.build_plugin(_lib_dir(neo4j_settings)).read_bytes()


def test_without_a_jdk_the_server_gets_no_procedures(neo4j_settings: Settings, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    lib_dir = tmp_path / "lib"  # nothing built here yet
    lib_dir.mkdir()
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / f"{plugin.PLUGIN_PREFIX}0000000000000000.jar").write_bytes(b"old")
    real_which = shutil.which
    monkeypatch.setattr(plugin.shutil, "which",
                        lambda name: None if name == "javac" else real_which(name))
    assert plugin.build_plugin(lib_dir) is None
    assert plugin.install_plugin(lib_dir, plugins) is None
    assert list(plugins.iterdir()) == []  # an outdated jar is not left to be loaded


def test_a_compile_error_is_reported_with_the_compiler_output(
        neo4j_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Broken.java").write_text("package sybilgnn.neo4j; class Broken { int x = ; }")
    monkeypatch.setattr(plugin, "SOURCE_DIR", source)
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    with pytest.raises(RuntimeError, match="could not compile the sybilgnn Neo4j procedures"):
        plugin.build_plugin(lib_dir)


def test_plugin_command_builds_the_jar_for_a_server_it_does_not_manage(
        neo4j_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sybilgnn.cli import main

    lib_dir = _lib_dir(neo4j_settings)
    main([f"--set=neo4j.lib_dir={lib_dir}", "--set=neo4j.managed=false",
          "--set=neo4j.uri=bolt+s://graph.example:7687", "neo4j", "plugin",
          "--out", str(tmp_path / "out")])
    built = plugin.build_plugin(lib_dir)
    assert built is not None
    copied = tmp_path / "out" / built.name
    assert copied.read_bytes() == built.read_bytes()
    out = capsys.readouterr().out
    assert out.startswith(f"sybilgnn procedures (API {plugin.API_VERSION}, built against "
                          f"Neo4j 5.26.30): {copied}\n")
    assert "plugins/ folder" in out and "CALL sybilgnn.version()" in out
