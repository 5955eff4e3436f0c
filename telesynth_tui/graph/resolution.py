"""Entity resolution: one thing is one entity.

Names that differ only by case, plural, separators inside identifiers (ra-ResponseWindow,
raResponseWindow) or a trailing "(ABBR)" resolve to the same entity; a long form and its
abbreviation are aliases of one entity. Merging two entities keeps every source: mentions,
relations (with their extractions), declaring files and extraction records move to the kept one.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict

from telesynth_tui.text import normalize_name

_PAREN_RE = re.compile(r"^(?P<long>.+?)\s*\((?P<short>[^()]{1,40})\)\s*$")
_KEEP_S = ("ss", "us", "is", "os", "as")


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(_KEEP_S):
        return word[:-1]
    return word


def variant_key(name: str) -> str:
    """The key two spellings of one thing share: lower case, no separators inside words,
    last word singular, a trailing parenthesis dropped."""
    match = _PAREN_RE.match(name.strip())
    if match and not name.strip().startswith("("):
        name = match.group("long")
    words = [re.sub(r"[-_]", "", w) for w in normalize_name(name).split()]
    if words:
        words[-1] = _singular(words[-1])
    return " ".join(words)


def split_abbreviation(name: str) -> tuple[str, tuple[str, ...]]:
    """'Physical Random Access Channel (PRACH)' -> ('Physical Random Access Channel', ('PRACH',));
    the parenthesis is an alias only when it is a short token, not an explanation."""
    match = _PAREN_RE.match(name.strip())
    if match:
        short = match.group("short").strip()
        if " " not in short and 1 < len(short) <= 12:
            return match.group("long").strip(), (short,)
    return name.strip(), ()


class EntityIndex:
    """Lookup of existing entities by name, alias and spelling variant (built once, kept up to
    date by `add`); curated entities win over candidates, older over newer."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._exact: dict[str, int] = {}
        self._variant: dict[str, int] = {}
        self.types: dict[int, str] = {}
        for entity_id, name, type_, aliases in conn.execute(
            "SELECT id, name, type, aliases FROM entities ORDER BY status = 'candidate', id"
        ):
            self.add(int(entity_id), type_, [name, *json.loads(aliases or "[]")])

    def add(self, entity_id: int, type_: str, names: list[str]) -> None:
        self.types[entity_id] = type_
        for name in names:
            self._exact.setdefault(normalize_name(name), entity_id)
            key = variant_key(name)
            if key:
                self._variant.setdefault(key, entity_id)

    def find(self, name: str) -> int | None:
        long_form, aliases = split_abbreviation(name)
        for candidate in (name, long_form, *aliases):
            found = self._exact.get(normalize_name(candidate))
            if found is not None:
                return found
        return self._variant.get(variant_key(long_form))


