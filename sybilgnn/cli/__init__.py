"""The ``sybilgnn`` command: thin verbs over library functions.

Each verb lives in a small module of this package and registers itself on ``cli``; errors of
the package (``SybilgnnError``) print as one message without a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from sybilgnn.cli.common import cli
from sybilgnn.errors import SybilgnnError

__all__ = ["cli", "main"]

# Modules that define verbs; add yours here.
_COMMAND_MODULES = [
    "sybilgnn.cli.neo4j_cmds",
    "sybilgnn.cli.train_cmds",
    "sybilgnn.cli.ingest_cmd",
    "sybilgnn.cli.simulate_cmd",
    "sybilgnn.cli.analyst_cmds",
    "sybilgnn.cli.export_cmd",
    "sybilgnn.cli.score_cmd",
    "sybilgnn.cli.pipeline_cmd",
    "sybilgnn.cli.replay_cmd",
]

for _module in _COMMAND_MODULES:
    importlib.import_module(_module)


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, standalone_mode=False, prog_name="sybilgnn")
        if isinstance(code, int) and code:
            sys.exit(code)
    except SybilgnnError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
