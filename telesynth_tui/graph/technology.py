"""Radio technology of entities: LTE, NR, both, or none ('' for what is not radio-specific).

A plan stays within one technology: it never joins an LTE-only entity with an NR-only one.
`cross_technology_relations` lists the relations of a graph that do (a check on the data).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

TECHNOLOGIES = ("LTE", "NR", "both")
_SPELLINGS = {
    "lte": "LTE",
    "4g": "LTE",
    "e-utra": "LTE",
    "nr": "NR",
    "5g": "NR",
    "both": "both",
    "lte/nr": "both",
    "nr/lte": "both",
    "": "",
}


def normalize_technology(text: str) -> str | None:
    """'LTE', 'NR', 'both' or '' for a spelling we know; None for anything else."""
    return _SPELLINGS.get(text.strip().lower())


def specific(technologies: Iterable[str]) -> set[str]:
    """The single technologies (LTE, NR) among the given ones."""
    return {t for t in technologies if t in ("LTE", "NR")}


def compatible(current: str, technology: str) -> bool:
    """Can an entity of `technology` join a plan of `current` ('' or 'both' while open)?"""
    return current not in ("LTE", "NR") or technology not in ("LTE", "NR") or technology == current


def cross_technology_relations(conn: sqlite3.Connection) -> list[dict[str, object]]:
    """Relations joining an LTE-only entity with an NR-only one, with where they come from."""
    rows = conn.execute(
        "SELECT r.id, s.name, s.technology, r.predicate, o.name, o.technology, f.path, r.line"
        " FROM relations r JOIN entities s ON s.id = r.subject_id"
        " JOIN entities o ON o.id = r.object_id JOIN source_files f ON f.id = r.source_file_id"
        " WHERE s.technology IN ('LTE', 'NR') AND o.technology IN ('LTE', 'NR')"
        " AND s.technology != o.technology AND r.status = 'accepted' ORDER BY r.id"
    ).fetchall()
    return [
        {
            "relation_id": r[0],
            "subject": r[1],
            "subject_technology": r[2],
            "predicate": r[3],
            "object": r[4],
            "object_technology": r[5],
            "file": r[6],
            "line": r[7],
        }
        for r in rows
    ]
