"""Render the analysts' Neo4j Browser guide (HTML slides) and its Markdown twin.

Neo4j Browser 5 plays a guide from a URL with ``:guide <url>`` (sidebar) or ``:play <url>``
(a frame). It fetches the page itself, so the page's host must be on the server's
``browser.remote_content_hostname_allowlist``; each ``<slide>`` becomes one slide and a
click on a ``<pre class="runnable">`` puts its text into the editor.

Queries and style follow the graph schema (``GraphSchema.from_settings(settings)``);
``docs/analyst-guide.md`` holds the default schema's queries.
"""

from __future__ import annotations

import html
from pathlib import Path

from sybilgnn.browser.queries import SavedQuery, saved_queries
from sybilgnn.browser.style import style_for
from sybilgnn.graph_schema import GraphSchema

__all__ = [
    "GUIDE_FILE",
    "STYLE_FILE",
    "render_guide_html",
    "render_guide_markdown",
    "write_guide_files",
]

GUIDE_FILE = "sybilgnn.html"
STYLE_FILE = "style.grass"


def _runnable(text: str) -> str:
    return f'<pre class="runnable">{html.escape(text)}</pre>'


def _query_slide(index: int, query: SavedQuery, key: str) -> str:
    params = "\n".join(_runnable(line) for line in query.param_lines())
    param_block = (f"<p>Set the parameters (click, edit the value, run):</p>\n{params}"
                   if params else "<p>No parameters.</p>")
    write_note = (f"<p><strong>This query writes.</strong> Check the <code>{html.escape(key)}"
                  "</code> first.</p>" if query.writes else "")
    return f"""<slide class="row-fluid">
  <div class="col-sm-12">
    <h3>{index}. {html.escape(query.title)}</h3>
    <p>{html.escape(query.description)}</p>
    {write_note}
    {param_block}
    <p>Then the query (click to put it in the editor, then run it):</p>
    {_runnable(query.cypher)}
  </div>
</slide>"""


def render_guide_html(base_url: str | None = None, *, schema: GraphSchema) -> str:
    """The guide page for ``schema``'s graph; ``base_url`` (where it is served) adds a
    one-click ``:style`` line."""
    style_line = (_runnable(f":style {base_url.rstrip('/')}/{STYLE_FILE}") if base_url else
                  "<p>Drag <code>sybilgnn/browser/style.grass</code> onto the Browser's "
                  "Favorites drawer, or run <code>sybilgnn guide --serve</code>.</p>")
    from sybilgnn.scoring.bands import BAND_LABELS  # the labels the scoring job writes

    bands = ", ".join(BAND_LABELS)
    node = schema.labelled_node
    label, plural = html.escape(node.label), html.escape(node.name.replace("_", " ") + "s")
    relations = ", ".join(f"<code>:{html.escape(schema.relations[r].type)}</code>"
                          for r in schema.fleet_relations)
    intro = f"""<slide class="row-fluid">
  <div class="col-sm-12">
    <h3>sybilgnn: review flagged fleets</h3>
    <p>The scoring job writes <code>sybil_score</code>, <code>sybil_flag</code> and the
    <code>:Flagged</code> label on <code>:{label}</code> nodes, groups flagged {plural}
    linked along {relations} into <code>:Fleet</code> nodes, and stores the evidence behind
    each flag. This guide walks through one review.</p>
    <p>First apply the sybilgnn style: flagged {plural} red, other {plural} blue, fleets
    purple; {plural} are sized by score band ({bands}).</p>
    {style_line}
  </div>
</slide>"""
    slides = [intro] + [_query_slide(i, q, node.key)
                        for i, q in enumerate(saved_queries(schema), start=1)]
    body = "\n".join(slides)
    return f"""<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>sybilgnn analyst guide</title></head>
<body>
<article class="guide">
<carousel class="deck container-fluid">
{body}
</carousel>
</article>
</body>
</html>
"""


def render_guide_markdown(schema: GraphSchema) -> str:
    """The saved queries as Markdown, copy-paste ready (``docs/analyst-guide.md`` holds
    ``render_guide_markdown(GraphSchema.default())``)."""
    parts: list[str] = []
    for index, query in enumerate(saved_queries(schema), start=1):
        parts.append(f"### {index}. {query.title}\n\n{query.description}\n")
        lines = query.param_lines()
        if lines:
            parts.append("```\n" + "\n".join(lines) + "\n```\n")
        parts.append(f"```cypher\n{query.cypher}\n```\n")
    return "\n".join(parts)


def write_guide_files(out_dir: str | Path, base_url: str | None = None, *,
                      schema: GraphSchema) -> list[Path]:
    """Write the guide page and the style of ``schema``'s graph to ``out_dir`` for any
    static web server."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    guide = target / GUIDE_FILE
    guide.write_text(render_guide_html(base_url, schema=schema), encoding="utf-8")
    style = target / STYLE_FILE
    style.write_text(style_for(schema), encoding="utf-8")
    return [guide, style]
