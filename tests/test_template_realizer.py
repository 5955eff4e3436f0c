"""The KG-template realizer: no ranking phrase the graph does not support, and maths questions
that state every input with the exact value the truth was computed from."""

from __future__ import annotations

from telesynth_tui.pipeline.plans import Planner
from telesynth_tui.pipeline.realize import (
    CHAIN_QUESTIONS,
    FACT_TEMPLATES,
    TROUBLESHOOTING_TEMPLATES,
    TemplateRealizer,
    fmt_input,
    missing_inputs,
    ranking_phrases,
)
from telesynth_tui.project import Project


def test_ranking_phrases_are_found() -> None:
    assert ranking_phrases("Which action resolves the most likely cause behind X?") == [
        "most likely"
    ]
    assert ranking_phrases("The main cause is a bad feeder; the likely cause is VSWR.") == [
        "main cause",
        "the likely cause",
    ]
    assert ranking_phrases("Possible causes of X: a, b and c.") == []


def test_no_template_ranks_causes() -> None:
    texts = [*CHAIN_QUESTIONS.values(), *TROUBLESHOOTING_TEMPLATES]
    texts += [q for questions, answer in FACT_TEMPLATES.values() for q in (*questions, answer)]
    assert [t for t in texts if ranking_phrases(t)] == []


def test_realized_plans_carry_no_ranking_and_maths_questions_state_every_input(
    bundled: Project,
) -> None:
    planner = Planner(bundled.connect(), 9)
    realizer = TemplateRealizer(9)
    mix = {"troubleshooting": 40, "multi_hop": 40, "factual": 40, "maths": 150}
    for plan in planner.plans(mix):
        candidate = realizer.realize(plan.type, plan.payload)
        text = " ".join([candidate.question, candidate.answer, *candidate.steps])
        assert ranking_phrases(text) == [], text
        if plan.type == "maths":
            assert missing_inputs(candidate.question, plan.payload) == [], candidate.question


def test_inputs_are_written_in_full() -> None:
    assert fmt_input(0.99999) == "0.99999" and fmt_input(273.0) == "273"
    assert fmt_input(1.4e8) == "140000000" and fmt_input(0.0741) == "0.0741"
    payload = {"inputs": {"x": 0.99999, "n": 4.0}}
    assert missing_inputs("Given a (x) = 1, b (n) = 4.", payload) == ["x"]
    assert missing_inputs("Given a (x) = 0.99999, b (n) = 4.", payload) == []
