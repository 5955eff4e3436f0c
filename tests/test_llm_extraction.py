"""The LLM extractor: schema, grounding of every triple in its chunk, drops with reasons,
storage as candidates and acceptance when both extractors agree (a fake model; the real one is
measured by bench/extraction.py --llm)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.llm_extraction import (
    LlmExtractor,
    evidence_span,
    extract_documents,
    triples_schema,
)
from telesynth_tui.graph.store import ENTITY_TYPES
from telesynth_tui.inference.base import Message, SamplingParams
from telesynth_tui.project import Project

from .conftest import run_cli
from .fakes import FakeModel
from .test_extraction import RUNBOOK


def answering(answer: Callable[[str], str]) -> FakeModel:
    """A model answering every chunk with the same JSON (or a function of the prompt)."""

    def reply(messages: Sequence[Message], params: SamplingParams) -> str:
        assert params.json_schema is not None
        return answer(messages[-1]["content"])

    return FakeModel(
        reply, stop="", figures=lambda _t, _n: {"prompt_tokens": 10, "output_tokens": 5}
    )


def _row(s: str, st: str, p: str, o: str, ot: str) -> dict[str, str]:
    return {"subject": s, "subject_type": st, "predicate": p, "object": o, "object_type": ot}


def test_schema_enumerates_types_and_predicates() -> None:
    item = triples_schema()["properties"]["triples"]["items"]["properties"]
    assert item["subject_type"]["enum"] == list(ENTITY_TYPES)
    assert "resolved_by" in item["predicate"]["enum"]


def test_grounding_and_drop_reasons() -> None:
    text = "Check paging load counters: read pmPagDiscarded per hour."
    rows = [
        _row("Check paging load counters", "Check", "reads", "pmPagDiscarded", "Counter"),
        _row("Check paging load counters", "Check", "reads", "pmInvented", "Counter"),
        _row("pmPagDiscarded", "Counter", "resolved_by", "Check paging load counters", "Check"),
        _row("pmPagDiscarded", "Counter", "reads", "pmPagDiscarded", "Counter"),
        _row("PAGING LOAD COUNTERS", "Concept", "frobs", "pmPagDiscarded", "Counter"),
    ]
    model = answering(lambda _: json.dumps({"triples": rows}))
    result = LlmExtractor(model).extract_chunk(0, "Checks", text)
    assert [(t.subject.name, t.predicate, t.object.name) for t in result.triples] == [
        ("Check paging load counters", "reads", "pmPagDiscarded")
    ]
    assert result.triples[0].evidence == text and result.triples[0].rule == "schema"
    assert result.dropped == [
        "object 'pmInvented' does not occur in the chunk",
        "resolved_by cannot start at a Counter ('pmPagDiscarded')",
        "subject and object are the same ('pmPagDiscarded')",
        "unknown predicate 'frobs'",
    ]


def test_invalid_json_is_a_reason_not_a_crash() -> None:
    result = LlmExtractor(answering(lambda _: '{"triples": [')).extract_chunk(0, "h", "text")
    assert result.triples == [] and result.dropped[0].startswith("invalid JSON")


def test_evidence_span_is_the_sentence_naming_both() -> None:
    text = "First sentence. The Short paging cycle is fixed by Increase defaultPagingCycle. End."
    span = evidence_span(text, "short paging cycle", "increase defaultpagingcycle")
    assert span == "The Short paging cycle is fixed by Increase defaultPagingCycle."
    assert evidence_span(text, "short paging cycle", "nothing here") is None


def test_agreement_accepts_and_llm_alone_stays_candidate(project: Project, tmp_path: Path) -> None:
    doc = tmp_path / "paging.md"
    doc.write_text(RUNBOOK)
    conn = project.connect()
    # the threshold this test is written for (the symptom triple below sits under it)
    ingest = project.settings.ingest.model_copy(update={"accept_confidence": 0.9})
    import_paths(conn, [doc], ingest)

    def answer(prompt: str) -> str:
        rows = []
        if "Increase defaultPagingCycle" in prompt:  # agrees with a 0.95 structure triple
            rows.append(
                _row(
                    "Short paging cycle",
                    "RootCause",
                    "resolved_by",
                    "Increase defaultPagingCycle",
                    "Action",
                )
            )
        if "signature of Paging channel overload" in prompt:
            # agrees with a structure triple under the threshold (two symptom rules, 0.85)
            rows.append(
                _row(
                    "pmPagDiscarded", "Counter", "indicates", "Paging channel overload", "RootCause"
                )
            )
        if "rf32 to rf64" in prompt:  # only the LLM says this
            rows.append(
                _row(
                    "Increase defaultPagingCycle",
                    "Action",
                    "uses",
                    "defaultPagingCycle",
                    "Parameter",
                )
            )
        return json.dumps({"triples": rows})

    def status(s: str, p: str, o: str) -> tuple[str, str | None, list[str]]:
        row = conn.execute(
            "SELECT r.status, r.decided_by, (SELECT GROUP_CONCAT(DISTINCT extractor) FROM"
            " relation_extractions x WHERE x.relation_id = r.id) FROM relations r"
            " JOIN entities a ON a.id = r.subject_id JOIN entities b ON b.id = r.object_id"
            " WHERE a.name = ? AND r.predicate = ? AND b.name = ?",
            (s, p, o),
        ).fetchone()
        return row[0], row[1], sorted(row[2].split(","))

    before = status("pmPagDiscarded", "indicates", "Paging channel overload")
    assert before[0] == "candidate"
    report = extract_documents(conn, LlmExtractor(answering(answer)), threshold=0.9)
    assert report.chunks > 0 and report.kept >= 3
    assert status("pmPagDiscarded", "indicates", "Paging channel overload") == (
        "accepted",
        "rule:agree",
        ["llm:fake", "structure"],
    )
    assert status("Increase defaultPagingCycle", "uses", "defaultPagingCycle") == (
        "candidate",
        None,
        ["llm:fake"],
    )
    # a second run replaces the model's earlier extractions, it does not add to them
    again = extract_documents(
        conn, LlmExtractor(answering(lambda _: '{"triples": []}')), threshold=0.9
    )
    assert again.kept == 0
    gone = conn.execute(
        "SELECT COUNT(*) FROM relation_extractions WHERE extractor = 'llm:fake'"
    ).fetchone()[0]
    assert gone == 0
    assert status("pmPagDiscarded", "indicates", "Paging channel overload")[0] == "candidate"
    orphan = conn.execute(
        "SELECT COUNT(*) FROM relations r JOIN entities a ON a.id = r.subject_id"
        " WHERE a.name = 'Increase defaultPagingCycle' AND r.predicate = 'uses'"
    ).fetchone()[0]
    assert orphan == 0


def test_chunks_extracted_together_keep_their_order_and_results(
    project: Project, tmp_path: Path
) -> None:
    doc = tmp_path / "paging.md"
    doc.write_text(RUNBOOK)
    conn = project.connect()
    import_paths(conn, [doc], project.settings.ingest)

    def answer(prompt: str) -> str:  # one fact per chunk that names the action
        if "Increase defaultPagingCycle" not in prompt:
            return '{"triples": []}'
        row = _row(
            "Increase defaultPagingCycle", "Action", "uses", "defaultPagingCycle", "Parameter"
        )
        return json.dumps({"triples": [row]})

    runs = {}
    for parallel in (1, 3):
        lines: list[str] = []
        report = extract_documents(
            conn, LlmExtractor(answering(answer)), progress=lines.append, parallel=parallel
        )
        stored = conn.execute(
            "SELECT r.predicate, x.chunk_id FROM relation_extractions x"
            " JOIN relations r ON r.id = x.relation_id WHERE x.extractor = 'llm:fake'"
            " ORDER BY x.chunk_id"
        ).fetchall()
        runs[parallel] = (report.chunks, report.kept, lines, [tuple(r) for r in stored])
    assert runs[3] == runs[1]
    chunks, kept, lines, stored = runs[3]
    assert chunks > 1 and kept >= 1 and stored
    assert [int(line.split(" chunk ")[1].split("/")[0]) for line in lines] == list(
        range(1, chunks + 1)
    )


@pytest.mark.slow
@pytest.mark.real_models
def test_kg_extract_with_smollm2_decodes_chunks_together(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "paging.md").write_text(RUNBOOK)
    found = {}
    for parallel in (1, 2):
        proj = tmp_path / f"p{parallel}"
        run_cli("init", "--empty", project=proj, check=True)
        run_cli("kg", "import", str(docs), project=proj, check=True)
        out = run_cli(
            "kg", "extract", "--model", "smollm2-135m-instruct", "--limit-chunks", "2",
            "--parallel", str(parallel), "--json", project=proj, check=True,
        )  # fmt: skip
        report = json.loads(out.stdout)
        assert report["chunks"] == 2 and report["parallel"] == parallel
        conn = Project.open(proj).connect()
        found[parallel] = conn.execute(
            "SELECT s.name, r.predicate, o.name FROM relation_extractions x"
            " JOIN relations r ON r.id = x.relation_id JOIN entities s ON s.id = r.subject_id"
            " JOIN entities o ON o.id = r.object_id WHERE x.extractor LIKE 'llm:%' ORDER BY 1, 2, 3"
        ).fetchall()
        conn.close()
        # every kept triple names two things the document writes
        for s, _p, o in found[parallel]:
            assert s.lower() in RUNBOOK.lower() and o.lower() in RUNBOOK.lower()
    assert [tuple(r) for r in found[2]] == [tuple(r) for r in found[1]]  # temperature 0
    bad = run_cli("kg", "extract", "--model", "smollm2-135m-instruct", "--parallel", "0",
                  project=tmp_path / "p1")  # fmt: skip
    assert (
        bad.returncode != 0 and bad.stderr.strip() == "error: --parallel must be at least 1, not 0"
    )


def test_an_interrupted_parallel_extraction_stops_its_calls(
    project: Project, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        (docs / f"paging_{i}.md").write_text(RUNBOOK)
    conn = project.connect()
    import_paths(conn, [docs], project.settings.ingest)
    # each call streams its answer slowly, a character at a time
    model = FakeModel('{"triples": []}', piece_chars=1, delay=0.05)

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        extract_documents(conn, LlmExtractor(model), progress=interrupt, parallel=2)
    # the calls in flight (at most two per worker: one may start as the first ends) stop at
    # their next piece; the queued ones never start
    assert len(model.calls) <= 4
    assert time.perf_counter() - t0 < 5
    stored = conn.execute("SELECT COUNT(*) FROM relation_extractions WHERE extractor = 'llm:fake'")
    assert stored.fetchone()[0] == 0