def merge_entities(conn: sqlite3.Connection, keep: int, drop: int) -> None:
    """Fold `drop` into `keep` (inside the caller's transaction); every source is kept."""
    if keep == drop:
        return
    k = conn.execute("SELECT name, aliases FROM entities WHERE id = ?", (keep,)).fetchone()
    d = conn.execute("SELECT name, aliases FROM entities WHERE id = ?", (drop,)).fetchone()
    if k is None or d is None:
        return
    aliases = list(dict.fromkeys([*json.loads(k[1] or "[]"), d[0], *json.loads(d[1] or "[]")]))
    aliases = [a for a in aliases if normalize_name(a) != normalize_name(k[0])]
    conn.execute("UPDATE entities SET aliases = ? WHERE id = ?", (json.dumps(aliases), keep))
    conn.execute(
        "UPDATE entities SET description = ? WHERE id = ? AND description = ''",
        (
            conn.execute("SELECT description FROM entities WHERE id = ?", (drop,)).fetchone()[0],
            keep,
        ),
    )
    for table, cols in (
        ("mentions", ("chunk_id", "surface", "start")),
        ("entity_sources", ("source_file_id",)),
        (
            "entity_extractions",
            ("source_file_id", "chunk_id", "extractor", "surface", "confidence"),
        ),
    ):
        names = ", ".join(cols)
        conn.execute(
            f"INSERT OR IGNORE INTO {table}(entity_id, {names})"
            f" SELECT ?, {names} FROM {table} WHERE entity_id = ?",
            (keep, drop),
        )
        conn.execute(f"DELETE FROM {table} WHERE entity_id = ?", (drop,))
    conn.execute("UPDATE formulas SET entity_id = ? WHERE entity_id = ?", (keep, drop))
    conn.execute("DELETE FROM embeddings WHERE owner_kind = 'entity' AND owner_id = ?", (drop,))
    for rid, s, p, o in conn.execute(
        "SELECT id, subject_id, predicate, object_id FROM relations"
        " WHERE subject_id = ? OR object_id = ?",
        (drop, drop),
    ).fetchall():
        s2, o2 = (keep if s == drop else s), (keep if o == drop else o)
        twin = conn.execute(
            "SELECT id FROM relations WHERE subject_id = ? AND predicate = ? AND object_id = ?",
            (s2, p, o2),
        ).fetchone()
        if s2 == o2:  # a merge that turns a relation into a loop drops it
            twin = None
        if twin is None and s2 != o2:
            conn.execute(
                "UPDATE relations SET subject_id = ?, object_id = ? WHERE id = ?", (s2, o2, rid)
            )
            continue
        if twin is not None:
            _fold_relation(conn, int(twin[0]), rid)
        else:
            _delete_relation(conn, rid)
    conn.execute("DELETE FROM entities WHERE id = ?", (drop,))


def _fold_relation(conn: sqlite3.Connection, keep: int, drop: int) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO relation_extractions(relation_id, source_file_id, chunk_id,"
        " extractor, rule, confidence, evidence) SELECT ?, source_file_id, chunk_id, extractor,"
        " rule, confidence, evidence FROM relation_extractions WHERE relation_id = ?",
        (keep, drop),
    )
    conn.execute(
        "INSERT OR IGNORE INTO relation_evidence(relation_id, chunk_id)"
        " SELECT ?, chunk_id FROM relation_evidence WHERE relation_id = ?",
        (keep, drop),
    )
    conn.execute(
        "UPDATE relations SET confidence = MAX(COALESCE(confidence, 0),"
        " (SELECT COALESCE(confidence, 0) FROM relations WHERE id = ?)) WHERE id = ?",
        (drop, keep),
    )
    _delete_relation(conn, drop)


def _delete_relation(conn: sqlite3.Connection, relation_id: int) -> None:
    conn.execute("DELETE FROM relation_extractions WHERE relation_id = ?", (relation_id,))
    conn.execute("DELETE FROM relation_evidence WHERE relation_id = ?", (relation_id,))
    conn.execute("DELETE FROM relations WHERE id = ?", (relation_id,))


def resolve_duplicates(conn: sqlite3.Connection) -> int:
    """Merge entities whose names or aliases share a variant key (curated and older first);
    returns the number of merges. Entities of different types are never merged."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    rows = conn.execute(
        "SELECT id, name, type, aliases FROM entities ORDER BY status = 'candidate', id"
    ).fetchall()
    owner: dict[int, int] = {}
    for entity_id, name, type_, aliases in rows:
        for n in [name, *json.loads(aliases or "[]")]:
            key = variant_key(n)
            # one-word abbreviations are case-sensitive names (SON vs son): only the name counts
            if key and (n == name or len(n.split()) > 1):
                groups[(key, type_)].append(entity_id)
    merges = 0
    for ids in groups.values():
        unique = list(dict.fromkeys(ids))
        if len(unique) < 2:
            continue
        keep = owner.get(unique[0], unique[0])
        for other in unique[1:]:
            other = owner.get(other, other)
            if other == keep:
                continue
            merge_entities(conn, keep, other)
            owner[other] = keep
            merges += 1
    return merges
