"""The analysts' view in Neo4j Browser: saved queries, guide, style, verdicts.

Route chosen for Browser 5.24: the guide is an HTML page of ``<slide>`` elements served by a
tiny local web server (``sybilgnn guide --serve``) and opened with ``:guide <url>``; the
server allowlists 127.0.0.1/localhost in ``browser.remote_content_hostname_allowlist``.
Queries, guide, style and verdicts follow the graph schema (``GraphSchema``).
"""

from __future__ import annotations

from sybilgnn.browser.guide import (
    GUIDE_FILE,
    STYLE_FILE,
    render_guide_html,
    render_guide_markdown,
    write_guide_files,
)
from sybilgnn.browser.queries import VERDICTS, SavedQuery, query_by_name, saved_queries
from sybilgnn.browser.serve import DEFAULT_GUIDE_PORT, GuideServer
from sybilgnn.browser.style import load_style, parse_grass, style_for
from sybilgnn.browser.verdicts import Verdict, record_verdict

__all__ = [
    "DEFAULT_GUIDE_PORT",
    "GUIDE_FILE",
    "STYLE_FILE",
    "VERDICTS",
    "GuideServer",
    "SavedQuery",
    "Verdict",
    "load_style",
    "parse_grass",
    "query_by_name",
    "record_verdict",
    "render_guide_html",
    "render_guide_markdown",
    "saved_queries",
    "style_for",
    "write_guide_files",
]
