"""The root click group and the helpers every verb shares."""

from __future__ import annotations

import click

from sybilgnn.config import Settings, load_settings

__all__ = ["cli", "pass_settings"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML config file (default: ./sybilgnn.yaml when present).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one config value; repeatable.")
@click.option("--debug", is_flag=True,
              help="Show the full traceback of a failure instead of its one-line summary.")
@click.version_option(package_name="sybilgnn")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, overrides: tuple[str, ...],
        debug: bool) -> None:
    """Find coordinated fleets of fake accounts in a Neo4j account graph."""
    ctx.obj = load_settings(config_file, list(overrides))


pass_settings = click.make_pass_decorator(Settings)
