"""Network elements and interfaces: an interface connects the elements a clause names with it;
an alarm is raised by the element its clause, or the document, is about."""

from __future__ import annotations

import re

from telesynth_tui.graph.extraction.layout import sentences
from telesynth_tui.graph.extraction.model import Emit, Item, XEntity
from telesynth_tui.graph.extraction.names import (
    BUILTIN_ELEMENTS,
    ELEMENT_TECHNOLOGY,
    INTERFACE_ENDPOINTS,
    NODE_PARTS,
    PROTOCOL_INTERFACES,
    UNIT_PARTS,
    Known,
    spot,
    strip_md,
)

_CUE_CONNECTS_RE = re.compile(
    r"\b(?:over|between|via|towards?|interface|link|connect)\w*", re.IGNORECASE
)
_CUE_RAISED_RE = re.compile(
    r"\b(?:raised?|raises|reported|reports|issued|issues|sent|sends|"
    r"on the|from the|of the)\b",
    re.IGNORECASE,
)


# what follows an alarm's name to say which element raises it: 'F1 Link Failure alarm raised
# by the gNB-DU or gNB-CU', 'an NG Setup Failure alarm on the gNodeB'; then more elements
_RAISED_BY_RE = re.compile(
    r"^(?:\s+alarms?)?\s+(?:(?:is\s+|are\s+)?(?:raised|reported|issued|sent)\s+by|on|from)"
    r"\s+(?:the\s+|an?\s+)?$",
    re.IGNORECASE,
)
_AND_OR_RE = re.compile(r"^\s*(?:,|or|and)\s+(?:the\s+|an?\s+)?$", re.IGNORECASE)


def _alarm_then_elements(
    clause: str, alarms: list[XEntity], elements: list[XEntity]
) -> list[tuple[XEntity, XEntity]]:
    """Each alarm with the elements named right after it as the ones raising it."""
    low = clause.lower()
    out = []
    for a in alarms:
        at = low.find(a.name.lower())
        if at == -1:
            continue
        end = at + len(a.name)
        placed = sorted(
            (low.find(e.name.lower(), end), e)
            for e in elements
            if low.find(e.name.lower(), end) > 0
        )
        gap_re = _RAISED_BY_RE
        for start, e in placed:
            if not gap_re.match(clause[end:start]):
                break
            out.append((a, e))
            end, gap_re = start + len(e.name), _AND_OR_RE
    return out


def element_clauses(item: Item, emit: Emit, known: Known) -> None:
    """'the MME asks the eNodeB, over the S1 interface, ...': an interface connects the
    elements a clause names with it; 'X alarm raised by the gNodeB': the element raises it."""
    text = strip_md(item.text) if item.kind != "row" else ""
    for sentence in sentences(text):
        for clause in re.split(r";\s|:\s|\s[—–]\s", sentence):
            found = spot(clause, known)
            interfaces = [e for e in found if e.type == "Interface"]
            elements = [e for e in found if e.type == "NetworkElement"]
            if len(interfaces) == 1 and elements and _CUE_CONNECTS_RE.search(clause):
                for e in elements:
                    if links(interfaces[0], e):
                        emit(interfaces[0], "connects", e, item, "interface_clause_connects")
            elif len(interfaces) == 1 and interfaces[0].name in INTERFACE_ENDPOINTS:
                # a standard interface named with its endpoints links them, cue or not
                for e in elements:
                    if e.name in INTERFACE_ENDPOINTS[interfaces[0].name]:
                        emit(interfaces[0], "connects", e, item, "interface_names_endpoint")
            alarms = [e for e in found if e.type == "Alarm"]
            if alarms and len(elements) == 1 and _CUE_RAISED_RE.search(clause):
                for a in alarms:
                    if technology_agrees(a, elements[0]):
                        emit(a, "raised_by", elements[0], item, "alarm_clause_element")
            elif alarms and len(elements) > 1:
                for a, e in _alarm_then_elements(clause, alarms, elements):
                    if technology_agrees(a, e):
                        emit(a, "raised_by", e, item, "alarm_clause_element")


