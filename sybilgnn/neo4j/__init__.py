"""Neo4j: the local server's lifecycle, connections, ingest, export and write-back."""

from sybilgnn.neo4j.connection import bolt_uri, open_driver
from sybilgnn.neo4j.server import LocalNeo4j, Neo4jServerError, ServerStatus

__all__ = ["LocalNeo4j", "Neo4jServerError", "ServerStatus", "bolt_uri", "open_driver"]
