"""Measures named with their counters: a ratio in parentheses, 'KPI, computed from pmX', and a
counter sharing a distinctive word with a KPI in one sentence."""

from __future__ import annotations

from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.extraction import extract
from telesynth_tui.graph.extraction.measures import kpi_counter_parens
from telesynth_tui.graph.extraction.names import Known


def _pairs(text: str) -> set[tuple[str, str]]:
    return {(k.name, c.name) for k, c in kpi_counter_parens(text, Known())}


def test_a_ratio_of_counters_in_parentheses_measures_the_kpi_before_it() -> None:
    text = "the RRC Re-establishment Success Rate (pmRrcReestSucc / pmRrcReestAtt) is low"
    assert _pairs(text) == {
        ("RRC Re-establishment Success Rate", "pmRrcReestSucc"),
        ("RRC Re-establishment Success Rate", "pmRrcReestAtt"),
    }
    worded = "Handover Success Rate (pmHoExeSucc relative to pmHoExeAtt) falls"
    assert ("Handover Success Rate", "pmHoExeAtt") in _pairs(worded)


def test_a_kpi_computed_from_a_counter() -> None:
    assert _pairs("SCTP Link Availability, computed from pmSctpAssocUpTime, drops") == {
        ("SCTP Link Availability", "pmSctpAssocUpTime")
    }
    assert _pairs("Transport Latency, from pmTwampRttAvg, rises") == {
        ("Transport Latency", "pmTwampRttAvg")
    }


def test_no_kpi_before_no_measure() -> None:
    # a counter read from another counter's node, or in parentheses after prose, measures nothing
    assert _pairs("the node reports it, from pmTwampRttAvg") == set()
    assert _pairs("repeated failures (pmRrcReestSucc / pmRrcReestAtt)") == set()
    # a parenthesis mixing a counter with prose is not a ratio of counters
    assert _pairs("Call Drop Rate (pmErabRelAbnormal, per hour)") == set()


def test_a_counter_sharing_a_distinctive_word_with_a_kpi_in_its_sentence_measures_it() -> None:
    text = (
        "Attach Success Rate falls while pmAttachAtt grows and pmAttachSucc stays flat. "
        "Cell Availability is normal and pmS1SetupFail is zero."
    )
    result = extract([Chunk("Notes", text, len(text.split()))], "Notes")
    found = {
        (t.subject.name, t.object.name) for t in result.triples if t.predicate == "measured_by"
    }
    assert ("Attach Success Rate", "pmAttachAtt") in found
    assert ("Attach Success Rate", "pmAttachSucc") in found
    # no shared word, or only a word every measure has ('success', 'rate'): nothing
    assert not {k for k, c in found if c == "pmS1SetupFail"}
