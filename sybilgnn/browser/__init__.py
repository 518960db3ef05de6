"""The analysts' view in Neo4j Browser: saved queries, guide, style, verdicts.

Route chosen for Browser 5.24: the guide is an HTML page of ``<slide>`` elements served by a
tiny local web server (``sybilgnn guide --serve``) and opened with ``:guide <url>``; the
server allowlists 127.0.0.1/localhost in ``browser.remote_content_hostname_allowlist``.
"""

from __future__ import annotations

from sybilgnn.browser.guide import (
    GUIDE_FILE,
    STYLE_FILE,
    render_guide_html,
    render_guide_markdown,
    write_guide_files,
)
from sybilgnn.browser.queries import SAVED_QUERIES, VERDICTS, SavedQuery, query_by_name
from sybilgnn.browser.serve import DEFAULT_GUIDE_PORT, GuideServer
from sybilgnn.browser.style import load_style, parse_grass
from sybilgnn.browser.verdicts import Verdict, record_verdict

__all__ = [
    "DEFAULT_GUIDE_PORT",
    "GUIDE_FILE",
    "STYLE_FILE",
    "SAVED_QUERIES",
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
    "write_guide_files",
]
