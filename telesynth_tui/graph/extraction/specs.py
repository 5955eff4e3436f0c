"""Spec references: "X (TS 38.331)", "X, defined in TS 38.321" and References lists give
defined_in."""

from __future__ import annotations

import re

from telesynth_tui.graph.extraction.cues import procedures, typed_mentions
from telesynth_tui.graph.extraction.measures import kpi_formulas
from telesynth_tui.graph.extraction.model import Emit, Item, XEntity
from telesynth_tui.graph.extraction.names import (
    APPLICATION_PROTOCOL_RE,
    BUILTIN_ELEMENTS,
    ELEMENT_TECHNOLOGY,
    Known,
    spot,
    strip_md,
)
from telesynth_tui.text import normalize_name

_SPEC_RE = re.compile(
    r"\b(?:3GPP\s+)?(?P<kind>TS|TR)\s?(?P<num>\d{2}\.\d{3})(?:-(?P<part>\d))?\b"
    r"|\b(?P<other>(?:ITU-[RT]|IEC|IEEE|RFC|O-RAN\.?[A-Z]*)\s?[A-Z]?\d[\d.]*(?:-\d+)?"
    r"|ETSI\s(?:EN|TS|ES)\s\d{3}\s\d{3}(?:-\d+)*)"
)
# the specifications a References line opens with: 'TS 36.412 and TS 38.412: ...'
_SPEC_JOIN_RE = re.compile(r"\s*(?:,|and|&|/|or)?\s*")
_DEFINED_IN_RE = re.compile(r"\b(?:defined|specified|described)\s+in\s*$", re.IGNORECASE)


def spec_mentions(text: str) -> list[tuple[XEntity, int, int]]:
    out = []
    for m in _SPEC_RE.finditer(text):
        if m.group("kind"):
            name = f"{m.group('kind')} {m.group('num')}" + (
                f"-{m.group('part')}" if m.group("part") else ""
            )
        else:
            name = m.group("other").rstrip(".")
        out.append((XEntity(name, "Specification"), m.start(), m.end()))
    return out


def inline_specs(item: Item, emit: Emit, known: Known) -> None:
    """'X (TS 38.331)', 'X (... in TS 36.331)', 'X, defined in TS 38.321'."""
    text = strip_md(item.text)
    for spec, start, _ in spec_mentions(text):
        before = text[:start]
        open_paren = before.rfind("(")
        if open_paren != -1 and ")" not in before[open_paren:]:
            head = before[:open_paren].rstrip()
            inside = before[open_paren + 1 :]
            inner = [e for e in spot(inside, known) if e.type == "Parameter"]
            for e in inner:  # "(preambleInitialReceivedTargetPower in TS 36.331)"
                emit(e, "defined_in", spec, item, "spec_inline")
            if inner or inside.strip() in ("", "see", "see also"):
                mentioned = spot(head, known)
                if mentioned and text[open_paren - 1 : open_paren] == " ":
                    last = mentioned[-1]
                    if head.endswith(last.name) or normalize_name(head).endswith(
                        normalize_name(last.name)
                    ):
                        emit(last, "defined_in", spec, item, "spec_inline")
        elif _DEFINED_IN_RE.search(before.rstrip(" ,")):
            head = _DEFINED_IN_RE.sub("", before.rstrip(" ,")).rstrip(" ,")
            mentioned = spot(head, known)
            if mentioned:
                emit(mentioned[-1], "defined_in", spec, item, "spec_inline")


def spec_technology(spec: XEntity) -> str:
    """'LTE' for the 36 series, 'NR' for the 38 series, '' for the others."""
    m = re.match(r"T[SR] (3[68])\.", spec.name)
    return ("LTE" if m.group(1) == "36" else "NR") if m else ""


def same_technology(entity: XEntity, spec: XEntity) -> bool:
    """False when an LTE-only element or interface meets an NR-series spec, or the reverse."""
    ours, theirs = ELEMENT_TECHNOLOGY.get(entity.name, ""), spec_technology(spec)
    return not ours or not theirs or ours == theirs


def with_document_procedures(items: list[Item], known: Known) -> Known:
    """The known names plus the multi-word procedures the document names outside its
    References, for its References lines (which may write them in lower case: 'MAC random
    access procedure')."""
    return known.extended(
        [
            (e.name, "Procedure", ())
            for other in items
            if other.role != "references"
            for e, _, _ in procedures(strip_md(other.text))
            if " " in e.name  # 'Handover', 'Reporting' alone name no one procedure
        ]
    )


def reference_item(item: Item, emit: Emit, known: Known, items: list[Item]) -> None:
    """'TS 36.321: MAC random access procedure ...' in a References list; a line that opens
    with several specifications ('TS 36.412 and TS 38.412: ...') gives each of them what its
    description names (an interface of one technology only to that technology's series)."""
    text = strip_md(item.text)
    specs = spec_mentions(text)
    if not specs or specs[0][1] > 3:
        return
    lead = [specs[0]]
    for nxt in specs[1:]:
        if _SPEC_JOIN_RE.fullmatch(text[lead[-1][2] : nxt[1]]):
            lead.append(nxt)
        else:
            break
    description = text[lead[-1][2] :].lstrip(" :-—–,")
    for spec, _, _ in lead:
        _reference_spec(spec, description, item, emit, known, items)


