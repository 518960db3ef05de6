"""Prompt text for many rows at once: choose a template per row, fill it, join the pieces.

A fleet has its own *house style*: a preferred wording for every phrase segment and a narrow
window of slot values. ``paraphrase_rate`` moves rows off the preferred wording and
``slot_diversity`` widens the window, which is how scenarios control near-duplication.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sybilgnn.simulate.formatting import join_columns
from sybilgnn.simulate.vocab import (
    LONG_TAIL_TEMPLATE,
    PERSONA_TEMPLATE,
    POPULAR_TEMPLATES,
    SLOT,
    Template,
)

__all__ = ["HouseStyle", "MAX_SEGMENTS", "render_template", "render_groups", "render_legit",
           "render_campaign"]

_ARRAYS: dict[tuple[str, int], pa.Array] = {}
MAX_SEGMENTS = 8
POPULAR_SHARE = 0.15       # legit prompts from a popular template
LEGIT_PARAPHRASE = 0.25    # strangers word popular requests slightly differently


def _choices(template: Template, s: int) -> pa.Array:
    key = (template.name, s)
    if key not in _ARRAYS:
        _ARRAYS[key] = pa.array(template.segments[s].choices)
    return _ARRAYS[key]


@dataclass(frozen=True)
class HouseStyle:
    """Per-row style: preferred choice per segment and where the slot window starts."""

    preferred: np.ndarray    # int64 [rows, MAX_SEGMENTS]
    paraphrase_rate: float
    slot_diversity: float    # 1.0: any slot value


def render_template(template: Template, rng: np.random.Generator, style: HouseStyle) -> pa.Array:
    """Fill ``template`` once per row of ``style``."""
    n = style.preferred.shape[0]
    columns = []
    for s, segment in enumerate(template.segments):
        k = len(segment.choices)
        if segment.kind == SLOT:
            width = max(1, round(style.slot_diversity * k))
            idx = (style.preferred[:, s] + rng.integers(0, width, n)) % k
        else:
            swap = rng.random(n) < style.paraphrase_rate
            idx = np.where(swap, rng.integers(0, k, n), style.preferred[:, s] % k)
        columns.append(pc.take(_choices(template, s), pa.array(idx)))
    return join_columns(columns)


def _free_style(n: int) -> HouseStyle:
    return HouseStyle(np.zeros((n, MAX_SEGMENTS), dtype=np.int64), LEGIT_PARAPHRASE, 1.0)


def render_groups(group: np.ndarray, renderers: list) -> pa.Array:
    """Render each group of rows with its renderer and put rows back in order."""
    n = group.size
    order = np.argsort(group, kind="stable")
    pieces = []
    bounds = np.searchsorted(group[order], np.arange(len(renderers) + 1))
    for g, render in enumerate(renderers):
        rows = order[bounds[g]:bounds[g + 1]]
        if rows.size:
            pieces.append(render(rows))
    if not pieces:
        return pa.array([], type=pa.string())
    merged = pa.concat_arrays(pieces)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    return merged.take(pa.array(inverse))


def render_legit(rng: np.random.Generator, n: int) -> pa.Array:
    """Ordinary traffic: popular templates repeated by strangers, and a long free-form tail."""
    popular = rng.random(n) < POPULAR_SHARE
    which = rng.integers(0, len(POPULAR_TEMPLATES), n)
    group = np.where(popular, which, len(POPULAR_TEMPLATES)).astype(np.int64)
    templates = list(POPULAR_TEMPLATES) + [LONG_TAIL_TEMPLATE]

    def renderer(template: Template):  # noqa: ANN202 - small closure
        return lambda rows: render_template(template, rng, _free_style(rows.size))

    return render_groups(group, [renderer(t) for t in templates])


def render_campaign(
    rng: np.random.Generator,
    templates: tuple[Template, ...],
    template_of_row: np.ndarray,
    style: HouseStyle,
    *,
    cover_share: float,
    prefix_share: float,
) -> pa.Array:
    """Campaign traffic in the fleet's house style, with cover prompts and persona prefixes."""
    n = template_of_row.size
    cover = rng.random(n) < cover_share
    group = np.where(cover, len(templates), template_of_row).astype(np.int64)

    def renderer(template: Template):  # noqa: ANN202
        return lambda rows: render_template(
            template, rng, HouseStyle(style.preferred[rows], style.paraphrase_rate,
                                      style.slot_diversity))

    renderers = [renderer(t) for t in templates]
    renderers.append(lambda rows: render_legit(rng, rows.size))
    text = render_groups(group, renderers)
    prefixed = rng.random(n) < prefix_share
    if prefixed.any():
        persona = render_template(PERSONA_TEMPLATE, rng, _free_style(n))
        with_prefix = pc.binary_join_element_wise(persona, text, ". ")
        text = pc.if_else(pa.array(prefixed), with_prefix, text)
    return text
