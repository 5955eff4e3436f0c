"""Sentence cue rules of the structure-aware extractor: procedure names, and affects, uses,
triggers, part_of and is_a between typed mentions on either side of a cue phrase."""

from __future__ import annotations

from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.extraction import XEntity, extract
from telesynth_tui.graph.extraction.cues import procedures


def _facts(text: str) -> set[tuple[str, str, str, str]]:
    result = extract([Chunk("Notes", text, len(text.split()))], "Notes")
    return {(t.subject.name, t.predicate, t.object.name, t.rule) for t in result.triples}


def _relations(text: str, predicate: str) -> set[tuple[str, str]]:
    return {(s, o) for s, p, o, _ in _facts(text) if p == predicate}


def test_procedures_by_head_noun_without_lead_words() -> None:
    found = [e.name for e, _, _ in procedures("After the NR Random Access Procedure, watch it.")]
    assert found == ["Random Access Procedure"]
    assert [e.name for e, _, _ in procedures("Beam Failure Recovery ends the episode.")] == [
        "Beam Failure Recovery"
    ]
    assert all(e.type == "Procedure" for e, _, _ in procedures("Initial Context Setup fails."))


def test_a_procedure_head_inside_a_longer_name_is_not_a_procedure() -> None:
    # 'Handover Success Rate' is a KPI, 'random access' in lower case is prose
    assert procedures("Handover Success Rate drops after the random access fails.") == []


def test_affects_parameter_before_the_cue_and_kpi_or_procedure_after() -> None:
    text = "A larger hoTriggerOffset delays the Inter-frequency Handover in dense areas."
    assert ("hoTriggerOffset", "Inter-frequency Handover") in _relations(text, "affects")


def test_affects_needs_a_parameter_as_subject() -> None:
    # the KPI is before the cue, the parameter after it: nothing is said to affect the KPI
    text = "Drop Rate is controlled by a cell's rlfTimerValue."
    assert _relations(text, "affects") == set()


def test_a_procedure_used_with_a_parameter_is_affected_by_it() -> None:
    text = "Paging Procedure runs with pagingCycleLength and over the N2 interface."
    facts = _facts(text)
    assert ("pagingCycleLength", "affects", "Paging Procedure", "cue_parameter_of_procedure") in (
        facts
    )
    assert ("Paging Procedure", "uses", "N2", "cue_uses") in facts


def test_uses_needs_a_procedure_before_the_cue() -> None:
    text = "Operators use pagingCycleLength over the N2 interface."
    assert _relations(text, "uses") == set()
    assert _relations(text, "affects") == set()


def test_triggers_active_and_passive() -> None:
    active = "A wrong lbtThreshold triggers the Cell Reselection of idle users."
    assert ("lbtThreshold", "Cell Reselection") in _relations(active, "triggers")
    passive = "Conditional Handover, triggered by the choExecutionThreshold, is faster."
    assert ("choExecutionThreshold", "Conditional Handover") in _relations(passive, "triggers")


def test_triggers_needs_a_procedure_right_after_the_cue() -> None:
    # the UE starts a timer, not a procedure: the procedure further on is not what it starts
    text = "The UE starts t304Timer and performs the Random Access Procedure."
    assert _relations(text, "triggers") == set()


def test_part_of_and_consists_of() -> None:
    part = "Admission Control is part of the PDU Session Resource Setup."
    assert ("Admission Control", "PDU Session Resource Setup") in _relations(part, "part_of")
    whole = "Cell Activation consists of Cell Selection and Initial Context Setup."
    assert _relations(whole, "part_of") >= {
        ("Cell Selection", "Cell Activation"),
        ("Initial Context Setup", "Cell Activation"),
    }


def test_part_of_needs_its_cue() -> None:
    text = "Admission Control runs before the PDU Session Resource Setup."
    assert _relations(text, "part_of") == set()


def test_is_a_types_the_object_as_a_concept() -> None:
    result = extract(
        [Chunk("Notes", "Contention Resolution is a kind of Random Access Procedure.", 9)], "Notes"
    )
    is_a = [t for t in result.triples if t.predicate == "is_a"]
    assert [(t.subject.name, t.object) for t in is_a] == [
        ("Contention Resolution", XEntity("Random Access Procedure", "Concept"))
    ]
    negative = extract([Chunk("Notes", "Contention Resolution follows the Random Access "
                              "Procedure.", 9)], "Notes")  # fmt: skip
    assert not [t for t in negative.triples if t.predicate == "is_a"]


def test_no_cue_rules_in_references_or_definitions() -> None:
    text = "- TS 38.321: Random Access Procedure uses preambleTransMax over the Uu interface."
    result = extract([Chunk("Doc > References", text, 12)], "Doc")
    assert not [t for t in result.triples if t.rule.startswith("cue_")]


def test_procedure_named_after_an_interface_uses_it() -> None:
    facts = _facts("The S1 Setup is refused by the MME after the Xn Setup succeeded.")
    assert ("S1 Setup", "uses", "S1", "procedure_names_interface") in facts
    assert ("Xn Setup", "uses", "Xn", "procedure_names_interface") in facts
    assert ("S1 Setup", "uses", "Xn", "procedure_names_interface") not in facts
    # a KPI named after the procedure is no procedure
    assert not [f for f in _facts("S1 Setup Success Rate is low on the MME.") if f[1] == "uses"]


def test_a_procedure_beside_an_application_protocol_runs_over_its_interface() -> None:
    facts = _facts("The F1AP trace shows the UE Context Modification rejected by the gNB-DU.")
    assert ("UE Context Modification", "uses", "F1", "procedure_of_protocol") in facts
    # two protocols in one sentence: which procedure runs over which is not said
    both = _facts("Compare the NGAP and E1AP traces of the Bearer Context Setup.")
    assert not [f for f in both if f[3] == "procedure_of_protocol"]
    # a References line says it too
    text = "- TS 38.473: F1AP, including the gNB-DU Configuration Update procedure."
    refs = extract([Chunk("Doc > References", text, 10)], "Doc")
    found = {(t.subject.name, t.predicate, t.object.name) for t in refs.triples}
    assert ("gNB-DU Configuration Update", "uses", "F1") in found
    assert ("gNB-DU Configuration Update", "defined_in", "TS 38.473") in found


def test_procedure_names_with_a_qualifier_of_the_standard() -> None:
    names = [e.name for e, _, _ in procedures("Then the NG-RAN node Configuration Update runs.")]
    assert names == ["NG-RAN node Configuration Update"]
    assert [e.name for e, _, _ in procedures("The eNB Configuration Update fails.")] == [
        "eNB Configuration Update"
    ]
    # a verb after a plain abbreviation is not part of the name
    assert [e.name for e, _, _ in procedures("LTE uses Handover often.")] == ["Handover"]
