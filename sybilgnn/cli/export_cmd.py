"""``sybilgnn export``: write a snapshot of the account graph to a folder."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings

__all__ = ["export"]


@cli.command("export")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder to write the snapshot to (tensors.pt + snapshot.json).")
@click.option("--no-cache", is_flag=True, help="Read the graph even when the cache has it.")
@pass_settings
def export(settings: Settings, out_dir: str, no_cache: bool) -> None:
    """Export the graph (schema in the config's export section) as a training snapshot."""
    from sybilgnn.export import export_snapshot

    snapshot = export_snapshot(settings, use_cache=not no_cache, progress=True)
    path = snapshot.save(Path(out_dir))
    meta = snapshot.meta
    edges = sum(int(store.edge_index.shape[1]) for _, store in snapshot.data.edge_items())
    source = "cache hit" if meta.get("cache_hit") else f"read in {meta.get('export_seconds')} s"
    click.echo(f"snapshot {snapshot.content_hash[:12]} ({source}): "
               + ", ".join(f"{t} {snapshot.data[t].num_nodes}" for t in snapshot.data.node_types)
               + f", {edges} directed edges -> {path}")
    click.echo("labels: " + json.dumps(meta.get("labels", {})))
    click.echo("split: " + json.dumps(meta.get("split", {})))
    if not meta.get("cache_hit") and not meta.get("point_in_time", True):
        click.echo("note: the graph changed during the export; edges to nodes created "
                   "meanwhile were dropped", err=True)
    for note in meta.get("notes", []):
        click.echo(f"note: {note}", err=True)
