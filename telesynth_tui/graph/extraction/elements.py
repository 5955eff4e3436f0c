"""Network elements and interfaces: an interface connects the elements a clause names with it;
an alarm is raised by the element its clause, or the document, is about."""

from __future__ import annotations

import re

from telesynth_tui.graph.extraction.layout import sentences
from telesynth_tui.graph.extraction.model import Emit, Item, XEntity
from telesynth_tui.graph.extraction.names import Known, spot, strip_md

_CUE_CONNECTS_RE = re.compile(
    r"\b(?:over|between|via|towards?|interface|link|connect)\w*", re.IGNORECASE
)
_CUE_RAISED_RE = re.compile(
    r"\b(?:raised?|raises|reported|reports|issued|issues|sent|sends|"
    r"on the|from the|of the)\b",
    re.IGNORECASE,
)


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
                    emit(interfaces[0], "connects", e, item, "interface_clause_connects")
            alarms = [e for e in found if e.type == "Alarm"]
            if alarms and len(elements) == 1 and _CUE_RAISED_RE.search(clause):
                for a in alarms:
                    emit(a, "raised_by", elements[0], item, "alarm_clause_element")


def alarms_of_main_element(items: list[Item], emit: Emit, known: Known) -> None:
    """A document about one kind of element (most of its element mentions): its alarms are
    raised by that element."""
    counts: dict[XEntity, int] = {}
    alarms: dict[XEntity, Item] = {}
    for item in items:
        for e in spot(item.text, known):
            if e.type == "NetworkElement" and e.name != "UE":
                counts[e] = counts.get(e, 0) + 1
            elif e.type == "Alarm":
                alarms.setdefault(e, item)
    if not counts or not alarms:
        return
    main, n = max(counts.items(), key=lambda kv: kv[1])
    if n < 0.6 * sum(counts.values()):
        return
    for alarm, item in alarms.items():
        emit(alarm, "raised_by", main, item, "alarm_main_element")
