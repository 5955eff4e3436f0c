from __future__ import annotations

from pathlib import Path

import pytest

from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.store import KnowledgeGraph
from telesynth_tui.graph.views import (
    load_graph,
    neighbourhood,
    parse_pattern,
    pattern_paths,
    shortest_path,
)
from telesynth_tui.project import Project

from .test_import import write_small_kg


@pytest.fixture
def small(project: Project, tmp_path: Path) -> tuple[Project, KnowledgeGraph]:
    import_paths(project.connect(), [write_small_kg(tmp_path / "kg")], project.settings.ingest)
    conn = project.connect()
    return project, KnowledgeGraph(conn)


def ids(kg: KnowledgeGraph, *names: str) -> list[int]:
    out = [kg.resolve(n) for n in names]
    assert None not in out
    return out  # type: ignore[return-value]


def test_k_hop_neighbourhood(small: tuple[Project, KnowledgeGraph]) -> None:
    _, kg = small
    graph = load_graph(kg.conn)
    alarm, cause, action, param = ids(
        kg, "High RSSI alarm", "Uplink interference", "Find the interferer", "pZeroNominalPusch"
    )
    assert neighbourhood(graph, alarm, 1) == {alarm: 0, cause: 1}
    assert neighbourhood(graph, alarm, 3) == {alarm: 0, cause: 1, action: 2, param: 3}
    assert neighbourhood(graph, param, 1) == {param: 0, action: 1}  # follows edges backwards too


def test_shortest_path_keeps_edge_direction(small: tuple[Project, KnowledgeGraph]) -> None:
    _, kg = small
    graph = load_graph(kg.conn)
    alarm, cause, action, param = ids(
        kg, "High RSSI alarm", "Uplink interference", "Find the interferer", "p0NominalPUSCH"
    )
    path = shortest_path(graph, param, alarm)
    assert [(e.subject_id, e.predicate, e.object_id) for e in path] == [
        (action, "adjusts", param),
        (cause, "resolved_by", action),
        (alarm, "indicates", cause),
    ]
    assert shortest_path(graph, alarm, ids(kg, "pmUlRssiAvg")[0]) == []


def test_pattern_paths(small: tuple[Project, KnowledgeGraph]) -> None:
    _, kg = small
    graph = load_graph(kg.conn)
    paths = pattern_paths(
        graph, "Alarm -indicates-> RootCause -resolved_by-> Action -adjusts-> Parameter"
    )
    assert len(paths) == 1
    assert [e.predicate for e in paths[0]] == ["indicates", "resolved_by", "adjusts"]
    assert pattern_paths(graph, "Alarm -indicates-> RootCause -adjusts-> Parameter") == []
    assert len(pattern_paths(graph, "* -*-> Action")) == 1
    assert len(pattern_paths(graph, "KPI -measured_by-> Counter")) == 1


def test_bad_pattern_is_a_clear_error() -> None:
    with pytest.raises(TelesynthError, match="Type -predicate-> Type"):
        parse_pattern("Alarm indicates RootCause")
