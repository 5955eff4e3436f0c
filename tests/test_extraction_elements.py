"""Network elements, interfaces and spec references: a standard interface links only its
endpoints, an alarm named after one radio technology's interface is not raised by the other's
element, and a References list defines no network element and no interface of the other
technology's series."""

from __future__ import annotations

from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.extraction import XEntity, extract
from telesynth_tui.graph.extraction.elements import links, technology_agrees
from telesynth_tui.graph.extraction.specs import same_technology, spec_technology


def _relations(chunks: list[tuple[str, str]], predicate: str) -> set[tuple[str, str, str]]:
    result = extract([Chunk(h, t, len(t.split())) for h, t in chunks], "Transport")
    return {
        (t.subject.name, t.object.name, t.rule) for t in result.triples if t.predicate == predicate
    }


def test_interface_connects_only_its_endpoints() -> None:
    text = "The MME reaches the eNodeB over the S1 interface, and the UE waits meanwhile."
    connects = {(s, o) for s, o, _ in _relations([("Notes", text)], "connects")}
    assert connects == {("S1", "MME"), ("S1", "eNodeB")}


def test_interface_named_with_its_endpoint_without_a_cue() -> None:
    text = "When the setup fails the gNodeB keeps its cells barred; the AMF logs the reject."
    connects = _relations([("Notes", "NG is down. The gNodeB and the AMF disagree.")], "connects")
    assert ("NG", "gNodeB", "interface_names_endpoint") not in connects  # different sentences
    assert _relations([("Notes", text)], "connects") == set()  # no interface named
    same = _relations([("Notes", "NG is down between the gNodeB and the AMF.")], "connects")
    assert {(s, o) for s, o, _ in same} == {("NG", "gNodeB"), ("NG", "AMF")}


def test_links_allows_elements_it_does_not_know() -> None:
    assert links(XEntity("S1", "Interface"), XEntity("MME", "NetworkElement"))
    assert not links(XEntity("S1", "Interface"), XEntity("UE", "NetworkElement"))
    assert not links(XEntity("F1", "Interface"), XEntity("AMF", "NetworkElement"))
    assert links(XEntity("CPRI", "Interface"), XEntity("Radio Unit", "NetworkElement"))
    assert links(XEntity("F1", "Interface"), XEntity("Cell Site Router", "NetworkElement"))


def test_alarm_technology_must_agree_with_the_element() -> None:
    assert not technology_agrees(
        XEntity("Xn Link Failure", "Alarm"), XEntity("eNodeB", "NetworkElement")
    )
    assert technology_agrees(
        XEntity("Xn Link Failure", "Alarm"), XEntity("gNodeB", "NetworkElement")
    )
    assert technology_agrees(XEntity("Fan Failure", "Alarm"), XEntity("eNodeB", "NetworkElement"))
    text = "An Xn Link Failure alarm raised by the eNodeB means nothing here."
    # the eNodeB is not taken; the standard's ends of Xn are
    assert _relations([("Symptoms", text)], "raised_by") == {
        ("Xn Link Failure", "gNodeB", "alarm_of_interface")
    }
    text = "An X2 Link Failure alarm raised by the eNodeB."
    assert {(s, o) for s, o, _ in _relations([("Symptoms", text)], "raised_by")} == {
        ("X2 Link Failure", "eNodeB")
    }


def test_spec_series_technology() -> None:
    assert spec_technology(XEntity("TS 36.423", "Specification")) == "LTE"
    assert spec_technology(XEntity("TS 38.423", "Specification")) == "NR"
    assert spec_technology(XEntity("TS 28.552", "Specification")) == ""
    assert not same_technology(XEntity("Xn", "Interface"), XEntity("TS 36.423", "Specification"))
    assert same_technology(XEntity("Xn", "Interface"), XEntity("TS 38.423", "Specification"))
    assert same_technology(XEntity("Xn", "Interface"), XEntity("TS 28.552", "Specification"))


def test_references_define_no_element_and_respect_the_series() -> None:
    refs = [
        (
            "Doc > References",
            "- TS 38.423: XnAP, the Xn application protocol between gNodeB nodes.",
        ),
        ("Doc > References", "- TS 36.423: X2AP, also used for Xn fallbacks and eNodeB links."),
    ]
    defined = {(s, o) for s, o, _ in _relations(refs, "defined_in")}
    assert ("Xn", "TS 38.423") in defined
    assert ("Xn", "TS 36.423") not in defined
    assert not {s for s, _ in defined} & {"gNodeB", "eNodeB"}


def test_rrc_specification_defines_the_parameters_no_other_reference_names() -> None:
    chunks = [
        ("Doc > Actions", "- **Raise hoMarginDb** to delay the handover; check antennaTiltDeg."),
        ("Doc > References", "- TS 38.331: measurement events and reporting.\n"
         "- TS 28.552: antennaTiltDeg and other management attributes."),
    ]  # fmt: skip
    defined = {(s, o) for s, o, _ in _relations(chunks, "defined_in")}
    assert ("hoMarginDb", "TS 38.331") in defined
    assert ("antennaTiltDeg", "TS 38.331") not in defined  # another reference names it
    other = [
        ("Doc > Actions", "- **Raise hoMarginDb** to delay the handover."),
        ("Doc > References", "- TS 38.300: overall description of NR mobility."),
    ]
    assert not _relations(other, "defined_in")
