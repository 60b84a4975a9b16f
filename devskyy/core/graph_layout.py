"""Layered left-to-right layout of a directed acyclic graph (pure; the dashboard draws it).

``layout(nodes, edges)`` places every node in a column (its *layer*) and a row (its
*order* in that column), the Sugiyama scheme cut down to what small graphs need:

1. **Layers by longest path.** A node's layer is the length of the longest path that
   reaches it from a source, so every edge points right (``layer(src) < layer(dst)``)
   and a chain of N steps takes N columns.
2. **Order within a layer by barycenter.** Nodes start in the order given; then sweeps
   left to right and right to left move each node toward the mean row of its neighbours
   in the adjacent layer, which removes most crossings. Ties keep the previous order, so
   the result is deterministic.
3. **Coordinates** from the layer and the order with fixed box sizes and gaps; each
   column is centred vertically against the tallest one.

Edges to or from a name that is not a node, and cycles, are ``ValueError``: the caller
(validated manifests) never has them, and a silent half-drawing would hide a bug.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SWEEPS = 4
"""Barycenter passes (each one left-to-right plus right-to-left); more rarely helps."""
ROUTE_LIMIT = 250
"""Graphs with more nodes draw long edges straight: in a deep graph of a thousand nodes
the slots for routing them outnumber the nodes tenfold, and such a drawing is read as a
whole, not edge by edge."""


@dataclass(frozen=True)
class Box:
    """Sizes in user units: a node's box and the gaps between columns and rows."""

    width: float = 160.0
    height: float = 44.0
    gap_x: float = 56.0
    gap_y: float = 18.0
    margin: float = 12.0


@dataclass(frozen=True)
class PlacedNode:
    """A node's column (``layer``), row (``order``) and the top-left corner of its box."""

    name: str
    layer: int
    order: int
    x: float
    y: float


@dataclass(frozen=True)
class PlacedEdge:
    """An edge from the right middle of ``src``'s box to the left middle of ``dst``'s.

    ``via``: for an edge that skips layers, the entry and exit point of the slot it
    passes through in each layer between (empty for an edge between adjacent layers).
    """

    src: str
    dst: str
    x1: float
    y1: float
    x2: float
    y2: float
    via: tuple[tuple[float, float], ...] = ()
    """Points an edge that skips layers passes through, left to right."""


@dataclass(frozen=True)
class Layout:
    """Placed nodes (in input order), placed edges (in input order) and the canvas size."""

    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]
    width: float
    height: float
    box: Box

    def node(self, name: str) -> PlacedNode:
        """The placed node called ``name`` (``KeyError`` when there is none)."""
        for placed in self.nodes:
            if placed.name == name:
                return placed
        raise KeyError(name)


