"""Typed mentions in text (known names, counters, camelCase parameters, KPI and alarm phrases,
measurement quantities, 3GPP elements and interfaces) and the name matching the rules use
(content words, plural-tolerant mentions, overlaps)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from telesynth_tui.graph.extraction.model import XEntity
from telesynth_tui.graph.linking import Gazetteer, find_candidates
from telesynth_tui.graph.resolution import variant_key
from telesynth_tui.text import normalize_name

KPI_RE = re.compile(
    r"\b((?:(?:[A-Z][A-Za-z0-9/-]*|of|over|to|per)\s+){0,5}"
    r"(?:Success Rate|Drop Rate|Failure Rate|Rate|Ratio|Throughput|Availability|Utili[sz]ation|"
    r"Latency|Level|Temperature|Consumption|Error|Headroom|Rank|Backup Time|over Thermal))\b"
)
# ('Supporting alarms: A, B' introduces a list: no alarm is named 'Supporting')
_ALARM_RE = re.compile(
    r"(?<![\w-])((?:[A-Z][A-Za-z0-9/-]*\s+){0,4}[A-Z][A-Za-z0-9/-]*)\s+[Aa]larms?\b(?!\s*:)"
)
_QUANTITY_LOSSES = {"Path", "Return", "Packet", "Insertion", "Cable", "Feeder", "Coupling",
                    "Penetration", "Body", "Propagation", "Fading", "Mismatch"}  # fmt: skip
# a Title Case name that says what failed, without the word 'alarm': 'S1 Link Failure',
# 'Synchronisation Loss', 'License Expired' (not followed by a further capitalised word, so
# 'Packet Loss Rate' stays a KPI)
_FAULT_NAME_RE = re.compile(
    r"(?<![\w-])((?:[A-Z][A-Za-z0-9/-]*\s+){1,4}(?:Failure|Fault|Loss|Expired|Exceeded|Degraded|"
    r"Down|Timeout|Conflict|Disconnect))\b(?!\s+[A-Z])"
)
# words before a KPI's name that are not part of it: prepositions, articles, levels, and the
# verbs a step opens with ('Follow E-RAB Setup Success Rate')
_KPI_LEAD_WORDS = {"of", "over", "to", "per", "The", "A", "An", "High", "Low", "Follow", "Watch",
                   "Compare", "Check", "Verify", "Monitor", "Track", "Read", "If", "When", "Once",
                   "After", "Then"}  # fmt: skip
# measurement quantities every RAN document uses: generic domain vocabulary, typed as KPIs
_BUILTIN_KPIS = {"RSRP", "RSRQ", "SINR", "CQI", "BLER", "RSSI", "SS-RSRP", "SS-RSRQ", "SS-SINR"}
# 3GPP network elements and reference points: the domain vocabulary every RAN document uses,
# typed like the measurement quantities above (name, aliases)
BUILTIN_ELEMENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("eNodeB", "NetworkElement", ("eNB",)),
    ("gNodeB", "NetworkElement", ("gNB",)),
    ("gNB-CU", "NetworkElement", ()),
    ("gNB-DU", "NetworkElement", ()),
    ("UE", "NetworkElement", ()),
    ("MME", "NetworkElement", ()),
    ("SGW", "NetworkElement", ("S-GW",)),
    ("PGW", "NetworkElement", ("P-GW",)),
    ("AMF", "NetworkElement", ()),
    ("SMF", "NetworkElement", ()),
    ("UPF", "NetworkElement", ()),
    ("HSS", "NetworkElement", ()),
    ("UDM", "NetworkElement", ()),
    ("Radio Unit", "NetworkElement", ("RRU", "Remote Radio Unit", "O-RU")),
    ("Baseband Unit", "NetworkElement", ("BBU",)),
    ("O-DU", "NetworkElement", ()),
    ("O-CU", "NetworkElement", ()),
    ("CPRI", "Interface", ("eCPRI",)),
    ("AISG", "Interface", ()),
    ("S1", "Interface", ("S1-U", "S1-MME", "S1-C")),
    ("X2", "Interface", ("X2-C", "X2-U")),
    ("Xn", "Interface", ("Xn-C", "Xn-U")),
    ("NG", "Interface", ("NG-C", "NG-U")),
    ("F1", "Interface", ("F1-C", "F1-U")),
    ("E1", "Interface", ()),
    ("Uu", "Interface", ()),
    ("N2", "Interface", ()),
    ("N3", "Interface", ()),
    # transport protocols of the interfaces
    ("SCTP", "Concept", ()),
    ("GTP-U", "Concept", ()),
    # radio events of the standard, not alarms though named like one
    ("Radio Link Failure", "Concept", ("RLF",)),
    ("Beam Failure", "Concept", ()),
)
# the application protocols of the RAN interfaces: S1AP, X2AP, XnAP, NGAP, F1AP, E1AP
APPLICATION_PROTOCOL_RE = re.compile(r"\b(S1|X2|Xn|NG|F1|E1)AP\b")
# the elements each standard interface links (3GPP architecture: TS 36.401, TS 38.401, TS 23.501)
INTERFACE_ENDPOINTS: dict[str, frozenset[str]] = {
    "S1": frozenset({"eNodeB", "MME", "SGW"}),
    "X2": frozenset({"eNodeB", "gNodeB"}),
    "Xn": frozenset({"gNodeB"}),
    "NG": frozenset({"gNodeB", "AMF", "UPF"}),
    "F1": frozenset({"gNB-CU", "gNB-DU"}),
    "E1": frozenset({"gNB-CU"}),
    "Uu": frozenset({"UE", "eNodeB", "gNodeB"}),
    "N2": frozenset({"gNodeB", "AMF"}),
    "N3": frozenset({"gNodeB", "UPF"}),
}
# the split RAN node's parts (TS 38.401, O-RAN architecture)
NODE_PARTS = {"gNB-CU": "gNodeB", "gNB-DU": "gNodeB", "O-CU": "gNodeB", "O-DU": "gNodeB"}
# units every base station is built from (either technology)
UNIT_PARTS = ("Radio Unit", "Baseband Unit")
# the transport protocol of the interfaces' control planes (SCTP) and user planes (GTP-U)
PROTOCOL_INTERFACES = {
    "SCTP": frozenset({"S1", "X2", "NG", "Xn", "F1", "E1", "N2"}),
    "GTP-U": frozenset({"S1", "X2", "NG", "Xn", "F1", "N3"}),
}
# the radio technology of the elements and interfaces above that belong to one
ELEMENT_TECHNOLOGY = {
    **dict.fromkeys(("eNodeB", "MME", "SGW", "PGW", "HSS", "S1", "X2"), "LTE"),
    **dict.fromkeys(
        (
            "gNodeB",
            "gNB-CU",
            "gNB-DU",
            "AMF",
            "SMF",
            "UPF",
            "UDM",
            "Xn",
            "NG",
            "F1",
            "E1",
            "N2",
            "N3",
        ),
        "NR",
    ),
}
# fmt: off
_STOP = {"the", "a", "an", "of", "in", "on", "at", "to", "for", "and", "or", "with", "by",
         "from", "is", "are", "be", "too", "not", "no", "low", "high", "wrong", "check",
         "increase", "decrease", "reduce", "raise", "adjust", "set", "enable", "disable",
         "replace", "verify", "review", "measure", "run", "restore", "apply", "cell", "cells",
         "per"}


class Known:
    """Names the graph already knows (name, type), looked up by surface."""

    def __init__(self, entries: Sequence[tuple[str, str, Sequence[str]]] = ()) -> None:
        self.gaz = Gazetteer()
        self.entities: list[tuple[str, str]] = []
        self._entries = list(entries)
        self._typed: dict[str, Known] = {}
        for name, type_, aliases in entries:
            self.gaz.add(len(self.entities), [name, *aliases])
            self.entities.append((name, type_))

    def extended(self, entries: Sequence[tuple[str, str, Sequence[str]]]) -> Known:
        """These names plus more (name, type, aliases); the first spelling of a name wins."""
        return Known([*self._entries, *entries]) if entries else self

    def preferring(self, entries: Sequence[tuple[str, str, Sequence[str]]]) -> Known:
        """These names first (their spelling and type win), then the known ones."""
        return Known([*entries, *self._entries])

    def of_type(self, type_: str) -> Known:
        if type_ not in self._typed:
            self._typed[type_] = Known([(n, t, a) for n, t, a in self._entries if t == type_])
        return self._typed[type_]

    def find(self, text: str) -> list[tuple[XEntity, int, int]]:
        """(entity, start, end) of every known name in the text."""
        return [
            (
                XEntity(self.entities[m.entity_id][0], self.entities[m.entity_id][1]),
                m.start,
                m.start + len(m.surface),
            )
            for m in self.gaz.find(text)
        ]


def strip_md(text: str) -> str:
    return re.sub(r"[*_`]", "", text).strip()


# known names that yield to a longer phrase around them ('SCTP' in 'SCTP Link Availability')
_DEFERRED = ("NetworkElement", "Interface", "Concept")


def spot(text: str, known: Known) -> list[XEntity]:
    """Typed mentions in a span: known names, counters, camelCase parameters, KPI and alarm
    phrases, measurement quantities (specifications apart, see `specs.spec_mentions`)."""
    plain = strip_md(text)
    found: list[tuple[int, XEntity]] = []
    taken: list[tuple[int, int]] = []

    def add(entity: XEntity, start: int, end: int) -> None:
        if any(a < end and start < b for a, b in taken):
            return
        taken.append((start, end))
        found.append((start, entity))

    hits = [h for h in known.find(plain) if h[0].type != "Specification"]
    for entity, start, end in hits:  # elements and interfaces after the named phrases
        if entity.type not in _DEFERRED:
            add(entity, start, end)
    elements = [(a, b) for e, a, b in hits if e.type in ("NetworkElement", "Interface")]
    for cand in find_candidates(plain):
        start, end = cand.start, cand.start + len(cand.surface)
        # 'gNB-CU', 'eCPRI' look like identifiers but are the standard's elements
        if cand.type in ("Counter", "Parameter") and not any(
            a < end and start < b for a, b in elements
        ):
            add(XEntity(cand.name, cand.type), start, end)
    for m in _ALARM_RE.finditer(plain):
        name = m.group(1)
        if plain[m.end(1) :].lstrip().startswith("Alarm"):  # 'High Temperature Alarm'
            name = f"{name} Alarm"
        first = name.split()[0]
        if first in ("A", "An", "The", "No", "Any", "Each", "Every"):
            name = " ".join(name.split()[1:])
        if name:
            add(XEntity(name, "Alarm"), m.start(), m.end())
    for m in _FAULT_NAME_RE.finditer(plain):
        words = m.group(1).split()
        while words and words[0] in ("A", "An", "The", "No", "Any", "Each", "Every", "If"):
            words = words[1:]
        start = m.end(1) - len(" ".join(words))
        # 'Path Loss', 'Return Loss': a measured quantity in dB, not a fault; a name the
        # graph already types ('Radio Link Failure') keeps its type
        typed = any(a <= start and m.end(1) <= b for _, a, b in hits)
        if len(words) >= 2 and words[-2] not in _QUANTITY_LOSSES and not typed:
            add(XEntity(" ".join(words), "Alarm"), start, m.end(1))
    for m in KPI_RE.finditer(plain):
        words = m.group(1).split()
        while words and words[0] in _KPI_LEAD_WORDS:
            words = words[1:]
        if len(words) >= 2:
            add(XEntity(" ".join(words), "KPI"), m.end(1) - len(" ".join(words)), m.end(1))
    # 'Uplink RSSI', 'DL SINR': a link direction before a measurement quantity is its name's
    for m in re.finditer(r"\b(?:(Uplink|Downlink|UL|DL)\s+)?([A-Z][A-Z-]{2,7})\b", plain):
        if m.group(2) in _BUILTIN_KPIS:
            add(XEntity(" ".join(m.group(1, 2)) if m.group(1) else m.group(2), "KPI"), *m.span())
    for entity, start, end in hits:
        if entity.type in _DEFERRED:
            add(entity, start, end)
    found.sort(key=lambda item: item[0])
    return list(dict.fromkeys(e for _, e in found))


def content(name: str) -> set[str]:
    return {variant_key(w) for w in normalize_name(name).split() if w not in _STOP and len(w) > 2}


def name_words(name: str) -> set[str]:
    """Content words of a name, identifiers split at their capitals: 'pmRrcConnEstabFailLicense'
    gives 'license' among others."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return content(spaced)


