"""Report pictures as base64 PNG, so the HTML report is one self-contained file."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on batch machines

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sybilgnn.reporting.data import FleetGraph, RecentRun  # noqa: E402

__all__ = ["NODE_COLOURS", "edge_colours", "node_colours", "score_histogram_png", "fleet_graph_png",
           "recent_scores_png"]

# Same colours as the Browser style (sybilgnn/browser/style.grass).
NODE_COLOURS = {
    "flagged": "#E53935",
    "account": "#4C8EDA",
    "fleet": "#8E44AD",
    "ip": "#2A9D8F",
    "payment": "#F4A261",
    "other": "#A5ABB6",
}
_EDGE_COLOURS = {"MEMBER_OF": "#8E44AD", "USED_IP": "#2A9D8F", "PAID_WITH": "#F4A261",
                 "PROMPT_SIMILAR": "#E76F51"}
# Node and relationship types of another graph schema, in sorted order of their names, so
# a graph without IPs or payments still gets one colour per type (and a legend entry).
_PALETTE = ("#2A9D8F", "#F4A261", "#E76F51", "#264653", "#E9C46A", "#6A4C93", "#1982C4")


def node_colours(graph: FleetGraph) -> dict[str, str]:
    """Kind -> colour for a fleet's nodes: the scored type as accounts, flagged and fleet
    nodes as in the Browser, the default schema's IPs and payments as in the Browser, any
    other type from the palette."""
    fixed = {**NODE_COLOURS, graph.labelled_kind: NODE_COLOURS["account"]}
    others = sorted({kind for _, kind in graph.nodes} - set(fixed))
    return {**fixed, **{kind: _PALETTE[i % len(_PALETTE)] for i, kind in enumerate(others)}}


def edge_colours(graph: FleetGraph) -> dict[str, str]:
    """Relationship type -> colour: the default schema's as in the Browser, others from
    the palette."""
    others = sorted({rel for _, _, rel in graph.edges} - set(_EDGE_COLOURS))
    return {**_EDGE_COLOURS, **{rel: _PALETTE[i % len(_PALETTE)] for i, rel in enumerate(others)}}


def _png_base64(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def score_histogram_png(scores: Sequence[float], threshold: float | None) -> str:
    """Histogram of scores on a log count axis (flags are rare) with the threshold marked."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(list(scores), bins=40, range=(0.0, 1.0), color="#4C8EDA", edgecolor="white")
    if threshold is not None:
        ax.axvline(threshold, color="#E53935", linestyle="--", label=f"threshold {threshold:g}")
        ax.legend(loc="upper center")
    if scores:
        ax.set_yscale("log")
    ax.set_xlabel("sybil score")
    ax.set_ylabel("accounts")
    ax.set_title(f"Score distribution ({len(scores)} accounts)")
    return _png_base64(fig)


def recent_scores_png(runs: Sequence[RecentRun]) -> str:
    """One line per run: the share of its accounts in each stored score bin (log axis), the
    newest run darkest, so a shift of the whole distribution shows between runs."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    drawn = [(r, shares) for r in runs if (shares := r.bin_shares()) is not None]
    for age, (run, shares) in enumerate(drawn):  # newest first
        centres = [(i + 0.5) / len(shares) for i in range(len(shares))]
        ax.plot(centres, shares, marker=".", linewidth=1.2,
                color=plt.get_cmap("Blues")(1.0 - 0.6 * age / max(1, len(drawn) - 1)),
                label=f"{run.run_id} (v{run.model_version})")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("sybil score")
    ax.set_ylabel("share of accounts")
    ax.set_title(f"Score distribution of recent runs ({len(drawn)} with a stored histogram)",
                 fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png_base64(fig)


def fleet_graph_png(graph: FleetGraph, title: str, *, seed: int = 0) -> str:
    """The fleet drawn with a spring layout, nodes coloured by type as in the Browser."""
    g = nx.Graph()
    for key, kind in graph.nodes:
        g.add_node(key, kind=kind)
    for start, end, rel_type in graph.edges:
        g.add_edge(start, end, rel_type=rel_type)
    fig, ax = plt.subplots(figsize=(5, 4))
    colours = node_colours(graph)
    if g.number_of_nodes():
        positions = nx.spring_layout(g, seed=seed, k=1.2 / max(1, g.number_of_nodes()) ** 0.5)
        kinds = nx.get_node_attributes(g, "kind")
        edges = edge_colours(graph)
        nx.draw_networkx_edges(g, positions, ax=ax, width=1.0, alpha=0.7,
                               edge_color=[edges[d["rel_type"]]
                                           for _, _, d in g.edges(data=True)])
        nx.draw_networkx_nodes(g, positions, ax=ax, node_size=[
            420 if kinds[n] == "fleet" else 160 for n in g.nodes],
            node_color=[colours[kinds[n]] for n in g.nodes])
    present = sorted({kind for _, kind in graph.nodes})
    handles = [Line2D([0], [0], marker="o", linestyle="", color=colours[k], label=k)
               for k in present]
    if handles:
        ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=False)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    return _png_base64(fig)
