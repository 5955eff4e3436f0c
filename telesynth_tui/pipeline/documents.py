"""Document-driven plans: a user's imported documents split into sections (consecutive chunks
under one heading, within a token budget), one plan per section that asks the writer for up to
10 QA pairs grounded in that section alone, following the seed method of automatic QA dataset
generation. Plans are stored like the graph's plans, so runs over documents resume the same way."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.pipeline.generate_llm import DOCUMENT
from telesynth_tui.pipeline.plans import Plan

SECTION_TOKENS = 600  # a section's grounding text at most (our token estimate)
MIN_SECTION_TOKENS = 25  # shorter sections (a lone heading, a link list) are not worth asking


def _is_under(path: str, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError):
        return False


def select_documents(conn: sqlite3.Connection, spec: str, bundled: Path) -> list[int]:
    """Document ids from `spec`: "" = every imported document that is not bundled knowledge;
    "3,7" = those ids; otherwise a file or folder path whose imported documents are taken."""
    rows = conn.execute(
        "SELECT d.id, sf.path FROM documents d JOIN source_files sf ON sf.id = d.source_file_id"
        " ORDER BY d.id"
    ).fetchall()
    spec = spec.strip()
    if not spec:
        ids = [int(r[0]) for r in rows if not _is_under(r[1], bundled)]
        if not ids:
            raise TelesynthError(
                "--from-docs: no imported documents of your own (add some with: telesynth kg "
                "import PATH)"
            )
        return ids
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if parts and all(p.isdigit() for p in parts):
        known = {int(r[0]) for r in rows}
        missing = [p for p in parts if int(p) not in known]
        if missing:
            raise TelesynthError(f"--docs: no document with id {', '.join(missing)}")
        return [int(p) for p in parts]
    target = Path(spec).expanduser()
    ids = [int(r[0]) for r in rows if Path(r[1]) == target.resolve() or _is_under(r[1], target)]
    if not ids:
        raise TelesynthError(
            f"--docs: {spec}: no imported document from this path (import it first with: "
            "telesynth kg import PATH)"
        )
    return ids


def document_plans(
    conn: sqlite3.Connection, document_ids: list[int], pairs: int, limit: int | None = None
) -> list[Plan]:
    """One plan per section of each document, in document order, at most `limit`."""
    plans: list[Plan] = []
    for doc_id in document_ids:
        doc = conn.execute(
            "SELECT d.title, sf.path FROM documents d JOIN source_files sf"
            " ON sf.id = d.source_file_id WHERE d.id = ?",
            (doc_id,),
        ).fetchone()
        chunks = conn.execute(
            "SELECT id, heading, n_tokens FROM chunks WHERE document_id = ? ORDER BY ordinal",
            (doc_id,),
        ).fetchall()
        for section in _sections(chunks):
            heading = section[0]["heading"] or ""
            payload: dict[str, Any] = {
                "document_id": doc_id,
                "title": doc["title"] or Path(doc["path"]).name,
                "source": doc["path"],
                "heading": heading,
                "chunk_ids": [int(c["id"]) for c in section],
                "pairs": pairs,
            }
            entity_ids = [
                int(r[0])
                for r in conn.execute(
                    f"SELECT DISTINCT entity_id FROM mentions WHERE chunk_id IN "
                    f"({','.join('?' * len(section))}) ORDER BY entity_id",
                    payload["chunk_ids"],
                )
            ]
            plans.append(Plan(DOCUMENT, payload, entity_ids))
            if limit is not None and len(plans) >= limit:
                return plans
    return plans


def _sections(chunks: list[sqlite3.Row]) -> list[list[sqlite3.Row]]:
    """Consecutive chunks under one heading, split when the budget is full."""
    sections: list[list[sqlite3.Row]] = []
    size = 0
    for chunk in chunks:
        current = sections[-1] if sections else None
        if (
            current is not None
            and current[0]["heading"] == chunk["heading"]
            and size + int(chunk["n_tokens"]) <= SECTION_TOKENS
        ):
            current.append(chunk)
            size += int(chunk["n_tokens"])
        else:
            sections.append([chunk])
            size = int(chunk["n_tokens"])
    return [s for s in sections if sum(int(c["n_tokens"]) for c in s) >= MIN_SECTION_TOKENS]


def section_context(conn: sqlite3.Connection, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The section's chunks as context items (with the same provenance retrieval gives)."""
    ids = payload["chunk_ids"]
    rows = conn.execute(
        "SELECT c.id, c.heading, c.text, c.ordinal, d.id AS doc_id, d.title, sf.path"
        " FROM chunks c JOIN documents d ON d.id = c.document_id JOIN source_files sf"
        f" ON sf.id = d.source_file_id WHERE c.id IN ({','.join('?' * len(ids))})"
        " ORDER BY c.ordinal",
        ids,
    ).fetchall()
    return [
        {
            "key": f"chunk:{r['id']}",
            "kind": "chunk",
            "id": r["id"],
            "text": r["text"],
            "provenance": {
                "document_id": r["doc_id"],
                "document": r["title"],
                "heading": r["heading"],
                "ordinal": r["ordinal"],
                "source": r["path"],
            },
        }
        for r in rows
    ]
