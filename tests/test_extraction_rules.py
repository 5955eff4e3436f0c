"""The structure-aware extractor's rules for document layout: typed tables naming things for the
whole document, several bold actions in one item, commentary items, cue sentences in checks,
causes linked through what they name, symptom names, network elements and interfaces,
references about KPIs and counters, counters that spell a KPI, and the main KPI's source."""

from __future__ import annotations

from telesynth_tui.graph.chunking import chunk_markdown
from telesynth_tui.graph.extraction import CONFIDENCE, extract

DOC = """# Microwave backhaul outages

Backhaul Availability = pmMwAvailTime / pmMwTotalTime x 100 %, per hop.

## Symptoms

- A Hop Down Alarm raised by the eNodeB when the hop fails.
- pmMwFadeSeconds grows on rainy days.
- The Received Level distribution (pmMwRxLevelDistr) shifts to low values.

## Likely causes

- **Rain fade**: heavy rain attenuates the carrier; the hop loses margin and mwTxPower is
  already at its limit.
- **Antenna pointing error**: wind moves the dish; hopMargin shows a permanent loss.

## Checks

- **Compare fade logs**: read pmMwFadeSeconds and the weather record; loss that follows the
  rain suggests fade.
- **Read transmit settings**: mwTxPower and hopMargin of both ends.
- Ask the field team for photos.

## Actions

| Parameter | Range |
|---|---|
| atpcRange | 0 to 20 dB |

- **Raise atpcRange** and **Enable adaptive modulation** against Rain fade.
- **Realign the antenna** after a storm.

## Verification

Watch Backhaul Availability and Received Level for a week. The eNodeB reports the hop over
the S1 interface to the MME.

## References

- TS 32.450: KPI definitions used above.
- TS 32.425: performance measurements behind the counters.
"""


class _Rules(str):
    """A triple's rule: equal to any one of the rules that stated it ('a+b' == 'b')."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and (str.__eq__(self, other) or other in self.split("+"))

    __hash__ = str.__hash__


def _found() -> dict[tuple[str, str, str], str]:
    chunks = chunk_markdown(DOC, "Microwave backhaul outages", 300)
    out = extract(chunks, "Microwave backhaul outages")
    return {(t.subject.name, t.predicate, t.object.name): _Rules(t.rule) for t in out.triples}


def test_table_names_are_known_in_the_whole_document() -> None:
    found = _found()
    # atpcRange is named only in the Parameter column; the action text finds it
    assert found[("Raise atpcRange", "adjusts", "atpcRange")] == "action_adjusts_name"


def test_every_bold_action_of_an_item_is_an_action() -> None:
    found = _found()
    assert found[("Rain fade", "resolved_by", "Raise atpcRange")] == "action_names_cause"
    assert found[("Rain fade", "resolved_by", "Enable adaptive modulation")] == (
        "action_names_cause"
    )
    # the parameter the first action is named after is not the second one's
    assert ("Enable adaptive modulation", "adjusts", "atpcRange") not in found


def test_commentary_in_a_bold_named_list_names_nothing() -> None:
    found = _found()
    assert not any("Ask the field team" in s or "Ask the field team" in o for s, _p, o in found)


def test_check_cue_sentence_ties_what_it_reads_to_the_cause() -> None:
    found = _found()
    # '... suggests fade': the distinctive word of 'Rain fade'
    assert found[("Rain fade", "checked_by", "Compare fade logs")] == "check_cue_names_cause"
    assert found[("pmMwFadeSeconds", "indicates", "Rain fade")] == "check_sentence_indicates"


def test_cause_linked_to_the_check_that_reads_what_it_names() -> None:
    found = _found()
    # the cause's description names mwTxPower and hopMargin; the check reads both
    assert found[("Rain fade", "checked_by", "Read transmit settings")] == (
        "cause_names_what_check_reads"
    )
    assert found[("Antenna pointing error", "checked_by", "Read transmit settings")] == (
        "cause_names_what_check_reads"
    )


def test_symptom_name_sharing_a_distinctive_word_with_a_cause() -> None:
    found = _found()
    # pmMwFadeSeconds spells 'fade', which only 'Rain fade' has
    assert ("pmMwFadeSeconds", "indicates", "Rain fade") in found
    assert ("pmMwFadeSeconds", "indicates", "Antenna pointing error") not in found


def test_elements_interfaces_and_alarms() -> None:
    found = _found()
    assert found[("Hop Down Alarm", "raised_by", "eNodeB")] == "alarm_clause_element"
    assert found[("S1", "connects", "eNodeB")] == "interface_clause_connects"
    assert found[("S1", "connects", "MME")] == "interface_clause_connects"


def test_references_about_kpis_and_counters() -> None:
    found = _found()
    assert found[("Backhaul Availability", "defined_in", "TS 32.450")] == "spec_reference_kpis"
    assert found[("pmMwAvailTime", "defined_in", "TS 32.425")] == "spec_reference_counters"


def test_counters_that_name_a_kpi() -> None:
    found = _found()
    assert found[("Received Level", "measured_by", "pmMwRxLevelDistr")] == "kpi_counter_paren"


def test_main_kpi_from_a_formula_is_surest() -> None:
    found = _found()
    rule = found[("Rain fade", "degrades", "Backhaul Availability")]
    assert rule == "cause_degrades_formula_kpi"
    assert CONFIDENCE["cause_degrades_formula_kpi"] > CONFIDENCE["cause_degrades_symptom_kpi"]
    without_formula = DOC.replace(
        "Backhaul Availability = pmMwAvailTime / pmMwTotalTime x 100 %, per hop.", ""
    ).replace("- The Received Level", "- Backhaul Availability drops. The Received Level")
    chunks = chunk_markdown(without_formula, "Microwave backhaul outages", 300)
    rules = {
        (t.subject.name, t.predicate, t.object.name): t.rule
        for t in extract(chunks, "Microwave backhaul outages").triples
    }
    assert rules[("Rain fade", "degrades", "Backhaul Availability")] == (
        "cause_degrades_symptom_kpi"
    )
