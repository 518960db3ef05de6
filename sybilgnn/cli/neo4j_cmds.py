"""``sybilgnn neo4j start|stop|status|query``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.neo4j.plugin import API_VERSION, PLUGIN_PREFIX, build_plugin
from sybilgnn.neo4j.query import format_table, run_read_query
from sybilgnn.neo4j.server import LocalNeo4j, pinned_version


def _local(settings: Settings) -> LocalNeo4j:
    if not settings.neo4j.managed:
        raise InputError("neo4j.managed is false: this config points at a remote Neo4j, which "
                         "sybilgnn does not start or stop")
    return LocalNeo4j(settings.neo4j)


@cli.group("neo4j")
def neo4j_group() -> None:
    """The local Neo4j server and ad-hoc read queries."""


@neo4j_group.command("install")
@pass_settings
def install(settings: Settings) -> None:
    """Resolve the server and Browser jars through Maven into neo4j.lib_dir (cached), and
    build sybilgnn's server-side procedures against them."""
    server = _local(settings)
    server.install()
    click.echo(f"neo4j jars ready in {server.lib_dir}")
    jar = build_plugin(server.lib_dir)
    click.echo(f"sybilgnn procedures: {jar}" if jar else
               "sybilgnn procedures: not built (no JDK `javac` on PATH); export and write-back "
               "will use plain Cypher")


@neo4j_group.command("plugin")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Copy the jar into this folder (e.g. a server's plugins/).")
@pass_settings
def plugin(settings: Settings, out_dir: str | None) -> None:
    """Build sybilgnn's procedures jar for a Neo4j server that sybilgnn does not manage, and
    say where it goes."""
    server = LocalNeo4j(settings.neo4j)  # only its jar cache: nothing is started
    server.install()
    jar = build_plugin(server.lib_dir)
    if jar is None:
        raise InputError("no JDK `javac` on PATH: the procedures cannot be built here; install "
                         "a JDK 17 (or build on a machine that has one)")
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        jar = Path(shutil.copy2(jar, Path(out_dir) / jar.name))
    version = pinned_version()
    click.echo(f"sybilgnn procedures (API {API_VERSION}, built against Neo4j {version}): {jar}")
    click.echo("Copy it into the plugins/ folder of each Neo4j server sybilgnn uses (same "
               "5.x version), remove older sybilgnn-procedures-*.jar files there, and restart "
               "the server. Check: `sybilgnn neo4j query \"CALL sybilgnn.version()\"`. "
               "Without it, every command works through plain Cypher and says so once.")


@neo4j_group.command("start")
@pass_settings
def start(settings: Settings) -> None:
    """Start the local server (installs its jars on first use); a no-op when running."""
    click.echo("starting Neo4j (first start downloads jars through Maven)...", err=True)
    status = _local(settings).start()
    click.echo(f"neo4j running (pid {status.pid})  bolt: {status.bolt_uri}  "
               f"browser: {status.browser_url}")


@neo4j_group.command("stop")
@pass_settings
def stop(settings: Settings) -> None:
    """Stop the local server; a no-op when stopped."""
    _local(settings).stop()
    click.echo("neo4j stopped")


@neo4j_group.command("status")
@pass_settings
def status(settings: Settings) -> None:
    """Say whether the local server runs; exit code 3 when it does not."""
    state = _local(settings).status()
    if state.running:
        jars = sorted((state.home / "plugins").glob(f"{PLUGIN_PREFIX}*.jar"))
        click.echo(f"neo4j running (pid {state.pid})  bolt: {state.bolt_uri}  "
                   f"browser: {state.browser_url}  procedures: "
                   f"{jars[0].name if jars else 'none (plain Cypher)'}")
    else:
        click.echo(f"neo4j stopped (home {state.home})")
        raise click.exceptions.Exit(3)


@neo4j_group.command("query")
@click.argument("cypher")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Query parameter; the value is parsed as JSON when it can be.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per row.")
@pass_settings
def query(settings: Settings, cypher: str, params: tuple[str, ...], as_json: bool) -> None:
    """Run one read-only CYPHER query with the configured credentials."""
    parsed: dict[str, object] = {}
    for item in params:
        if "=" not in item:
            raise InputError(f"--param {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw
    keys, rows = run_read_query(settings, cypher, parsed)
    if as_json:
        for row in rows:
            click.echo(json.dumps(dict(zip(keys, row)), default=str))
    else:
        click.echo(format_table(keys, rows))
