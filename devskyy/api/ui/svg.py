"""Graphs as inline SVG, drawn on the server from ``core.graph_layout`` (no script needed).

Each node is a ``<g>`` carrying ``data-node`` (its name) and a ``state-…`` class, with
its name and a state line as text: the state reads as a word and a glyph (✓ ✗ ▶ …),
never by colour alone. Edges are cubic curves from the right of one box to the left of
the next, with an arrowhead. Every name is escaped. The drawing has a ``<title>`` and
``role="img"``; the pages put the same facts in a table beside it for screen readers.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from html import escape

from devskyy.core.graph_layout import Box, layout

GLYPHS = {
    "pending": "○",
    "ready": "◔",
    "running": "▶",
    "retry_wait": "↻",
    "succeeded": "✓",
    "failed": "✗",
    "skipped": "⤼",
    "healthy": "✓",
    "degraded": "!",
    "recovering": "↻",
    "initializing": "◔",
    "missing": "?",
    "cancelled": "■",
    "interrupted": "⚠",
}
_CHAR_WIDTH = 7.4
_MAX_LABEL = 28


def _label(text: str) -> str:
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def state_text(state: str) -> str:
    """The state line under a node's name: glyph and word (``✓ succeeded``)."""
    glyph = GLYPHS.get(state, "•")
    return f"{glyph} {state.replace('_', ' ')}"


def graph_svg(
    title: str,
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str]],
    states: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
) -> str:
    """An SVG drawing of ``nodes`` and ``edges`` (``src -> dst``), left to right.

    ``states`` gives each node's state (a class and a text line); ``links`` makes a node
    a link (keyboard-focusable) to a page.
    """
    states = states or {}
    links = links or {}
    longest = max((len(_label(n)) for n in nodes), default=8)
    box = Box(width=max(120.0, longest * _CHAR_WIDTH + 28), height=46.0 if states else 34.0)
    placed = layout(nodes, edges, box)
    # One page shows several graphs: each needs its own arrowhead id.
    marker = "arrow-" + hashlib.sha256(title.encode()).hexdigest()[:10]
    parts = [
        f'<svg class="graph" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" '
        f'width="{placed.width:.0f}" height="{placed.height:.0f}">',
        f"<title>{escape(title)}</title>",
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>',
    ]
    for edge in placed.edges:
        points = [(edge.x1, edge.y1), *edge.via, (edge.x2, edge.y2)]
        path = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
        for (xa, ya), (xb, yb) in itertools.pairwise(points):
            bend = max(12.0, (xb - xa) / 2)
            path.append(f"C{xa + bend:.1f},{ya:.1f} {xb - bend:.1f},{yb:.1f} {xb:.1f},{yb:.1f}")
        parts.append(
            f'<path class="edge" marker-end="url(#{marker})" '
            f'data-edge="{escape(edge.src)}→{escape(edge.dst)}" d="{" ".join(path)}"/>'
        )
    name_y = 20.0 if states else box.height / 2 + 4.5  # centred when alone in its box
    for node in placed.nodes:
        state = states.get(node.name)
        cls = f"node state-{escape(state)}" if state else "node"
        inner = [
            f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{box.width:.1f}" '
            f'height="{box.height:.1f}" rx="6"/>',
            f'<text class="name" x="{node.x + 12:.1f}" y="{node.y + name_y:.1f}">'
            f"{escape(_label(node.name))}</text>",
        ]
        if state:
            inner.append(
                f'<text class="state" x="{node.x + 12:.1f}" y="{node.y + 37:.1f}">'
                f"{escape(state_text(state))}</text>"
            )
        group = f'<g class="{cls}" data-node="{escape(node.name)}">{"".join(inner)}</g>'
        href = links.get(node.name)
        if href:
            group = f'<a href="{escape(href)}">{group}</a>'
        parts.append(group)
    parts.append("</svg>")
    return "".join(parts)
