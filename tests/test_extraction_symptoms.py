"""Symptom bullets: a cue sentence ('This points at the uplink') ties the measure named before
it to the cause it points at."""

from __future__ import annotations

from .conftest import extracted

DOC = """# Random access failures

## Symptoms

- pmRaFailMsg3 is high: msg2 was sent but msg3 never decoded. This points at the uplink.
- pmRaAttCbra grows every busy hour while the cell stays quiet at night.

## Likely causes

- **Uplink interference**: an external source raises the noise floor of the cell.
- **Low preamble power**: preambleInitialReceivedTargetPower is set too low.
"""


def _found() -> dict[tuple[str, str, str], str]:
    return extracted(DOC)


def test_a_cue_sentence_points_the_measure_before_it_at_a_cause() -> None:
    found = _found()
    rule = found[("pmRaFailMsg3", "indicates", "Uplink interference")]
    assert "symptom_cue_points_at_cause" in rule


def test_no_cue_no_cause_and_only_the_cause_pointed_at() -> None:
    found = _found()
    assert ("pmRaFailMsg3", "indicates", "Low preamble power") not in found
    assert ("pmRaAttCbra", "indicates", "Uplink interference") not in found
    assert ("pmRaAttCbra", "indicates", "Low preamble power") not in found
