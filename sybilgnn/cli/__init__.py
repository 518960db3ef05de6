"""The ``sybilgnn`` command: thin verbs over library functions.

Each verb lives in a small module of this package and registers itself on ``cli``; errors of
the package (``SybilgnnError``) print as one message without a traceback.
"""

from __future__ import annotations

import importlib
import logging
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


_INTERRUPTED = ("interrupted; a re-run resumes (ingest ledger, Optuna study) or starts over "
                "(scoring writes are idempotent)")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # --debug: a failure keeps its traceback (read before parsing, which can fail too)
    debug = "--debug" in args[: args.index("--")] if "--" in args else "--debug" in args
    # the driver logs each failed attempt and retry on its own; the error boundary below
    # says what happened in one line (``--verbose`` shows them again)
    logging.getLogger("neo4j").setLevel(logging.CRITICAL)
    try:
        code = cli.main(args=argv, standalone_mode=False, prog_name="sybilgnn")
        if isinstance(code, int) and code:
            sys.exit(code)
    except SybilgnnError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:  # click turns Ctrl-C into Abort
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo(_INTERRUPTED if interrupted else "aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(_INTERRUPTED, err=True)
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
    from neo4j.exceptions import (AuthError, DriverError, Neo4jError, ServiceUnavailable,
                                  SessionExpired, TransientError)
    from sqlalchemy.exc import SQLAlchemyError

    rerun = ("re-run when it is back: ingest resumes from its ledger, scoring writes are "
             "idempotent")
    if isinstance(exc, AuthError):
        return (f"Neo4j refused the credentials ({exc.message}); check neo4j.user and the "
                "password (SYBILGNN__NEO4J__PASSWORD or neo4j.password_file)")
    if isinstance(exc, SessionExpired) or (
            isinstance(exc, ServiceUnavailable) and "defunct" in str(exc)):
        reason = " ".join(str(exc).split())
        return (f"the connection to Neo4j broke mid-run ({reason}); check that the server "
                f"still runs (`sybilgnn neo4j status`, its log under neo4j.home) and {rerun}")
    if isinstance(exc, ServiceUnavailable) and ("SSLCertVerification" in str(exc)
                                                or "CERTIFICATE_VERIFY_FAILED" in str(exc)):
        return ("Neo4j's TLS certificate was not trusted; set neo4j.ca_file to the PEM "
                "certificate of the server's CA (or its self-signed certificate), and check "
                "that neo4j.uri names the host the certificate was issued for")
    if isinstance(exc, ServiceUnavailable):
        reason = " ".join(str(exc).split())
        return (f"Neo4j is not reachable ({reason}); start it with `sybilgnn neo4j start` "
                "or check neo4j.uri")
    if isinstance(exc, TransientError):
        return (f"Neo4j could not run the work now ({exc.code}: {exc.message}); {rerun}")
    if isinstance(exc, Neo4jError):
        return f"Neo4j rejected the query ({exc.code}: {exc.message})"
    if isinstance(exc, DriverError):
        reason = " ".join(str(exc).split())
        return (f"the Neo4j driver failed ({type(exc).__name__}: {reason}); check neo4j.uri "
                "and the server")
    if isinstance(exc, MlflowException):
        return (f"MLflow: {exc.message}; check registry.tracking_uri and that the store is "
                "reachable and not locked by another process")
    if isinstance(exc, SQLAlchemyError):  # MLflow's or Optuna's SQL store
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        return (f"the tracking store failed ({reason}); check registry.tracking_uri and "
                "tune.storage, and that no other process holds the store locked (a "
                "retrain or tune still running)")
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}; fix the file's permissions"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: {exc.filename}"
    return None

