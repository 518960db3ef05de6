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
@click.option("--verbose", is_flag=True,
              help="Show third-party warnings and the Neo4j driver's and MLflow's log lines.")
@click.version_option(package_name="sybilgnn")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, overrides: tuple[str, ...],
        debug: bool, verbose: bool) -> None:
    """Find coordinated fleets of fake accounts in a Neo4j account graph."""
    if verbose:
        show_third_party_output()
    ctx.obj = load_settings(config_file, list(overrides))


def show_third_party_output() -> None:
    """Undo the package's quiet defaults (sybilgnn/__init__.py, ``cli.main``): every
    warning once per place, and INFO lines of the driver, MLflow and alembic."""
    import logging
    import warnings

    warnings.simplefilter("default")
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    for name in ("neo4j", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.INFO)


pass_settings = click.make_pass_decorator(Settings)
