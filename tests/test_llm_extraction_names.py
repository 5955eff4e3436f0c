"""The LLM extractor with the chunk's names as enums: the schema offers, per predicate, only
names the text states whose types the predicate joins; the types come from the graph, repeats
are dropped (a fake model, which ignores the schema, shows the checks behind it)."""

from __future__ import annotations

import json

from telesynth_tui.graph.extraction import Known
from telesynth_tui.graph.llm_extraction import LlmExtractor, chunk_names, triples_schema

from .test_llm_extraction import answering

TEXT = (
    "**Check paging load counters**: read pmPagDiscarded per hour; a high share confirms "
    "Paging channel overload (TS 36.331)."
)


def test_chunk_names_are_typed_and_grounded() -> None:
    known = Known(
        [
            ("Paging channel overload", "RootCause", []),
            ("Check paging load counters", "Check", []),
            ("Cell outage", "RootCause", []),
        ]
    )
    names = chunk_names(TEXT, known)
    assert names["pmPagDiscarded"] == "Counter"
    assert names["Paging channel overload"] == "RootCause"
    assert names["Check paging load counters"] == "Check"
    assert names["TS 36.331"] == "Specification"
    assert "Cell outage" not in names  # known, but not in this chunk


def test_enum_schema_types_from_names_and_repeats_dropped() -> None:
    names = {
        "Check paging load counters": "Check",
        "pmPagDiscarded": "Counter",
        "Paging channel overload": "RootCause",
    }
    schema = triples_schema(names=names)
    shapes = {
        sh["properties"]["predicate"]["enum"][0]: (
            sh["properties"]["subject"]["enum"],
            sh["properties"]["object"]["enum"],
        )
        for sh in schema["properties"]["triples"]["items"]["anyOf"]
    }
    # one shape per predicate that two of the names fit, by their types
    assert shapes == {
        "indicates": (["pmPagDiscarded"], ["Paging channel overload"]),
        "checked_by": (["Paging channel overload"], ["Check paging load counters"]),
        "reads": (["Check paging load counters"], ["pmPagDiscarded"]),
    }
    row = {
        "subject": "Check paging load counters",
        "predicate": "reads",
        "object": "pmPagDiscarded",
    }
    wrong = {
        "subject": "pmPagDiscarded",
        "predicate": "checked_by",
        "object": "Paging channel overload",
    }
    model = answering(lambda _: json.dumps({"triples": [row, row, wrong]}))
    result = LlmExtractor(model).extract_chunk(0, "Checks", TEXT, names)
    assert model.calls[0][1].json_schema == schema
    assert [(t.subject.type, t.predicate, t.object.type) for t in result.triples] == [
        ("Check", "reads", "Counter")
    ]
    assert result.dropped == [
        "repeated triple",
        "checked_by cannot start at a Counter ('pmPagDiscarded')",
    ]
    # with fewer than two names the model writes names and types itself
    model = answering(lambda _: '{"triples": []}')
    LlmExtractor(model).extract_chunk(0, "h", TEXT, {"pmPagDiscarded": "Counter"})
    assert (
        "subject_type"
        in model.calls[0][1].json_schema["properties"]["triples"]["items"]["properties"]
    )
