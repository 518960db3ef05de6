"""``sybilgnn ingest DIR``: load event tables into Neo4j."""

from __future__ import annotations

from pathlib import Path

import click

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings
from sybilgnn.ingest import ingest_directory


@cli.command("ingest")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@pass_settings
def ingest(settings: Settings, directory: Path) -> None:
    """Validate, hash and load the event tables in DIRECTORY (Parquet or CSV) into Neo4j.

    Re-ingesting the same files is a no-op; bad rows go to DIRECTORY/_quarantine/.
    """
    summary = ingest_directory(settings, directory, progress=True)
    for line in summary.lines():
        click.echo(line)
