"""The report's fleet pictures colour any graph schema's types, as the Browser style does."""

from __future__ import annotations

from sybilgnn.reporting.data import FleetGraph
from sybilgnn.reporting.figures import edge_colours, fleet_graph_png, node_colours


def test_the_default_schema_keeps_the_browser_colours() -> None:
    graph = FleetGraph(nodes=[("a1", "account"), ("a2", "flagged"), ("ip1", "ip"),
                              ("c1", "payment"), ("f", "fleet")],
                       edges=[("a1", "ip1", "USED_IP"), ("a2", "c1", "PAID_WITH")])
    colours = node_colours(graph)
    assert [colours[k] for k in ("account", "flagged", "ip", "payment", "fleet")] == [
        "#4C8EDA", "#E53935", "#2A9D8F", "#F4A261", "#8E44AD"]
    assert edge_colours(graph)["USED_IP"] == "#2A9D8F"


def test_another_schemas_types_get_one_colour_each_in_name_order() -> None:
    graph = FleetGraph(nodes=[("w1", "worker"), ("w2", "flagged"), ("d1", "device"),
                              ("s1", "site"), ("f", "fleet")],
                       edges=[("w1", "d1", "USED_DEVICE"), ("w1", "s1", "AT_SITE"),
                              ("w1", "w2", "COWORKED"), ("w1", "f", "MEMBER_OF")],
                       labelled_kind="worker")
    colours = node_colours(graph)
    assert colours["worker"] == "#4C8EDA"  # the scored type is drawn as accounts are
    assert (colours["device"], colours["site"]) == ("#2A9D8F", "#F4A261")
    edges = edge_colours(graph)
    assert (edges["AT_SITE"], edges["COWORKED"], edges["USED_DEVICE"]) == (
        "#2A9D8F", "#F4A261", "#E76F51")
    assert edges["MEMBER_OF"] == "#8E44AD"
    assert fleet_graph_png(graph, "fleet f").startswith("iVBOR")  # a PNG, base64