def alarms_of_main_element(items: list[Item], emit: Emit, known: Known) -> None:
    """A document about one kind of element (most of its element mentions): its alarms are
    raised by that element."""
    counts: dict[XEntity, int] = {}
    alarms: dict[XEntity, Item] = {}
    first: dict[str, Item] = {}  # element name -> the first item that names it
    for item in items:
        for e in spot(item.text, known):
            if e.type == "NetworkElement" and e.name != "UE":
                first.setdefault(e.name, item)
                # a part of a split node counts for the node
                node = XEntity(NODE_PARTS[e.name], e.type) if e.name in NODE_PARTS else e
                counts[node] = counts.get(node, 0) + 1
            elif e.type == "Alarm":
                alarms.setdefault(e, item)
    parts = [*NODE_PARTS.items(), *((u, n) for u in UNIT_PARTS for n in ("eNodeB", "gNodeB"))]
    for part, whole in parts:
        if part in first and whole in first:  # the document names the node and its part
            emit(
                XEntity(part, "NetworkElement"),
                "part_of",
                XEntity(whole, "NetworkElement"),
                first[part],
                "element_part_of_node",
            )
    # 'F1 Link Failure', 'S1 Setup Failure': an alarm named after an interface is raised by
    # the radio nodes at its ends
    of_interface: set[XEntity] = set()
    for alarm, item in alarms.items():
        first_word = alarm.name.split()[0]
        for name, _, aliases in BUILTIN_ELEMENTS:
            if name in INTERFACE_ENDPOINTS and first_word in (name, *aliases):
                of_interface.add(alarm)
                ends = [XEntity(e, "NetworkElement") for e in sorted(INTERFACE_ENDPOINTS[name])]
                for end in ends:
                    if end.name in _RADIO_NODES and technology_agrees(alarm, end):
                        emit(alarm, "raised_by", end, item, "alarm_of_interface")
    if not counts or not alarms:
        return
    main, n = max(counts.items(), key=lambda kv: kv[1])
    # a core node named most is the far end of the radio network's links, not what raises
    # its alarms
    if n < 0.6 * sum(counts.values()) or main.name in _CORE_NODES:
        return
    for alarm, item in alarms.items():
        if alarm not in of_interface and technology_agrees(alarm, main):
            emit(alarm, "raised_by", main, item, "alarm_main_element")


# the radio access nodes (an interface alarm is the RAN node's, not the core's or the UE's)
_RADIO_NODES = {"eNodeB", "gNodeB", "gNB-CU", "gNB-DU"}
_CORE_NODES = {"MME", "SGW", "PGW", "AMF", "SMF", "UPF", "HSS", "UDM"}


def protocols_of_interfaces(items: list[Item], emit: Emit, known: Known) -> None:
    """A sentence that names a transport protocol and an interface it runs under ('the SCTP
    association of the S1 link'): the protocol is part of the interface."""
    for item in items:
        if item.kind == "row":
            continue
        for sentence in sentences(strip_md(item.text)):
            found = spot(sentence, known)
            for protocol in [e for e in found if e.name in PROTOCOL_INTERFACES]:
                for e in found:
                    if e.type == "Interface" and e.name in PROTOCOL_INTERFACES[protocol.name]:
                        emit(protocol, "part_of", e, item, "protocol_part_of_interface")


def links(interface: XEntity, element: XEntity) -> bool:
    """Can the interface link the element? A standard interface links only its endpoints."""
    ends = INTERFACE_ENDPOINTS.get(interface.name)
    known_element = element.name in {n for n, t, _ in BUILTIN_ELEMENTS if t == "NetworkElement"}
    return ends is None or not known_element or element.name in ends


def technology_agrees(alarm: XEntity, element: XEntity) -> bool:
    """An alarm named after an interface or element of one radio technology ('Xn Link
    Failure') is not raised by an element of the other."""
    theirs = ELEMENT_TECHNOLOGY.get(element.name, "")
    ours = {ELEMENT_TECHNOLOGY.get(w, "") for w in alarm.name.split()} - {""}
    return not theirs or not ours or ours == {theirs}
