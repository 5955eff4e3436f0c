"""The sample record: one conversion to and from a `samples` row, the stored JSON unchanged."""

from __future__ import annotations

import json

from telesynth_tui.pipeline.records import (
    ContextItem,
    FilterVerdict,
    ModelCall,
    Provenance,
    Rejection,
    Sample,
    Scores,
)


def _sample() -> Sample:
    return Sample(
        run_id=3,
        plan_id=7,
        type="factual",
        generator="kg-template",
        status="accepted",
        question="Which counter shows RRC setup failures?",
        answer="pmRrcConnEstabFail.",
        steps=["pmRrcConnEstabFail."],
        context=[
            ContextItem("fact:1", "fact", 1, "RRC setup failure measured_by counter"),
            ContextItem("chunk:4", "chunk", 4, "text", {"document_id": 2, "heading": "h"}),
        ],
        cited=["fact:1"],
        provenance=Provenance(
            plan_id=7,
            plan_type="factual",
            relation_ids=[1],
            chunk_ids=[4],
            context_keys=["fact:1", "chunk:4"],
            generator="kg-template",
        ),
        scores=Scores(
            {"faithfulness": 0.9}, {"duplicate": FilterVerdict("duplicate", True, 0.0, "first")}, []
        ),
        quality=0.84,
    )


def test_a_sample_survives_its_row() -> None:
    sample = _sample()
    row = sample.to_row()
    back = Sample.from_row({**row, "id": 11, "review": None, "created_at": "now"})
    assert back.id == 11 and back.to_row() == row
    assert back.context == sample.context and back.provenance == sample.provenance
    assert back.scores == sample.scores and back.accepted


def test_the_stored_json_keeps_its_shape() -> None:
    row = _sample().to_row()
    assert json.loads(row["context"])[0] == {
        "key": "fact:1",
        "kind": "fact",
        "id": 1,
        "text": "RRC setup failure measured_by counter",
    }
    assert "provenance" in json.loads(row["context"])[1]
    assert list(json.loads(row["scores"])) == ["faithfulness", "filters", "gate"]
    assert json.loads(row["provenance"])["context_keys"] == ["fact:1", "chunk:4"]


def test_dta_extras_and_old_rows_read_back() -> None:
    prov = Provenance.from_dict({"plan_id": 1, "teacher": "solver", "judge": None})
    assert prov.extra == {"teacher": "solver", "judge": None}
    assert list(prov.to_dict())[-2:] == ["teacher", "judge"]
    row = {
        "run_id": 1,
        "plan_id": 2,
        "type": "maths",
        "status": "rejected",
        "steps": None,
        "context": "",
        "scores": None,
        "provenance": "{}",
    }
    old = Sample.from_row(row)
    assert old.steps == [] and old.context == [] and old.scores.filters is None
    assert Scores.from_dict({"judge": {"score": 1}}).to_dict() == {"judge": {"score": 1}}


def test_rejections_and_model_calls() -> None:
    assert Rejection.parse("cut: stopped at the limit\n{raw") == Rejection(
        "cut: stopped at the limit", "{raw"
    )
    call = ModelCall("generate", "m", {"output_tokens": 3})
    stage, model, metrics = call
    assert (stage, model, metrics["output_tokens"]) == ("generate", "m", 3)
