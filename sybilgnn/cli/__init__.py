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
    args = sys.argv[1:] if argv is None else argv
    # --debug: a failure keeps its traceback (read before parsing, which can fail too)
    debug = "--debug" in args[: args.index("--")] if "--" in args else "--debug" in args
    try:
        code = cli.main(args=argv, standalone_mode=False, prog_name="sybilgnn")
        if isinstance(code, int) and code:
            sys.exit(code)
    except SybilgnnError as exc:
        if debug:
            raise
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
    except KeyboardInterrupt:
        click.echo("interrupted; a re-run resumes (ingest ledger, Optuna study) or starts "
                   "over (scoring writes are idempotent)", err=True)
        sys.exit(130)
    except Exception as exc:  # third-party failures a user meets: one line, no traceback
        message = _third_party_message(exc)
        if message is None or debug:
            raise
        click.echo(f"error: {message}", err=True)
        sys.exit(2)


def _third_party_message(exc: Exception) -> str | None:
    """What happened and what to do, for failures of the driver, MLflow and the system."""
    from mlflow.exceptions import MlflowException
    from neo4j.exceptions import AuthError, ServiceUnavailable

    if isinstance(exc, AuthError):
        return (f"Neo4j refused the credentials ({exc.message}); check neo4j.user and the "
                "password (SYBILGNN__NEO4J__PASSWORD or neo4j.password_file)")
    if isinstance(exc, ServiceUnavailable):
        reason = " ".join(str(exc).split())
        return (f"Neo4j is not reachable ({reason}); start it with `sybilgnn neo4j start` "
                "or check neo4j.uri")
    if isinstance(exc, MlflowException):
        return (f"MLflow: {exc.message}; check registry.tracking_uri and that the store is "
                "reachable and not locked by another process")
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}; fix the file's permissions"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: {exc.filename}"
    return None