# 'transport of S1 over SCTP', 'reporting by PCI': a name after such a preposition is what the
# subject runs over or is keyed by, not what the specification defines
_CONTEXT_BEFORE_RE = re.compile(
    r"\b(?:over|via|by|on top of|through|behind|towards|from)\s+(?:the\s+|an?\s+)?$", re.I
)


def _in_context(description: str, entity: XEntity) -> bool:
    at = description.lower().find(entity.name.lower())
    return at > 0 and bool(_CONTEXT_BEFORE_RE.search(description[:at]))


def _reference_spec(
    spec: XEntity, description: str, item: Item, emit: Emit, known: Known, items: list[Item]
) -> None:
    spotted = spot(description, known)
    # 'TS 36.413: S1AP, ...': the specification of an interface's application protocol
    for protocol in APPLICATION_PROTOCOL_RE.finditer(description):
        interface = next(n for n, t, _ in BUILTIN_ELEMENTS if n.upper() == protocol[1].upper())
        emit(XEntity(interface, "Interface"), "defined_in", spec, item, "spec_reference_protocol")
    for e, _, _ in typed_mentions(description, known):
        if e.type == "Parameter":
            emit(e, "defined_in", spec, item, "spec_reference_list_parameter")
        elif _in_context(description, e):
            continue
        # a network element is described by many specifications and defined by none of them;
        # an interface of one radio technology is not defined in the other's series
        elif e.type in ("Procedure", "Concept", "Interface", "Formula") and same_technology(
            e, spec
        ):
            # a procedure named by its head noun ('S1AP, including the S1 Setup procedure')
            known_name = any(normalize_name(e.name) == normalize_name(k.name) for k in spotted)
            rule = "spec_reference_list" if known_name else "spec_reference_procedure"
            emit(e, "defined_in", spec, item, rule)
    for pattern, type_, rule in (
        (r"\bcounters?\b|performance measurements?", "Counter", "spec_reference_counters"),
        (r"\bKPIs?\b|key performance indicators?", "KPI", "spec_reference_kpis"),
    ):
        if re.search(pattern, description, re.I):
            # the document's own measures: what its KPI formulas name
            named = [
                e
                for other in items
                if other.role != "references" and other.kind != "row"
                for kpi, counters in kpi_formulas(strip_md(other.text), known)
                for e in ([kpi] if type_ == "KPI" else [XEntity(c, "Counter") for c in counters])
            ]
            for e in dict.fromkeys(named):
                emit(e, "defined_in", spec, item, rule)
    if re.search(r"\bparameters?\b|\bIEs?\b|information elements?", description, re.I):
        params = [
            e
            for other in items
            if other.role != "references"
            for e in spot(other.text, known)
            if e.type == "Parameter"
        ]
        for p in dict.fromkeys(params):
            emit(p, "defined_in", spec, item, "spec_reference_parameters")
    elif _IE_NAME_RE.search(description) or _RRC_SPEC_RE.fullmatch(spec.name):
        # 'TS 38.331: RACH-ConfigCommon and RACH-ConfigGeneric': the spec of the document's
        # configuration structures defines its parameters that no other reference names
        named_elsewhere = {
            normalize_name(e.name)
            for other in items
            if other.role == "references" and other is not item
            for e in spot(other.text, known)
        }
        params = [
            e
            for other in items
            if other.role != "references"
            for e in spot(other.text, known)
            if e.type == "Parameter"
            and normalize_name(e.name) not in named_elsewhere
            and not _MANAGED_RE.search(e.name)
        ]
        for p in dict.fromkeys(params):
            emit(p, "defined_in", spec, item, "spec_reference_structures")


# names the configuration management of a node holds rather than the radio protocol signals:
# feature switches and states ('anrEnabled', 'isHoAllowed', 'administrativeState'), antenna
# geometry ('electricalTilt', 'antennaAzimuth'), and enumerated values ('notBarred', 'noRemove')
_MANAGED_RE = re.compile(
    r"(?:Enabled|Allowed|State|Tilt|Azimuth)$|^(?:is|has)[A-Z]|^(?:not|no)[A-Z]|^antenna[A-Z]"
)
# the RRC specifications, where the radio parameters a cell broadcasts or signals are defined
_RRC_SPEC_RE = re.compile(r"TS 3[68]\.331")
# an ASN.1 structure name: 'RACH-ConfigCommon', 'RadioLinkMonitoringConfig', 'MeasConfig'
_IE_NAME_RE = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:-?(?:Config|Info|List|Setup|Parameters)\w*)\b")