def mentions(text: str, names: Sequence[str]) -> list[str]:
    """Which of the names occur in the text (case-insensitive, plural-tolerant)."""
    key = " " + " ".join(variant_key(w) for w in normalize_name(strip_md(text)).split()) + " "
    return [n for n in names if f" {variant_key(n)} " in key]


def overlap(text: str, names: Sequence[str]) -> list[str]:
    """The one name closest to the text by content words (Jaccard), none on a tie."""
    words = content(text)
    scored = []
    for n in names:
        cw = content(n)
        if cw and words & cw:
            scored.append((len(words & cw) / len(words | cw), n))
    if not scored:
        return []
    scored.sort(reverse=True)
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        return []
    return [scored[0][1]]


def covered(text: str, names: Sequence[str]) -> list[str]:
    """Names most of whose content words occur in the text (plural-tolerant)."""
    words = content(text)
    out = []
    for n in names:
        cw = content(n)
        if len(cw) >= 2 and len(cw & words) / len(cw) >= 0.6:
            out.append(n)
    return out


def shared(text: str, names: Sequence[str]) -> list[str]:
    """Names that share a distinctive content word with the text: a word found in few of
    the names (so 'fans and filters' meets 'fan unit wear' and 'blocked air filter', but a
    word every cause has links nothing)."""
    return shared_words(content(text), names)


