"""networkx views of the relations: k-hop neighbourhoods, shortest paths, pattern paths."""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx

from telesynth_tui.errors import TelesynthError


@dataclass(frozen=True)
class Edge:
    relation_id: int
    subject_id: int
    predicate: str
    object_id: int


@dataclass(frozen=True)
class PatternStep:
    node_type: str | None  # None matches any type ("*")
    predicate: str | None  # predicate leading to the next node (None after the last)


def load_graph(conn: sqlite3.Connection) -> nx.MultiDiGraph:
    """All entities as nodes (name, type) and accepted relations as keyed edges (predicate);
    extracted candidates wait for review and are not part of the graph."""
    graph = nx.MultiDiGraph()
    for entity_id, name, type_ in conn.execute("SELECT id, name, type FROM entities"):
        graph.add_node(entity_id, name=name, type=type_)
    graph.add_edges_from(
        (s, o, rid, {"predicate": p})
        for rid, s, p, o in conn.execute(
            "SELECT id, subject_id, predicate, object_id FROM relations WHERE status = 'accepted'"
        )
    )
    return graph


def neighbourhood(
    graph: nx.MultiDiGraph, entity_id: int, hops: int = 1, max_fanout: int | None = None
) -> dict[int, int]:
    """Entities within `hops` steps in either direction: {entity id: distance}."""
    if entity_id not in graph:
        return {}
    distance = {entity_id: 0}
    frontier = [entity_id]
    for depth in range(1, hops + 1):
        nxt: list[int] = []
        for node in frontier:
            neighbours = list(dict.fromkeys([*graph.successors(node), *graph.predecessors(node)]))
            for other in neighbours[:max_fanout]:
                if other not in distance:
                    distance[other] = depth
                    nxt.append(other)
        frontier = nxt
    return distance


def edges_between(graph: nx.MultiDiGraph, nodes: set[int]) -> list[Edge]:
    """Relations whose subject and object are both in `nodes`."""
    edges: list[Edge] = []
    for s, o, rid, data in graph.subgraph(nodes).edges(keys=True, data=True):
        edges.append(Edge(rid, s, data["predicate"], o))
    return edges


def edges_around(graph: nx.MultiDiGraph, entity_id: int, limit: int | None = None) -> list[Edge]:
    """Relations that start or end at the entity (outgoing first)."""
    out = [
        Edge(k, s, d["predicate"], o)
        for s, o, k, d in graph.out_edges(entity_id, keys=True, data=True)
    ]
    into = [
        Edge(k, s, d["predicate"], o)
        for s, o, k, d in graph.in_edges(entity_id, keys=True, data=True)
    ]
    return (out + into)[:limit]


def shortest_path(graph: nx.MultiDiGraph, source: int, target: int) -> list[Edge]:
    """Shortest chain of relations between two entities, following edges either way."""
    try:
        nodes = nx.shortest_path(graph.to_undirected(as_view=True), source, target)
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return []
    path: list[Edge] = []
    for a, b in itertools.pairwise(nodes):
        data = graph.get_edge_data(a, b)
        if data:
            rid, attrs = next(iter(data.items()))
            path.append(Edge(rid, a, attrs["predicate"], b))
        else:
            rid, attrs = next(iter(graph.get_edge_data(b, a).items()))
            path.append(Edge(rid, b, attrs["predicate"], a))
    return path


_STEP_RE = re.compile(r"\s*-\s*([A-Za-z_*]+)\s*->\s*")


def parse_pattern(pattern: str) -> list[PatternStep]:
    """'Alarm -indicates-> RootCause -resolved_by-> Action' into typed steps ('*' = any)."""
    parts = _STEP_RE.split(pattern.strip())
    if len(parts) < 3 or len(parts) % 2 == 0:
        raise TelesynthError(f"cannot read the pattern {pattern!r}: write Type -predicate-> Type")
    steps: list[PatternStep] = []
    for i in range(0, len(parts), 2):
        node = parts[i].strip()
        if not node or " " in node:
            raise TelesynthError(f"cannot read the pattern {pattern!r} near {node!r}")
        predicate = parts[i + 1] if i + 1 < len(parts) else None
        steps.append(
            PatternStep(None if node == "*" else node, None if predicate == "*" else predicate)
        )
    return steps


def pattern_paths(
    graph: nx.MultiDiGraph, pattern: str, start: int | None = None, limit: int = 100
) -> list[list[Edge]]:
    """Directed paths whose node types and predicates follow the pattern."""
    steps = parse_pattern(pattern)

    def type_ok(node: int, step: PatternStep) -> bool:
        return step.node_type is None or graph.nodes[node].get("type") == step.node_type

    def walk(node: int, index: int, path: list[Edge]) -> Iterator[list[Edge]]:
        if index == len(steps) - 1:
            yield list(path)
            return
        step = steps[index]
        for _, nxt, rid, data in graph.out_edges(node, keys=True, data=True):
            if step.predicate not in (None, data["predicate"]):
                continue
            if not type_ok(nxt, steps[index + 1]) or any(e.subject_id == nxt for e in path):
                continue
            path.append(Edge(rid, node, data["predicate"], nxt))
            yield from walk(nxt, index + 1, path)
            path.pop()

    starts = [start] if start is not None else sorted(graph.nodes)
    found: list[list[Edge]] = []
    for node in starts:
        if node not in graph or not type_ok(node, steps[0]):
            continue
        for path in walk(node, 0, []):
            found.append(path)
            if len(found) >= limit:
                return found
    return found
