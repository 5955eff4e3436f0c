"""Re-importing a changed document replaces its LLM extractions as well as its structure
extractions, and removing a document removes what only it supported: an agreement that needed
the document no longer accepts (a fake model stands in for the GGUF)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from telesynth_tui.graph.candidates import remove_documents
from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.llm_extraction import LlmExtractor, extract_documents
from telesynth_tui.project import Project

from .test_extraction import RUNBOOK
from .test_llm_extraction import _row, answering

# a note that names the counter and the cause in prose: nothing for the structure rules
NOTE = (
    "# Paging notes\n\nDuring the last audit pmPagDiscarded climbed whenever Paging channel"
    " overload was seen on the MME pool.\n"
)


def _answer(prompt: str) -> str:
    rows = []
    if "signature of Paging channel overload" in prompt:  # agrees with a structure triple
        rows.append(
            _row("pmPagDiscarded", "Counter", "indicates", "Paging channel overload", "RootCause")
        )
    if "rf32 to rf64" in prompt:  # only the LLM says this, only in the runbook
        rows.append(
            _row("Increase defaultPagingCycle", "Action", "uses", "defaultPagingCycle", "Parameter")
        )
    if "During the last audit" in prompt:  # the note states the same fact as the runbook
        rows.append(
            _row("pmPagDiscarded", "Counter", "indicates", "Paging channel overload", "RootCause")
        )
    return json.dumps({"triples": rows})


def _state(conn: sqlite3.Connection, s: str, p: str, o: str) -> tuple[str, list[str]] | None:
    row = conn.execute(
        "SELECT r.status, (SELECT GROUP_CONCAT(DISTINCT sf.path || '=' || x.extractor) FROM"
        " relation_extractions x JOIN source_files sf ON sf.id = x.source_file_id"
        " WHERE x.relation_id = r.id) FROM relations r JOIN entities a ON a.id = r.subject_id"
        " JOIN entities b ON b.id = r.object_id"
        " WHERE a.name = ? AND r.predicate = ? AND b.name = ?",
        (s, p, o),
    ).fetchone()
    if row is None:
        return None
    return row[0], sorted(
        f"{Path(x.split('=')[0]).name}={x.split('=')[1]}" for x in (row[1] or "").split(",") if x
    )


def test_reimport_and_removal_replace_llm_extractions(project: Project, tmp_path: Path) -> None:
    runbook, note = tmp_path / "paging.md", tmp_path / "note.md"
    runbook.write_text(RUNBOOK)
    note.write_text(NOTE)
    threshold = project.settings.ingest.accept_confidence
    conn = project.connect()
    import_paths(conn, [runbook, note], project.settings.ingest)
    extract_documents(conn, LlmExtractor(answering(_answer)), threshold=threshold)
    shared = ("pmPagDiscarded", "indicates", "Paging channel overload")
    llm_only = ("Increase defaultPagingCycle", "uses", "defaultPagingCycle")
    assert _state(conn, *shared) == (
        "accepted",
        ["note.md=llm:fake", "paging.md=llm:fake", "paging.md=structure"],
    )
    assert _state(conn, *llm_only) == ("candidate", ["paging.md=llm:fake"])

    # the runbook changes: its structure AND its LLM extractions are replaced (the LLM has not
    # read the new text, so none of its earlier triples for this document survive)
    runbook.write_text(RUNBOOK.replace("from rf32 to rf64", "to rf128"))
    import_paths(conn, [runbook], project.settings.ingest)
    assert _state(conn, *llm_only) is None
    assert _state(conn, *shared) == ("accepted", ["note.md=llm:fake", "paging.md=structure"])
    stale = conn.execute(
        "SELECT COUNT(*) FROM relation_extractions x JOIN source_files sf"
        " ON sf.id = x.source_file_id WHERE sf.path = ? AND x.extractor = 'llm:fake'",
        (str(runbook.resolve()),),
    ).fetchone()[0]
    assert stale == 0
    # the LLM reads the new text: only what it says now is stored
    extract_documents(
        conn, LlmExtractor(answering(_answer)), [str(runbook.resolve())], threshold=threshold
    )
    assert _state(conn, *llm_only) is None
    assert _state(conn, *shared) == (
        "accepted",
        ["note.md=llm:fake", "paging.md=llm:fake", "paging.md=structure"],
    )

    # the runbook goes: the fact survives on the note's LLM extraction alone, and without the
    # structure extractor's agreement it is a candidate again; what only the runbook said goes
    assert remove_documents(conn, [str(runbook)], threshold) == [str(runbook.resolve())]
    assert _state(conn, *shared) == ("candidate", ["note.md=llm:fake"])
    assert _state(conn, "Paging channel overload", "resolved_by", "Split the tracking area") is None
    orphans = conn.execute(
        "SELECT COUNT(*) FROM relations r WHERE r.origin = 'extracted' AND NOT EXISTS"
        " (SELECT 1 FROM relation_extractions x WHERE x.relation_id = r.id)"
    ).fetchone()[0]
    assert orphans == 0
    # removing the note too leaves no extracted relation at all
    assert remove_documents(conn, [str(note)], threshold) == [str(note.resolve())]
    assert conn.execute("SELECT COUNT(*) FROM relations").fetchone()[0] == 0
