"""Open a Neo4j driver from the settings, for the managed local server or a remote one."""

from __future__ import annotations

from typing import Any

from neo4j import Driver, GraphDatabase

from sybilgnn.config import Settings

__all__ = ["bolt_uri", "open_driver"]


def bolt_uri(settings: Settings) -> str:
    """The managed server listens on ``neo4j.bolt_port``; otherwise ``neo4j.uri`` is used."""
    if settings.neo4j.managed:
        return f"bolt://127.0.0.1:{settings.neo4j.bolt_port}"
    return settings.neo4j.uri


def open_driver(settings: Settings, **kwargs: Any) -> Driver:
    """A driver with the configured credentials, already connected once; callers close it
    (use it as a context). The connection check makes a server that is down or a wrong
    password fail here, at once, instead of after the driver's transaction retries.
    ``neo4j.retry_s`` bounds those retries, so a server that dies mid-run ends the command
    within that budget instead of after the driver's own default."""
    options: dict[str, Any] = {"max_transaction_retry_time": settings.neo4j.retry_s,
                               "connection_timeout": settings.neo4j.connect_timeout_s, **kwargs}
    driver = GraphDatabase.driver(
        bolt_uri(settings), auth=(settings.neo4j.user, settings.resolved_password()), **options
    )
    try:
        driver.verify_connectivity()
    except BaseException:
        driver.close()
        raise
    return driver