# words that say how something fails, not what: they tie no symptom to a cause
_STATUS_WORDS = {
    variant_key(w)
    for w in (
        "failure",
        "fault",
        "faulty",
        "error",
        "loss",
        "lost",
        "down",
        "rate",
        "level",
        "count",
        "cnt",
        "att",
        "succ",
        "fail",
        "missing",
        "mismatch",
        "detected",
        "exceeded",
        "degraded",
        "abnormal",
        "excessive",
        "insufficient",
        "poor",
        "bad",
        "link",
        "power",
        "success",
        "ratio",
        "time",
        "delay",
        "drop",
        "setup",
        "total",
        "max",
        "min",
        "avg",
        "mean",
        "distr",
        "value",
        "number",
        "module",
        "unit",
    )
}


def shared_words(words: set[str], names: Sequence[str]) -> list[str]:
    words = words - _STATUS_WORDS
    df: dict[str, int] = {}
    for n in names:
        for w in content(n):
            df[w] = df.get(w, 0) + 1
    limit = max(1, len(names) // 3)
    return [n for n in names if any(df[w] <= limit for w in content(n) & words)]


def with_builtins(known: Known) -> Known:
    """The known names plus the 3GPP elements and interfaces, typed as the standard types
    them even where an earlier document's pattern typed the name otherwise ('gNB-CU' is an
    element, not a parameter)."""
    return known.preferring(BUILTIN_ELEMENTS)


IDENT_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{1,40}")


def parameters(text: str, known: Known) -> list[XEntity]:
    """Parameters named in a short text (an action's name): camelCase identifiers and known
    parameters, even inside a longer known name."""
    found = [
        XEntity(c.name, "Parameter")
        for c in find_candidates(strip_md(text))
        if c.type == "Parameter"
    ]
    found += [e for e, _, _ in known.of_type("Parameter").find(strip_md(text))]
    resolved = []
    for e in found:
        hits = known.find(e.name)
        resolved.append(hits[0][0] if hits and hits[0][0].type == "Parameter" else e)
    return list(dict.fromkeys(resolved))
