"""Neo4j Browser style (GraSS): the shipped style file and a parser that checks it.

GraSS styles by label only: it cannot size a node by a property value. The scoring job
therefore gives each scored account one band label (``sybilgnn.scoring.bands``), and the
style gives each band a diameter.

The shipped file styles the default graph. ``style_for(schema)`` gives the labelled node type
of another schema the accounts' rule (colour, size, its key as caption) in the same place,
so ``:Flagged`` and the score bands still override it.
"""

from __future__ import annotations

from importlib import resources

from sybilgnn.graph_schema import GraphSchema
from sybilgnn.neo4j.cypher import quote

__all__ = [
    "format_grass",
    "load_style",
    "parse_grass",
    "style_for",
]

STYLE_RESOURCE = "style.grass"


def load_style() -> str:
    """The GraSS text shipped with the package (``sybilgnn/browser/style.grass``)."""
    return resources.files("sybilgnn.browser").joinpath(STYLE_RESOURCE).read_text("utf-8")


def style_for(schema: GraphSchema) -> str:
    """The style for ``schema``: the shipped one, with the default labelled node's rule
    moved to ``schema``'s labelled label and captioned with its key."""
    text = load_style()
    default, node = GraphSchema.default().labelled_node, schema.labelled_node
    if (node.label, node.key) == (default.label, default.key):
        return text
    for name in (node.label, node.key):
        quote(name)  # raises unless a plain identifier: safe in a selector and a caption
    rules: dict[str, dict[str, str]] = {}
    for selector, props in parse_grass(text).items():
        if selector == f"node.{default.label}":
            selector, props = f"node.{node.label}", {**props, "caption": f"{{{node.key}}}"}
        rules[selector] = props
    return format_grass(rules)


def format_grass(rules: dict[str, dict[str, str]]) -> str:
    """GraSS text of ``parse_grass``'s rules (captions quoted again)."""
    blocks = []
    for selector, props in rules.items():
        lines = [f"  {key}: '{value}';" if key == "caption" else f"  {key}: {value};"
                 for key, value in props.items()]
        blocks.append(f"{selector} {{\n" + "\n".join(lines) + "\n}\n")
    return "\n".join(blocks)


def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """Parse GraSS the way Neo4j Browser does: ``selector { key: value; ... }``.

    Used to check the shipped style; Browser ignores what it cannot parse, so a typo would
    otherwise pass silently.
    """
    rules: dict[str, dict[str, str]] = {}
    keyword, body = "", ""
    inside_props = inside_string = False
    for char in text:
        if char == "'":
            inside_string = not inside_string
            continue
        if char == "{" and not inside_string:
            inside_props = True
            continue
        if char == "}" and not inside_string:
            if not inside_props:
                raise ValueError(f"unbalanced '}}' after {keyword!r}")
            inside_props = False
            props: dict[str, str] = {}
            for item in body.split(";"):
                key, sep, value = item.partition(":")
                if sep and key.strip() and value.strip():
                    props[key.strip()] = value.strip()
            rules[keyword] = props
            keyword, body = "", ""
            continue
        if inside_props:
            body += char
        elif not char.isspace():
            keyword += char
    if inside_props or keyword:
        raise ValueError(f"unterminated rule {keyword!r}")
    return rules
