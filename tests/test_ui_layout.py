"""core.graph_layout: layers by longest path, barycenter order, coordinates; and the SVG."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devskyy.api.ui.svg import graph_svg
from devskyy.core.graph_layout import (
    ROUTE_LIMIT,
    Box,
    layout,
    longest_path_layers,
    order_layers,
)


def test_layers_are_the_longest_path_from_a_source() -> None:
    # a -> b -> d and a -> d: d sits after b (longest path 2), not next to b (shortest 1).
    layers = longest_path_layers(["a", "b", "c", "d"], [("a", "b"), ("b", "d"), ("a", "d")])
    assert layers == {"a": 0, "b": 1, "c": 0, "d": 2}


def test_a_cycle_and_an_unknown_node_are_errors_with_names() -> None:
    with pytest.raises(ValueError, match=r"^the graph has a cycle through b, c$"):
        longest_path_layers(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")])
    with pytest.raises(ValueError, match=r"^edge a -> z names 'z', which is not a node$"):
        layout(["a"], [("a", "z")])


def test_barycenter_order_removes_a_crossing() -> None:
    # Given order puts x2 above x1 although x1 hangs off the first source: one crossing.
    nodes = ["s1", "s2", "x2", "x1"]
    edges = [("s1", "x1"), ("s2", "x2")]
    columns = order_layers(nodes, edges, longest_path_layers(nodes, edges))
    assert columns == [["s1", "s2"], ["x1", "x2"]]


def test_ties_keep_the_given_order() -> None:
    nodes = ["root", "c", "a", "b"]
    edges = [("root", "c"), ("root", "a"), ("root", "b")]
    assert order_layers(nodes, edges, longest_path_layers(nodes, edges)) == [
        ["root"],
        ["c", "a", "b"],
    ]


def test_coordinates_are_left_to_right_and_columns_centred() -> None:
    box = Box(width=100, height=40, gap_x=50, gap_y=10, margin=5)
    placed = layout(["a", "b", "c"], [("a", "b"), ("a", "c")], box)
    assert (placed.width, placed.height) == (5 + 100 + 50 + 100 + 5, 5 + 40 + 10 + 40 + 5)
    a, b, c = placed.node("a"), placed.node("b"), placed.node("c")
    assert (a.x, b.x, c.x) == (5, 155, 155)
    assert (b.y, c.y) == (5, 55)
    assert a.y == 30  # centred against the two-node column
    edge = placed.edges[0]
    assert (edge.x1, edge.y1, edge.x2, edge.y2) == (105, 50, 155, 25)


def test_an_edge_that_skips_a_layer_passes_through_its_own_slot() -> None:
    # a -> b -> c and a -> c: the long edge gets a slot in b's column, beside b, not on it.
    box = Box(width=100, height=40, gap_x=50, gap_y=10, margin=5)
    placed = layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")], box)
    assert [n.name for n in placed.nodes] == ["a", "b", "c"]  # slots are not nodes
    b = placed.node("b")
    long_edge = placed.edges[2]
    assert (long_edge.src, long_edge.dst) == ("a", "c")
    (x_in, y_in), (x_out, y_out) = long_edge.via
    assert (x_in, x_out) == (b.x, b.x + box.width)
    assert y_in == y_out
    assert abs(y_in - (b.y + box.height / 2)) >= box.height + box.gap_y  # another row
    assert placed.edges[0].via == ()
    assert placed.height == 5 + 40 + 10 + 40 + 5  # two rows: b and the slot


def test_big_graphs_draw_long_edges_straight() -> None:
    nodes = ["a", "b", "c"]
    edges = [("a", "b"), ("b", "c"), ("a", "c")]
    straight = layout(nodes, edges, route=False)
    assert straight.edges[2].via == ()
    assert len({n.y for n in straight.nodes}) == 1  # no slot reserved: one row
    # A chain of ROUTE_LIMIT + 1 nodes plus an edge from its first to its last node.
    over = [f"n{i}" for i in range(ROUTE_LIMIT + 1)]
    over_edges = [*itertools.pairwise(over), (over[0], over[-1])]
    assert layout(over, over_edges).edges[-1].via == ()  # over the limit: straight
    at = over[:-1]
    at_edges = [*itertools.pairwise(at), (at[0], at[-1])]
    assert len(layout(at, at_edges).edges[-1].via) == 2 * (ROUTE_LIMIT - 2)  # routed


def test_an_empty_graph_has_only_margins() -> None:
    placed = layout([], [])
    assert placed.nodes == ()
    assert placed.width == placed.height == 2 * Box().margin


@given(
    st.integers(min_value=1, max_value=12).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(
                    lambda e: e[0] < e[1]
                ),
                max_size=30,
            ),
        )
    )
)
def test_every_edge_points_right_and_no_two_boxes_overlap(graph: tuple[int, list[Any]]) -> None:
    n, pairs = graph
    nodes = [f"n{i}" for i in range(n)]
    edges = [(f"n{a}", f"n{b}") for a, b in pairs]
    placed = layout(nodes, edges)
    for edge in placed.edges:
        assert placed.node(edge.src).layer < placed.node(edge.dst).layer
        assert edge.x1 < edge.x2
    spots = {(p.x, p.y) for p in placed.nodes}
    assert len(spots) == n
    for p in placed.nodes:
        assert p.x >= 0
        assert p.x + placed.box.width <= placed.width
        assert p.y >= 0
        assert p.y + placed.box.height <= placed.height


def test_the_svg_names_each_state_in_words_and_escapes_names() -> None:
    svg = graph_svg(
        "Run <1>",
        ["scan", "fix"],
        [("scan", "fix")],
        {"scan": "succeeded", "fix": "retry_wait"},
    )
    assert svg.startswith('<svg class="graph" role="img"')
    assert "<title>Run &lt;1&gt;</title>" in svg
    assert '<g class="node state-succeeded" data-node="scan">' in svg
    assert '<text class="state" x="24.0" y="49.0">✓ succeeded</text>' in svg
    assert "✓ succeeded" in svg
    assert "↻ retry wait" in svg
    assert 'data-edge="scan→fix"' in svg
    assert svg.count('marker-end="url(#arrow-') == 1
    assert svg.endswith("</svg>")
