"""Open a Neo4j driver from the settings, for the managed local server or a remote one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neo4j import Driver, GraphDatabase, TrustCustomCAs

from sybilgnn.config import Settings
from sybilgnn.errors import InputError

__all__ = ["bolt_uri", "open_driver"]


def bolt_uri(settings: Settings) -> str:
    """The managed server listens on ``neo4j.bolt_port``; otherwise ``neo4j.uri`` is used."""
    if settings.neo4j.managed:
        return f"bolt://127.0.0.1:{settings.neo4j.bolt_port}"
    return settings.neo4j.uri


def _tls_options(uri: str, ca_file: Path | None) -> tuple[str, dict[str, Any]]:
    """The URI and driver options that trust ``ca_file`` for a ``+s`` scheme.

    The driver takes a custom trust store only with the plain schemes, so ``bolt+s://`` /
    ``neo4j+s://`` with a CA file become ``bolt://`` / ``neo4j://`` with encryption on and
    that trust store: still encrypted, still verified (hostname included), by that CA.
    """
    if ca_file is None:
        return uri, {}
    scheme, rest = uri.split("://", 1)
    if not scheme.endswith("+s"):
        raise InputError(f"neo4j.ca_file is set but neo4j.uri {uri!r} does not ask for "
                         "verified TLS; use a bolt+s:// or neo4j+s:// uri, or unset ca_file")
    if not Path(ca_file).is_file():
        raise InputError(f"neo4j.ca_file {ca_file}: no such file; give the PEM certificate "
                         "of the server's CA (or its self-signed certificate)")
    return f"{scheme[:-2]}://{rest}", {"encrypted": True,
                                       "trusted_certificates": TrustCustomCAs(str(ca_file))}


def open_driver(settings: Settings, **kwargs: Any) -> Driver:
    """A driver with the configured credentials, already connected once; callers close it
    (use it as a context). The connection check makes a server that is down or a wrong
    password fail here, at once, instead of after the driver's transaction retries.
    ``neo4j.retry_s`` bounds those retries, so a server that dies mid-run ends the command
    within that budget instead of after the driver's own default."""
    options: dict[str, Any] = {"max_transaction_retry_time": settings.neo4j.retry_s,
                               "connection_timeout": settings.neo4j.connect_timeout_s, **kwargs}
    uri, tls = _tls_options(bolt_uri(settings),
                            None if settings.neo4j.managed else settings.neo4j.ca_file)
    driver = GraphDatabase.driver(
        uri, auth=(settings.neo4j.user, settings.resolved_password()), **tls, **options
    )
    try:
        driver.verify_connectivity()
    except BaseException:
        driver.close()
        raise
    return driver

