"""Verification paragraphs: a measure the verification watches verifies the actions that
resolve the cause it indicates (and only those)."""

from __future__ import annotations

from .conftest import extracted

DOC = """# Radio unit overheating

## Symptoms

- A High Temperature alarm on the radio unit during the afternoon peak.

## Likely causes

- **Fan unit wear**: worn bearings slow the fans; pmFanSpeed falls below the commanded speed.
- **Blocked air filter**: dust blocks the air flow; pmBoardTemperature climbs at every peak.

## Actions

- **Replace fan unit** when Fan unit wear is confirmed.
- **Clean air filter** and fit a new one when Blocked air filter is found.

## Verification

Over the following week pmFanSpeed should match the commanded speed.
"""


def _found() -> dict[tuple[str, str, str], str]:
    return extracted(DOC)


def test_a_watched_indicator_verifies_the_action_for_its_cause() -> None:
    found = _found()
    assert ("pmFanSpeed", "indicates", "Fan unit wear") in found
    assert ("Fan unit wear", "resolved_by", "Replace fan unit") in found
    assert (
        "verification_measure_indicates_cause"
        in found[("Replace fan unit", "verified_by", "pmFanSpeed")]
    )


def test_it_does_not_verify_the_action_for_another_cause() -> None:
    found = _found()
    assert ("Clean air filter", "verified_by", "pmFanSpeed") not in found
    # pmBoardTemperature indicates Blocked air filter but the verification does not watch it
    assert ("Clean air filter", "verified_by", "pmBoardTemperature") not in found
