"""Checks: a check that reads what indicates a cause checks that cause (and no other)."""

from __future__ import annotations

from .conftest import extracted

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
    return extracted(DOC)


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
    found = extracted(CUED)
    assert "check_sentence_indicates" in found[("pmRankDistr", "indicates", "Antenna feeder fault")]
    # pmCqiDistr is read in another sentence: the cue says nothing about it
    assert ("pmCqiDistr", "indicates", "Antenna feeder fault") not in found


ECHO = """# S1 link drops

## Symptoms

- pmSctpAssocAbort grows during the night, when a Transport path outage cuts the link.

## Likely causes

- **Transport path outage**: a router on the path reboots or a link flaps.
- **Late wake-up**: the cell wakes up after traffic has arrived.

## Checks

1. **Check SCTP association state**: read pmSctpAssocAbort and pmSctpHbTimeout for the last
   day; repeated aborts after a quiet period confirm a Transport path outage.
2. **Check wake-up timing**: compare the time at which pmSctpAssocAbort grows with the time
   at which pmPrbUtilDl rises to confirm a Late wake-up.
"""


def _echo() -> dict[tuple[str, str, str], str]:
    return extracted(ECHO, budget=400)


def test_a_cue_calls_a_measure_named_before_by_a_word_of_its_name() -> None:
    found = _echo()
    rule = found[("pmSctpAssocAbort", "indicates", "Transport path outage")]
    assert "check_sentence_indicates" in rule
    assert ("pmSctpHbTimeout", "indicates", "Transport path outage") not in found


def test_a_check_that_names_its_cause_checks_no_other_through_indicators() -> None:
    found = _echo()
    assert ("Late wake-up", "checked_by", "Check wake-up timing") in found
    # it reads pmSctpAssocAbort, which indicates Transport path outage, but says what it confirms
    assert ("Transport path outage", "checked_by", "Check wake-up timing") not in found
