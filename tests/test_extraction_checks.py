"""Checks: a check that reads what indicates a cause checks that cause (and no other)."""

from __future__ import annotations

from telesynth_tui.graph.chunking import chunk_markdown
from telesynth_tui.graph.extraction import extract

DOC = """# Radio unit overheating

## Symptoms

- pmBoardTemperature climbs at every peak when the air filter is blocked.

## Likely causes

- **Blocked air filter**: dust blocks the air flow through the unit.
- **Fan unit wear**: worn bearings slow the fans down.

## Checks

1. **Check board temperature**: read pmBoardTemperature over the last week.
2. **Inspect the fans** on site and listen for noisy bearings.
"""


def _found() -> dict[tuple[str, str, str], str]:
    out = extract(chunk_markdown(DOC, "Radio unit overheating", 300), "Radio unit overheating")
    return {(t.subject.name, t.predicate, t.object.name): t.rule for t in out.triples}


def test_a_check_reading_a_cause_indicator_checks_that_cause() -> None:
    found = _found()
    assert ("pmBoardTemperature", "indicates", "Blocked air filter") in found
    assert ("Check board temperature", "reads", "pmBoardTemperature") in found
    # the cause's description names no counter: the link goes through the symptom
    rule = found[("Blocked air filter", "checked_by", "Check board temperature")]
    assert "check_reads_cause_indicator" in rule


def test_it_does_not_check_a_cause_the_counter_does_not_indicate() -> None:
    found = _found()
    assert ("Fan unit wear", "checked_by", "Check board temperature") not in found


CUED = """# Low downlink throughput

## Likely causes

- **Downlink interference**: a neighbour transmits into the cell.
- **Antenna feeder fault**: a damaged feeder on one branch.

## Checks

1. **Check CQI and rank distribution**: read pmCqiDistr over the busy hour. A pmRankDistr
   stuck at rank 1 suggests an antenna feeder fault.
"""


def test_a_check_cue_ties_only_the_measure_it_speaks_of() -> None:
    out = extract(chunk_markdown(CUED, "Low downlink throughput", 300), "Low downlink throughput")
    found = {(t.subject.name, t.predicate, t.object.name): t.rule for t in out.triples}
    assert "check_sentence_indicates" in found[("pmRankDistr", "indicates", "Antenna feeder fault")]
    # pmCqiDistr is read in another sentence: the cue says nothing about it
    assert ("pmCqiDistr", "indicates", "Antenna feeder fault") not in found
