from __future__ import annotations

import json
from pathlib import Path

import pytest

from telesynth_tui import database as db
from telesynth_tui.graph import importer
from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.stats import kg_stats
from telesynth_tui.project import Project

ENTITIES = [
    {"name": "Uplink interference", "type": "RootCause", "aliases": ["UL interference"]},
    {"name": "High RSSI alarm", "type": "Alarm"},
    {"name": "Find the interferer", "type": "Action"},
    {"name": "pZeroNominalPusch", "type": "Parameter", "aliases": ["p0NominalPUSCH"]},
    {"name": "Received Signal Strength Indicator", "type": "KPI", "aliases": ["RSSI"]},
    {"name": "pmUlRssiAvg", "type": "Counter"},
]
TRIPLES = """subject,predicate,object,source
High RSSI alarm,indicates,Uplink interference,docs/ul.md
Uplink interference,resolved_by,Find the interferer,docs/ul.md
Find the interferer,adjusts,p0NominalPUSCH,docs/ul.md
RSSI,measured_by,pmUlRssiAvg,
"""
DOC = """# Uplink interference

## Symptoms
The High RSSI alarm is raised when RSSI measured by pmUlRssiAvg stays above -105 dBm.
Uplink interference is the usual cause.

## Actions
Find the interferer with a spectrum scan; meanwhile raise p0NominalPUSCH by 2 dB.
Check TS 36.213 for the power control formula and the Physical Uplink Shared Channel (PUSCH).
"""


def write_small_kg(root: Path) -> Path:
    (root / "entities").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "triples").mkdir()
    (root / "entities" / "e.jsonl").write_text("\n".join(json.dumps(e) for e in ENTITIES) + "\n")
    (root / "triples" / "t.csv").write_text(TRIPLES)
    (root / "docs" / "ul.md").write_text(DOC)
    return root


def counts(project: Project) -> dict[str, object]:
    return kg_stats(project.connect())


def test_import_folder_links_entities_evidence_and_candidates(
    project: Project, tmp_path: Path
) -> None:
    kg = write_small_kg(tmp_path / "kg")
    report = import_paths(project.connect(), [kg], project.settings.ingest)
    assert [i for i in report.issues if i.severity == "error"] == []
    assert len(report.by_status("imported")) == 3
    stats = counts(project)
    assert stats["documents"] == 1 and stats["entities"] == 6 and stats["relations"] == 4
    # every relation with a source document has evidence chunks naming subject or object
    conn = project.connect()
    rows = conn.execute(
        "SELECT r.predicate, COUNT(e.chunk_id) FROM relations r"
        " LEFT JOIN relation_evidence e ON e.relation_id = r.id GROUP BY r.id"
    ).fetchall()
    assert all(n >= 1 for _, n in rows), rows
    names = {r[0] for r in conn.execute("SELECT name FROM entities WHERE status='candidate'")}
    assert "TS 36.213" in names
    assert "Physical Uplink Shared Channel" in names
    assert "p0NominalPUSCH" not in names  # an alias of a declared entity is not a candidate


def test_reimport_unchanged_is_a_no_op(project: Project, tmp_path: Path) -> None:
    kg = write_small_kg(tmp_path / "kg")
    conn = project.connect()
    import_paths(conn, [kg], project.settings.ingest)
    before = counts(project)
    revision = db.kg_revision(conn)
    report = import_paths(conn, [kg], project.settings.ingest)
    assert len(report.by_status("unchanged")) == 3 and not report.by_status("imported")
    assert counts(project) == before
    assert db.kg_revision(conn) == revision


