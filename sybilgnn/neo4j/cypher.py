"""Names from the config in Cypher text: checked and backquoted, never raw user text.

Every stage that builds Cypher from configured labels, relationship types or property keys
(export, scoring, write-back, Browser, reports, replay) quotes them here.
"""

from __future__ import annotations

import re

from sybilgnn.errors import InputError

__all__ = ["SchemaError", "quote"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SchemaError(InputError):
    """A configured name (label, relationship type, property) the graph lacks, or one that
    is not a plain identifier."""


def quote(name: str) -> str:
    """Backquote a checked identifier for a Cypher string (never raw user text)."""
    if not _IDENTIFIER.match(name):
        raise SchemaError(f"{name!r} is not a plain identifier (letters, digits, underscore)")
    return f"`{name}`"
