"""References lists: a line opening with several specifications, non-3GPP specification
names, and names a description mentions only as what something runs over."""

from __future__ import annotations

from telesynth_tui.graph.extraction.specs import spec_mentions

from .conftest import extracted

DOC = """# Signalling links

The S1 and X2 interfaces carry SCTP associations; sctpHeartbeatInterval sets the probe rate.

## References

- TS 36.412 and TS 38.412: signalling transport of S1 and NG over SCTP.
- TS 36.423: X2 Setup procedure.
- RFC 4960: SCTP protocol, timers and retransmission behaviour.
- ETSI EN 300 132-2: power supply interface at the input of the equipment.
"""


def _found() -> set[tuple[str, str, str]]:
    return set(extracted(DOC))


def test_a_line_with_several_specifications_gives_each_its_technology() -> None:
    found = _found()
    assert ("S1", "defined_in", "TS 36.412") in found
    assert ("NG", "defined_in", "TS 38.412") in found
    # an interface of one technology is not defined in the other's series
    assert ("S1", "defined_in", "TS 38.412") not in found
    assert ("NG", "defined_in", "TS 36.412") not in found


def test_what_a_description_runs_over_is_not_defined_there() -> None:
    found = _found()
    assert ("SCTP", "defined_in", "TS 36.412") not in found
    assert ("SCTP", "defined_in", "TS 38.412") not in found
    assert ("SCTP", "defined_in", "RFC 4960") in found


def test_rfc_and_etsi_specifications_are_named() -> None:
    names = [e.name for e, _, _ in spec_mentions(DOC)]
    assert "RFC 4960" in names
    assert "ETSI EN 300 132-2" in names
    # a bare word such as 'RFC' or a version-less 'IEEE' names nothing
    assert [e.name for e, _, _ in spec_mentions("see the RFC and IEEE rules")] == []


RRC = """# Cell barring

Set cellBarred to notBarred, keep anrEnabled on and check electricalTilt; raise
qRxLevMinOffset only when the cell edge is too far.

## References

- TS 38.331: SIB1 and cell access related information.
"""


def test_the_rrc_specification_defines_signalled_parameters_not_managed_ones() -> None:
    found = set(extracted(RRC))
    assert ("cellBarred", "defined_in", "TS 38.331") in found
    assert ("qRxLevMinOffset", "defined_in", "TS 38.331") in found
    # a feature switch, antenna geometry and an enumerated value are not RRC parameters
    for managed in ("anrEnabled", "electricalTilt", "notBarred"):
        assert (managed, "defined_in", "TS 38.331") not in found


PROCEDURES = """# Bearer admission

When the Radio Admission Control step refuses a bearer, the Bearer Context Setup fails and the
UE retries later.

## References

- TS 38.463: E1AP, Bearer Context Setup and Bearer Context Release procedures.
- TS 38.300: overall description, including radio admission control and reporting.
"""


def test_a_reference_defines_the_procedures_it_names() -> None:
    found = set(extracted(PROCEDURES))
    # named by their head noun in the description
    assert ("Bearer Context Setup", "defined_in", "TS 38.463") in found
    assert ("Bearer Context Release", "defined_in", "TS 38.463") in found
    # the document's own procedure, written in lower case in the description
    assert ("Radio Admission Control", "defined_in", "TS 38.300") in found
    # a bare head noun names no procedure
    assert not any(s.lower() == "reporting" for s, p, _ in found if p == "defined_in")


def test_the_specification_of_an_interfaces_application_protocol_defines_it() -> None:
    doc = "# Bearers\n\nText.\n\n## References\n\n- TS 38.463: E1AP bearer context management.\n"
    found = {(s, p, o, rule) for (s, p, o), rule in extracted(doc).items()}
    assert ("E1", "defined_in", "TS 38.463", "spec_reference_protocol") in found
    plain = "# Bearers\n\nText.\n\n## References\n\n- TS 38.401: E1 and F1 architecture.\n"
    assert "spec_reference_protocol" not in extracted(plain).values()