def test_changed_document_replaces_its_chunks_and_evidence(
    project: Project, tmp_path: Path
) -> None:
    kg = write_small_kg(tmp_path / "kg")
    conn = project.connect()
    import_paths(conn, [kg], project.settings.ingest)
    old_chunks = {r[0] for r in conn.execute("SELECT id FROM chunks")}
    doc = kg / "docs" / "ul.md"
    doc.write_text(DOC.replace("spectrum scan", "spectrum analyser walk test"))
    report = import_paths(conn, [kg], project.settings.ingest)
    assert [f.path.name for f in report.by_status("imported")] == ["ul.md"]
    new_chunks = {r[0] for r in conn.execute("SELECT id FROM chunks")}
    assert new_chunks and not new_chunks & old_chunks
    texts = " ".join(r[0] for r in conn.execute("SELECT text FROM chunks"))
    assert "walk test" in texts and "spectrum scan" not in texts
    evidence = {r[0] for r in conn.execute("SELECT chunk_id FROM relation_evidence")}
    assert evidence and evidence <= new_chunks
    assert counts(project)["documents"] == 1


def test_changed_triples_file_replaces_its_relations(project: Project, tmp_path: Path) -> None:
    kg = write_small_kg(tmp_path / "kg")
    conn = project.connect()
    import_paths(conn, [kg], project.settings.ingest)
    (kg / "triples" / "t.csv").write_text(
        TRIPLES.splitlines()[0] + "\n" + TRIPLES.splitlines()[1] + "\n"
    )
    import_paths(conn, [kg], project.settings.ingest)
    assert counts(project)["relations"] == 1