def longest_path_layers(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the number of edges on the longest path reaching it."""
    known = set(nodes)
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    indegree = dict.fromkeys(nodes, 0)
    for src, dst in edges:
        missing = src if src not in known else dst if dst not in known else None
        if missing is not None:
            raise ValueError(f"edge {src} -> {dst} names {missing!r}, which is not a node")
        succ[src].append(dst)
        indegree[dst] += 1
    layer = dict.fromkeys(nodes, 0)
    ready = deque(n for n in nodes if indegree[n] == 0)
    seen = 0
    while ready:
        current = ready.popleft()
        seen += 1
        for nxt in succ[current]:
            layer[nxt] = max(layer[nxt], layer[current] + 1)
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if seen != len(known):
        stuck = sorted(n for n in nodes if indegree[n] > 0)
        raise ValueError(f"the graph has a cycle through {', '.join(stuck)}")
    return layer


def _barycenter_pass(
    columns: list[list[str]],
    neighbours: dict[str, list[str]],
    order: range,
    reference: int,
) -> None:
    """Reorder each column of ``order`` by the mean row of its neighbours in the column
    ``reference`` steps away (-1: the left one, +1: the right one)."""
    for index in order:
        fixed = {name: row for row, name in enumerate(columns[index + reference])}

        def key(item: tuple[int, str], fixed: dict[str, int] = fixed) -> tuple[float, int]:
            row, name = item
            rows = [fixed[n] for n in neighbours[name] if n in fixed]
            # A node without neighbours there keeps its own row as its weight.
            return (sum(rows) / len(rows) if rows else float(row), row)

        columns[index] = [name for _, name in sorted(enumerate(columns[index]), key=key)]


def order_layers(
    nodes: Sequence[str], edges: Sequence[tuple[str, str]], layer: dict[str, int]
) -> list[list[str]]:
    """The columns, each ordered by barycenter sweeps (input order first)."""
    depth = max(layer.values(), default=-1) + 1
    columns: list[list[str]] = [[] for _ in range(depth)]
    for name in nodes:
        columns[layer[name]].append(name)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        preds[dst].append(src)
        succs[src].append(dst)
    for _ in range(SWEEPS):
        _barycenter_pass(columns, preds, range(1, depth), -1)
        _barycenter_pass(columns, succs, range(depth - 2, -1, -1), +1)
    return columns


def _split_long_edges(
    pairs: Sequence[tuple[str, str]], layer: dict[str, int]
) -> tuple[list[str], list[tuple[str, str]], list[list[str]]]:
    """Virtual nodes for edges that skip layers, so they are routed between boxes.

    Returns the virtual nodes (their layers added to ``layer``), the edges of the
    graph with every long edge replaced by its chain, and each input edge's chain.
    """
    virtual: list[str] = []
    short: list[tuple[str, str]] = []
    chains: list[list[str]] = []
    for index, (src, dst) in enumerate(pairs):
        chain: list[str] = []
        previous = src
        for step in range(layer[src] + 1, layer[dst]):
            # NUL never appears in a manifest name, so these cannot clash with nodes.
            name = f"\0{index}:{step}"
            layer[name] = step
            virtual.append(name)
            chain.append(name)
            short.append((previous, name))
            previous = name
        short.append((previous, dst))
        chains.append(chain)
    return virtual, short, chains


def layout(
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str]],
    box: Box | None = None,
    *,
    route: bool | None = None,
) -> Layout:
    """Place ``nodes`` left to right along ``edges`` (``src -> dst``); see the module doc.

    With ``route`` (the default up to ``ROUTE_LIMIT`` nodes), an edge that skips layers
    passes through a reserved slot in each layer between its ends (``PlacedEdge.via``),
    as in the Sugiyama scheme, instead of through other boxes.
    """
    box = box or Box()
    unique = list(dict.fromkeys(nodes))
    pairs = list(dict.fromkeys(edges))
    layer = longest_path_layers(unique, pairs)
    if route is None:
        route = len(unique) <= ROUTE_LIMIT
    if route:
        virtual, short, chains = _split_long_edges(pairs, layer)
    else:
        virtual, short, chains = [], pairs, [[] for _ in pairs]
    columns = order_layers([*unique, *virtual], short, layer)
    tallest = max((len(c) for c in columns), default=0)
    height = 2 * box.margin + tallest * box.height + max(tallest - 1, 0) * box.gap_y
    width = 2 * box.margin + len(columns) * box.width + max(len(columns) - 1, 0) * box.gap_x
    placed: dict[str, PlacedNode] = {}
    for index, column in enumerate(columns):
        used = len(column) * box.height + max(len(column) - 1, 0) * box.gap_y
        top = (height - used) / 2
        for row, name in enumerate(column):
            placed[name] = PlacedNode(
                name,
                index,
                row,
                box.margin + index * (box.width + box.gap_x),
                top + row * (box.height + box.gap_y),
            )
    half = box.height / 2
    placed_edges = tuple(
        PlacedEdge(
            src,
            dst,
            placed[src].x + box.width,
            placed[src].y + half,
            placed[dst].x,
            placed[dst].y + half,
            tuple(
                point
                for v in chain
                for point in (
                    (placed[v].x, placed[v].y + half),
                    (placed[v].x + box.width, placed[v].y + half),
                )
            ),
        )
        for (src, dst), chain in zip(pairs, chains, strict=True)
    )
    return Layout(tuple(placed[n] for n in unique), placed_edges, width, height, box)
