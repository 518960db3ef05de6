"""Neo4j Browser style (GraSS): the shipped style file and a parser that checks it.

GraSS styles by label only: it cannot size a node by a property value. The scoring job
therefore gives each scored account one band label (``sybilgnn.scoring.bands``), and the
style gives each band a diameter.
"""

from __future__ import annotations

from importlib import resources

__all__ = [
    "load_style",
    "parse_grass",
]

STYLE_RESOURCE = "style.grass"


def load_style() -> str:
    """The GraSS text shipped with the package (``sybilgnn/browser/style.grass``)."""
    return resources.files("sybilgnn.browser").joinpath(STYLE_RESOURCE).read_text("utf-8")


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