def test_failure_mid_file_rolls_back_that_file_only(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kg = write_small_kg(tmp_path / "kg")
    conn = project.connect()
    import_paths(conn, [kg], project.settings.ingest)
    before = counts(project)
    (kg / "docs" / "ul.md").write_text(DOC + "\n## More\nextra text\n")

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(importer.KnowledgeGraph, "add_document", crash)
    report = import_paths(conn, [kg / "docs" / "ul.md"], project.settings.ingest)
    assert [f.status for f in report.files] == ["failed"]
    assert "disk full" in str(report.issues[0]) and "ul.md" in str(report.issues[0])
    assert counts(project) == before  # old chunks, relations and evidence all still there


@pytest.mark.parametrize(
    ("name", "content", "message", "line"),
    [
        ("empty.md", b"  \n\n", "empty file", None),
        ("binary.md", b"# x\x00\x01\x02 binary", "binary file", None),
        ("latin1.md", b"# Title\nline two\ncaf\xe9\n", "not valid UTF-8", 3),
        ("weird.xyz", b"hello", "unsupported file type", None),
        ("bad.pdf", b"%PDF-1.4 this is not really a pdf", "not a readable PDF", None),
        ("bad.toml", b"[[formula]\nid=1", "invalid TOML", 1),
        ("unknown.csv", b"a,b,c\n1,2,3\n", "not an entity file", 1),
    ],
)
def test_bad_files_give_one_line_errors(
    project: Project, tmp_path: Path, name: str, content: bytes, message: str, line: int | None
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    report = import_paths(project.connect(), [path], project.settings.ingest)
    assert report.nothing_imported
    [issue] = report.issues
    assert message in issue.message and issue.path == path and issue.line == line
    assert "\n" not in str(issue)
    assert counts(project)["source_files"] == 0


def test_huge_file_refused(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    path.write_text("# Huge\n" + "word " * 300_000)
    settings = project.settings.ingest.model_copy(update={"max_file_mb": 1})
    report = import_paths(project.connect(), [path], settings)
    assert "over the 1 MB limit" in report.issues[0].message


def test_missing_and_unreadable_files(project: Project, tmp_path: Path) -> None:
    report = import_paths(project.connect(), [tmp_path / "nope.md"], project.settings.ingest)
    assert report.issues[0].message == "no such file"


def test_bad_rows_are_reported_and_good_rows_kept(project: Project, tmp_path: Path) -> None:
    kg = write_small_kg(tmp_path / "kg")
    (kg / "entities" / "e.jsonl").write_text(
        "\n".join(json.dumps(e) for e in ENTITIES)
        + '\n{"name": "broken"\n{"name": "X", "type": "Spaceship"}\n["not", "an", "object"]\n'
    )
    (kg / "triples" / "t.csv").write_text(
        TRIPLES
        + "High RSSI alarm,summons,Uplink interference,\n"
        + "Ghost entity,indicates,Uplink interference,\n"
        + "only,two\n"
        + "pmUlRssiAvg,adjusts,Uplink interference,\n"
    )
    report = import_paths(project.connect(), [kg], project.settings.ingest)
    messages = [(i.path.name, i.line, i.message) for i in report.issues]
    assert ("e.jsonl", 7, "invalid JSON: Expecting ',' delimiter") in messages
    assert ("e.jsonl", 8, "unknown entity type 'Spaceship' for 'X'") in messages
    assert ("e.jsonl", 9, "expected a JSON object") in messages
    assert any(m[:2] == ("t.csv", 6) and "unknown predicate 'summons'" in m[2] for m in messages)
    assert any(m[:2] == ("t.csv", 7) and "unknown entity 'Ghost entity'" in m[2] for m in messages)
    assert any(m[:2] == ("t.csv", 8) and "expected 4 columns, found 2" in m[2] for m in messages)
    assert any(
        m[:2] == ("t.csv", 9) and "adjusts cannot start at a Counter" in m[2] for m in messages
    )
    stats = counts(project)
    assert stats["entities"] == 6 and stats["relations"] == 4


def test_formula_with_undefined_variable_is_reported(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text(
        """
[[formula]]
id = "eirp"
name = "EIRP"
expression = "p_tx + g_ant - l_cable"
output_unit = "dBm"
[[formula.variables]]
symbol = "p_tx"
unit = "dBm"
min = 0
max = 60
[[formula.variables]]
symbol = "g_ant"
unit = "dBi"
min = 0
max = 30
[[formula.variables]]
symbol = "l_cable"
unit = "dB"
min = 0
max = 10
[formula.example]
inputs = { p_tx = 43, g_ant = 18, l_cable = 2 }
output = 59

[[formula]]
id = "bad"
name = "Bad"
expression = "a * b"
output_unit = "dB"
[[formula.variables]]
symbol = "a"
unit = "dB"
min = 0
max = 1
"""
    )
    report = import_paths(project.connect(), [path], project.settings.ingest)
    assert report.files[0].status == "imported" and report.counts.formulas == 1
    [issue] = report.issues
    assert issue.line == 26 and "formula bad: undefined variable(s) b" in issue.message


def test_html_text_and_pdf_documents(project: Project, tmp_path: Path) -> None:
    from fpdf import FPDF

    html = tmp_path / "page.html"
    html.write_text(
        "<html><head><title>VSWR guide</title><style>p{}</style><script>var x=1</script></head>"
        "<body><nav>menu</nav><h1>VSWR alarms</h1>"
        "<p>A VSWR above 1.5 points to a damaged feeder.</p><table>"
        "<tr><th>VSWR</th><th>Return loss</th></tr><tr><td>1.5</td><td>14 dB</td></tr></table>"
        "</body></html>"
    )
    text = tmp_path / "notes.txt"
    text.write_text("#1 note: check the CPRI link first.\n\nThen the SFP optical power.\n")
    pdf_path = tmp_path / "spec.pdf"
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, "Timing advance: each step of 16 Ts is about 78 m of distance.")
    pdf.add_page()
    pdf.multi_cell(0, 8, "Second page about PRACH format 0.")
    pdf.output(str(pdf_path))
    report = import_paths(project.connect(), [html, text, pdf_path], project.settings.ingest)
    assert report.issues == [] and report.counts.documents == 3
    conn = project.connect()
    rows = {
        r["title"]: r
        for r in conn.execute(
            "SELECT d.title, GROUP_CONCAT(c.heading, '|') h,"
            " GROUP_CONCAT(c.text, ' ') t FROM documents d JOIN chunks c ON c.document_id=d.id"
            " GROUP BY d.id"
        )
    }
    vswr = rows["VSWR guide"]
    assert "damaged feeder" in vswr["t"] and "| 1.5 | 14 dB |" in vswr["t"]
    assert "menu" not in vswr["t"] and "var x" not in vswr["t"]
    assert "CPRI link" in rows["notes"]["t"]
    assert "78 m" in rows["spec"]["t"] and "Page 2" in rows["spec"]["h"]


def test_long_spec_export_with_tables(project: Project, tmp_path: Path) -> None:
    """A long Markdown export as downloaded: ToC, numbered headings, big tables, HTML breaks."""
    parts = ["# 3GPP TS 38.999 V18.0.0 (2024-03)\n", "Contents\n"]
    parts += [f"{i}.1 Clause {i} ........ {i * 3}\n" for i in range(1, 40)]
    for clause in range(1, 40):
        parts.append(f"\n## {clause} Clause {clause} on beam management\n")
        parts.append(
            f"The gNB configures csi-ReportConfig{clause} and the UE reports L1-RSRP per SSB.<br>"
            " Each report refers to TS 38.214 clause 5.2.1.4 and TS 38.331." * 5 + "\n"
        )
        parts.append(
            f"\n### {clause}.1 Table {clause}\n\n"
            "| Index | maxNrofSSB | Periodicity (ms) | Note |\n|---|---|---|---|\n"
        )
        parts += [
            f"| {r} | {r % 64} | {5 * (1 + r % 8)} | row {r} of clause {clause} |\n"
            for r in range(60)
        ]
    parts.append(
        "\n## 40 Embedded tables\n\n<table><tr><th>SCS</th><th>N_RB</th></tr>"
        "<tr><td>30 kHz</td><td>273<br>(100 MHz)</td></tr></table>\n\n"
        "+------+------+\n| mu | SCS  |\n+======+======+\n| 1    | 30   |\n+------+------+\n"
    )
    path = tmp_path / "38999-i00.md"
    path.write_text("".join(parts))
    report = import_paths(project.connect(), [path], project.settings.ingest)
    assert report.issues == []
    c = report.counts
    assert c.documents == 1 and c.chunks >= 78 and c.candidates >= 3
    conn = project.connect()
    budget = project.settings.ingest.chunk_tokens
    assert conn.execute("SELECT MAX(n_tokens) FROM chunks").fetchone()[0] <= budget
    assert (
        conn.execute("SELECT COUNT(*) FROM chunks WHERE text LIKE '%........%'").fetchone()[0] == 0
    )
    headings = {r[0] for r in conn.execute("SELECT heading FROM chunks")}
    assert (
        "3GPP TS 38.999 V18.0.0 (2024-03) > 7 Clause 7 on beam management > 7.1 Table 7" in headings
    )
    embedded = conn.execute(
        "SELECT text FROM chunks WHERE heading LIKE '%Embedded tables'"
    ).fetchone()
    assert "| 30 kHz | 273 (100 MHz) |" in embedded[0] and "<" not in embedded[0]
    assert "| 1    | 30   |" in embedded[0]
    candidates = {r[0] for r in conn.execute("SELECT name FROM entities WHERE status='candidate'")}
    assert {"TS 38.214", "TS 38.331"} <= candidates


def test_entities_added_after_documents_are_linked(project: Project, tmp_path: Path) -> None:
    kg = write_small_kg(tmp_path / "kg")
    conn = project.connect()
    import_paths(conn, [kg / "docs"], project.settings.ingest)
    import_paths(conn, [kg / "entities"], project.settings.ingest)
    mentioned = {
        r[0]
        for r in conn.execute(
            "SELECT e.name FROM mentions m JOIN entities e ON e.id = m.entity_id"
            " WHERE e.status = 'curated'"
        )
    }
    assert {"High RSSI alarm", "Uplink interference", "pmUlRssiAvg"} <= mentioned
    # the candidate spotted earlier for the counter became the curated entity
    row = conn.execute("SELECT type, status FROM entities WHERE name = 'pmUlRssiAvg'").fetchone()
    assert tuple(row) == ("Counter", "curated")


def test_removed_entity_file_content_is_cleaned(project: Project, tmp_path: Path) -> None:
    kg = write_small_kg(tmp_path / "kg")
    conn = project.connect()
    import_paths(conn, [kg / "entities"], project.settings.ingest)
    (kg / "entities" / "e.jsonl").write_text(json.dumps(ENTITIES[0]) + "\n")
    import_paths(conn, [kg / "entities"], project.settings.ingest)
    assert counts(project)["entities"] == 1
