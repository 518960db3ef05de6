"""``sybilgnn guide``, ``sybilgnn verdict`` and ``sybilgnn report``: the analysts' verbs."""

from __future__ import annotations

from pathlib import Path

import click

from sybilgnn.browser.guide import write_guide_files
from sybilgnn.browser.queries import VERDICTS
from sybilgnn.browser.serve import DEFAULT_GUIDE_PORT, GuideServer
from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.neo4j.connection import open_driver


def _browser_url(settings: Settings) -> str:
    if settings.neo4j.managed:
        return f"http://127.0.0.1:{settings.neo4j.http_port}/browser/"
    return "(the Neo4j Browser of your server: http(s)://<host>:<http port>/browser/)"


@cli.command("guide")
@click.option("--serve", is_flag=True,
              help="Serve the guide and style on 127.0.0.1 until Ctrl-C.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_GUIDE_PORT,
              show_default=True, help="Port of the guide server.")
@click.option("--write", "write_dir", type=click.Path(file_okay=False), default=None,
              help="Write sybilgnn.html and style.grass to DIR for another web server.")
@click.option("--base-url", default=None,
              help="With --write: the URL DIR will be served at (adds the :style line).")
@pass_settings
def guide(settings: Settings, serve: bool, port: int, write_dir: str | None,
          base_url: str | None) -> None:
    """Print the Browser URL and how to open the analysts' guide in it."""
    schema = GraphSchema.from_settings(settings)
    if write_dir:
        for path in write_guide_files(write_dir, base_url, schema=schema):
            click.echo(f"wrote {path}")
        if not serve:
            return
    click.echo(f"Neo4j Browser: {_browser_url(settings)}")
    click.echo("Log in, then run in the Browser editor:")
    guide_base = f"http://localhost:{port}"
    click.echo(f"  :guide {guide_base}/sybilgnn.html     (the guide, in the sidebar)")
    click.echo(f"  :style {guide_base}/style.grass       (colours and sizes)")
    click.echo("The guide's queries are also in docs/analyst-guide.md.")
    if not serve:
        click.echo("Start the guide server first: sybilgnn guide --serve")
        return
    server = GuideServer(port, schema=schema)
    click.echo(f"serving the guide on {server.base_url} (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("guide server stopped", err=True)


@cli.command("verdict")
@click.argument("account_id")
@click.argument("verdict", type=click.Choice(VERDICTS, case_sensitive=False))
@click.option("--note", default=None, help="Why; stored as review_note.")
@click.option("--analyst", default=None, help="Who decides (default: the OS user).")
@pass_settings
def verdict(settings: Settings, account_id: str, verdict: str, note: str | None,
            analyst: str | None) -> None:
    """Record an analyst VERDICT (confirmed | false_positive) on ACCOUNT_ID.

    ACCOUNT_ID is the key of the labelled node type (export.labels.node_type; account_id
    on the default graph).
    """
    from sybilgnn.browser.verdicts import record_verdict

    with open_driver(settings) as driver:
        result = record_verdict(driver, account_id, verdict, analyst, note=note,
                                schema=GraphSchema.from_settings(settings),
                                database=settings.neo4j.database)
    click.echo(f"{result.node_id}: {result.review} by {result.reviewed_by} "
               f"at {result.reviewed_at}")


@cli.command("report")
@click.argument("run_id", required=False)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Output HTML file (default: scoring.report_dir/report-<run>.html).")
@click.option("--mlflow-run", default=None,
              help="Also log the report as an artifact of this MLflow run id.")
@pass_settings
def report(settings: Settings, run_id: str | None, out: str | None,
           mlflow_run: str | None) -> None:
    """Write the HTML report of scoring run RUN_ID (default: the latest)."""
    from sybilgnn.reporting import log_report_to_mlflow, write_report

    path = write_report(settings, run_id, Path(out) if out else None)
    click.echo(f"report written: {path}")
    if mlflow_run:
        log_report_to_mlflow(path, mlflow_run, tracking_uri=settings.registry.tracking_uri)
        click.echo(f"logged to MLflow run {mlflow_run}")
