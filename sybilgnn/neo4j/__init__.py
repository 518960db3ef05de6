"""Neo4j, the server side: the local server's lifecycle, the procedures plugin, connections and
read-only queries. The export of a snapshot is its own stage, ``sybilgnn.export``."""

from sybilgnn.neo4j.connection import bolt_uri, open_driver
from sybilgnn.neo4j.server import LocalNeo4j, Neo4jServerError, ServerStatus

__all__ = ["LocalNeo4j", "Neo4jServerError", "ServerStatus", "bolt_uri", "open_driver"]
