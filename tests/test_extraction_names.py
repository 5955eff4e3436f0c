"""Entity names the structure-aware extractor recognises: link-direction measurement names,
Title Case fault names as alarms (not measured losses, not list intros), the standard's
elements over identifier-like spellings, and the standard's parts and protocols."""

from __future__ import annotations

from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.extraction import Known, XEntity, extract, spot
from telesynth_tui.graph.extraction.names import with_builtins


def _spot(text: str, known: Known | None = None) -> list[XEntity]:
    return spot(text, with_builtins(known or Known()))


def test_link_direction_belongs_to_the_measurement_name() -> None:
    names = [(e.name, e.type) for e in _spot("Uplink RSSI rises while DL SINR and CQI fall.")]
    assert ("Uplink RSSI", "KPI") in names
    assert ("DL SINR", "KPI") in names
    assert ("CQI", "KPI") in names
    assert ("RSSI", "KPI") not in names


def test_title_case_fault_names_are_alarms() -> None:
    found = _spot("The S1 Link Failure and a Synchronisation Loss follow; License Expired too.")
    alarms = {e.name for e in found if e.type == "Alarm"}
    assert alarms == {"S1 Link Failure", "Synchronisation Loss", "License Expired"}


def test_fault_names_exclude_losses_kpis_and_sentence_case() -> None:
    found = _spot("Path Loss and Packet Loss Rate grow; a hardware fault is likely.")
    assert not [e for e in found if e.type == "Alarm"]


def test_alarm_list_intro_is_not_an_alarm() -> None:
    found = _spot("Supporting alarms: Radio Unit Failure or Power Supply Failure.")
    alarms = {e.name for e in found if e.type == "Alarm"}
    assert "Supporting" not in alarms
    assert alarms == {"Radio Unit Failure", "Power Supply Failure"}


def test_radio_events_are_concepts_not_alarms() -> None:
    found = _spot("A Radio Link Failure follows when t310 expires.")
    assert XEntity("Radio Link Failure", "Concept") in found
    assert not [e for e in found if e.type == "Alarm"]


def test_standard_elements_win_over_identifier_patterns_and_graph_types() -> None:
    # an earlier document's pattern typed gNB-CU as a parameter: the standard's type wins
    known = Known([("gNB-CU", "Parameter", ())])
    found = _spot("Check the gNB-CU and gNB-DU alarms and the eCPRI link.", known)
    assert XEntity("gNB-CU", "NetworkElement") in found
    assert XEntity("gNB-DU", "NetworkElement") in found
    assert XEntity("CPRI", "Interface") in found  # eCPRI is its alias
    assert not [e for e in found if e.type in ("Parameter", "Alarm")]


def _part_of(text: str) -> set[tuple[str, str, str]]:
    result = extract([Chunk("Notes", text, len(text.split()))], "Notes")
    return {
        (t.subject.name, t.object.name, t.rule) for t in result.triples if t.predicate == "part_of"
    }


def test_parts_of_a_split_node_and_units_of_a_base_station() -> None:
    text = "The gNodeB is split: the gNB-DU hosts the Radio Unit link and RLC."
    assert _part_of(text) == {
        ("gNB-DU", "gNodeB", "element_part_of_node"),
        ("Radio Unit", "gNodeB", "element_part_of_node"),
    }
    assert _part_of("The gNB-DU hosts RLC.") == set()  # the node itself is not named


def test_transport_protocol_part_of_the_interfaces_it_carries() -> None:
    text = "The SCTP association of the S1 link dropped; GTP-U over NG kept running."
    assert {(s, o) for s, o, _ in _part_of(text)} >= {("SCTP", "S1"), ("GTP-U", "NG")}
    # SCTP does not carry the Uu air interface; a protocol and interface apart name nothing
    assert _part_of("SCTP retransmissions rise while Uu is clean.") == set()
    assert _part_of("SCTP is busy. S1 is fine.") == set()


def test_the_verb_a_step_opens_with_is_not_part_of_a_kpi_name() -> None:
    names = {e.name for e in spot("Follow Attach Success Rate for a week.", Known())}
    assert "Attach Success Rate" in names
    assert "Follow Attach Success Rate" not in names


def test_measured_quantities_named_in_title_case_are_kpis() -> None:
    text = (
        "Cabinet Temperature climbs, Interference over Thermal rises, Frequency Error grows"
        " and Battery Backup Time shrinks; the temperature of the room is fine."
    )
    kpis = {e.name for e in spot(text, Known()) if e.type == "KPI"}
    assert {
        "Cabinet Temperature",
        "Interference over Thermal",
        "Frequency Error",
        "Battery Backup Time",
    } <= kpis
    # a single lower-case word names no KPI
    assert not {k for k in kpis if k.lower() == "temperature"}
