"""Tables whose headers name an entity type: one relation per row between the typed cells, and
the names a typed column gives the rest of the document."""

from __future__ import annotations

import re
from collections.abc import Sequence

from telesynth_tui.graph.extraction.model import Emit, Item, XEntity
from telesynth_tui.graph.extraction.names import IDENT_RE, Known, spot, strip_md
from telesynth_tui.graph.extraction.specs import spec_mentions

_HEADER_TYPES: tuple[tuple[str, str], ...] = (
    ("root cause", "RootCause"),
    ("cause", "RootCause"),
    ("alarm", "Alarm"),
    ("action", "Action"),
    ("remedy", "Action"),
    ("fix", "Action"),
    ("check", "Check"),
    ("parameter", "Parameter"),
    ("counter", "Counter"),
    ("kpi", "KPI"),
    ("specification", "Specification"),
    ("spec", "Specification"),
    ("standard", "Specification"),
)


_LOCAL_TYPES = ("Parameter", "Counter", "KPI", "Alarm")


def with_table_names(items: list[Item], known: Known) -> Known:
    """The known names plus what the document's typed tables name: a cell under a
    'Parameter', 'Counter', 'KPI' or 'Alarm' header names one (so 't300' or 'N310' in a
    parameter table is a parameter wherever the document mentions it)."""
    local: list[tuple[str, str, Sequence[str]]] = []
    for item in items:
        if item.kind != "row" or item.role in ("definitions", "references"):
            continue
        for header, cell in item.cells.items():
            type_ = header_type(header)
            if type_ not in _LOCAL_TYPES:
                continue
            name = strip_md(re.sub(r"\s*\(.*?\)\s*", " ", cell)).strip()
            named = short(name) or (
                type_ in ("Parameter", "Counter") and IDENT_RE.fullmatch(name) is not None
            )
            if named and not known.find(name):
                local.append((name, type_, ()))
    return known.extended(local)


def short(cell: str) -> bool:
    """A cell that names something: a few words, starting with a capital, not a sentence."""
    plain = strip_md(cell)
    return (
        1 <= len(plain.split()) <= 7
        and not plain.endswith(".")
        and plain[:1].isupper()
        and ";" not in plain
    )


def header_type(header: str) -> str | None:
    for word, type_ in _HEADER_TYPES:
        if word in header:
            return type_
    return None


def _cell_entities(cell: str, type_: str, known: Known) -> list[XEntity]:
    plain = strip_md(cell)
    if type_ in ("Counter", "Parameter"):
        hits = [e for e in spot(plain, known) if e.type == type_]
        return hits[:1] if type_ == "Parameter" else hits
    if type_ == "Specification":
        return [e for e, _, _ in spec_mentions(plain)]
    if not short(cell):
        return []
    hits = [e for e, _, _ in known.find(plain) if e.type == type_]
    return hits[:1] or [XEntity(plain, type_)]


_ROW_RULES: tuple[tuple[str, str, str], ...] = (
    ("Alarm", "indicates", "RootCause"),
    ("Counter", "indicates", "RootCause"),
    ("KPI", "indicates", "RootCause"),
    ("RootCause", "resolved_by", "Action"),
    ("Alarm", "resolved_by", "Action"),
    ("RootCause", "checked_by", "Check"),
    ("KPI", "measured_by", "Counter"),
    ("Check", "reads", "Counter"),
    ("Check", "reads", "KPI"),
    ("Check", "reads", "Parameter"),
    ("Action", "adjusts", "Parameter"),
    ("Parameter", "defined_in", "Specification"),
    ("Counter", "defined_in", "Specification"),
    ("KPI", "defined_in", "Specification"),
)


def table_row(item: Item, emit: Emit, known: Known) -> None:
    typed: dict[str, list[XEntity]] = {}
    for header, cell in item.cells.items():
        type_ = header_type(header)
        if type_ and type_ not in typed:
            typed[type_] = _cell_entities(cell, type_, known)
    for s_type, predicate, o_type in _ROW_RULES:
        for s in typed.get(s_type, []):
            for o in typed.get(o_type, []):
                emit(s, predicate, o, item, "table_row")
    # "param (alias in TS 36.331)" in a parameter cell
    for header, cell in item.cells.items():
        if header_type(header) == "Parameter":
            params = typed.get("Parameter", [])
            for spec, _, _ in spec_mentions(cell):
                for p in params:
                    emit(p, "defined_in", spec, item, "spec_inline")
