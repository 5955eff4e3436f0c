"""Structure-aware relation extraction: typed triples from how a document is laid out.

Deterministic rules over a document's chunks (each with its heading path):
- runbook sections, recognised by their headings: symptoms/alarms, likely causes, checks,
  actions, verification. Items of a causes, checks or actions list name a RootCause, Check or
  Action (a bold lead, or the clause before a colon). A check reads the counters, parameters,
  KPIs and alarms it names; a check or action that names a cause checks or resolves it; an
  action adjusts the parameters it names; verification sentences that echo an action verify it
  with the KPIs and counters they name; a symptom that names a cause indicates it; every cause
  degrades the document's main KPI.
- "KPI = pmA / pmB" formulas: the KPI is measured by the counters.
- tables whose headers name an entity type (alarm, cause, action, check, parameter, counter,
  KPI, specification): one relation per row between the typed cells.
- spec references: "X (... TS 36.331)", "X, defined in TS 38.321" and References lists
  ("TS 36.321: MAC random access procedure") give defined_in.
- definition lists, abbreviation tables and "Long Form (ABBR)" give entities with aliases and
  descriptions.

Each triple carries the chunk it comes from, the evidence span, the rule and a confidence (the
rule's measured precision on the bundled runbooks, rounded down; see bench/extraction.py); a
triple several rules state gets the noisy-or of their confidences (its rule names them
all, surest first: `check_reads+cause_names_what_check_reads`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.linking import Gazetteer, find_candidates
from telesynth_tui.graph.resolution import variant_key
from telesynth_tui.text import normalize_name

EXTRACTOR = "structure"

# rule -> confidence
CONFIDENCE = {
    "kpi_formula": 0.95,
    "kpi_counter_paren": 0.85,
    "table_row": 0.9,
    "check_reads": 0.85,
    "action_adjusts_name": 0.95,
    "action_adjusts_text": 0.85,
    "check_names_cause": 0.9,
    "action_names_cause": 0.95,
    "check_overlaps_cause": 0.85,
    "action_overlaps_cause": 0.85,
    "symptom_names_cause": 0.7,
    "symptom_overlaps_cause": 0.7,
    "cause_names_symptom": 0.9,
    "cause_degrades_formula_kpi": 0.9,
    "cause_degrades_title_kpi": 0.6,
    "cause_degrades_symptom_kpi": 0.5,
    "verification_echoes_action": 0.35,
    "verification_after_action": 0.6,
    "check_sentence_indicates": 0.35,
    "check_cue_names_cause": 0.55,
    "cause_names_kpi": 0.4,
    "symptom_name_shares_cause": 0.5,
    "interface_clause_connects": 0.5,
    "counter_spells_kpi": 0.85,
    "cause_names_what_check_reads": 0.5,
    "cause_names_what_action_adjusts": 0.8,
    "alarm_clause_element": 0.85,
    "alarm_main_element": 0.45,
    "spec_reference_counters": 0.35,
    "spec_reference_kpis": 0.9,
    "action_names_measure": 0.75,
    "verification_formula_kpi": 0.55,
    "spec_inline": 0.85,
    "spec_reference_list": 0.5,
    "spec_reference_list_parameter": 0.75,
    "spec_reference_parameters": 0.9,
    "spec_reference_structures": 0.7,
}

# an item named by its first clause (no bold lead) is less surely a named check or action
CLAUSE_FACTOR = 0.8

_ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("references", ("reference", "specification", "standard", "see also", "bibliograph")),
    ("definitions", ("abbreviation", "acronym", "definition", "glossary", "terminology")),
    ("verification", ("verif", "validat", "acceptance", "after the fix", "after the change")),
    ("causes", ("cause",)),
    ("checks", ("check", "diagnos", "investigat", "troubleshooting step", "analysis", "isolat")),
    (
        "actions",
        (
            "action",
            "fix",
            "remed",
            "resolution",
            "corrective",
            "recommend",
            "solution",
            "mitigat",
            "tuning",
            "optimi",
        ),
    ),
    (
        "symptoms",
        (
            "symptom",
            "alarm",
            "indication",
            "signature",
            "what you see",
            "observ",
            "detection",
            "trigger",
        ),
    ),
    ("procedure", ("procedure", "steps", "workflow", "how to")),
)
# in a procedure, a step is a check or an action by its first verb
# fmt: off
_CHECK_VERBS = {"check", "read", "measure", "compare", "inspect", "review", "verify", "list",
                "confirm", "trace", "monitor", "query", "test", "run", "analyse", "analyze"}
_ACTION_VERBS = {"increase", "decrease", "raise", "lower", "reduce", "set", "enable", "disable",
                 "replace", "realign", "restore", "adjust", "change", "correct", "align",
                 "reset", "restart", "reroute", "rebalance", "add", "remove", "replan", "tighten",
                 "reseal", "repair", "upgrade", "expand", "activate", "deactivate", "swap",
                 "apply", "move", "retune", "tilt", "configure", "update", "install", "clean"}
# fmt: on

_ITEM_RE = re.compile(r"^\s{0,3}(?:[-*+]|\(?\d{1,2}[.)])\s+(.*)$")
_BOLD_LEAD_RE = re.compile(r"^\*\*(.+?)\*\*\s*[.:,]?\s*")
_STEP_PREFIX_RE = re.compile(r"^(?:step\s+\d+\s*[:.-]\s*)", re.IGNORECASE)
_CLAUSE_END_RE = re.compile(r":\s|\s[—–]\s|\s-\s|\.(?:\s|$)")
_SPEC_RE = re.compile(
    r"\b(?:3GPP\s+)?(?P<kind>TS|TR)\s?(?P<num>\d{2}\.\d{3})(?:-(?P<part>\d))?\b"
    r"|\b(?P<other>(?:ITU-[RT]|IEC|IEEE|O-RAN\.?[A-Z]*)\s?[A-Z]?[\d.]+(?:-\d+)?)"
)
_KPI_RE = re.compile(
    r"\b((?:(?:[A-Z][A-Za-z0-9/-]*|of|over|to|per)\s+){0,5}"
    r"(?:Success Rate|Drop Rate|Failure Rate|Rate|Ratio|Throughput|Availability|Utili[sz]ation|"
    r"Latency|Level))\b"
)
_ALARM_RE = re.compile(r"\b((?:[A-Z][A-Za-z0-9/-]*\s+){0,4}[A-Z][A-Za-z0-9/-]*)\s+[Aa]larms?\b")
_FORMULA_RE = re.compile(r"^\s*(?P<kpi>[A-Z][\w /()-]{2,60}?)\s*=\s*(?P<rhs>.*\bpm[A-Z]\w+.*)$")
_DEFINED_IN_RE = re.compile(r"\b(?:defined|specified|described)\s+in\s*$", re.IGNORECASE)
# measurement quantities every RAN document uses: generic domain vocabulary, typed as KPIs
_BUILTIN_KPIS = {"RSRP", "RSRQ", "SINR", "CQI", "BLER", "RSSI", "SS-RSRP", "SS-RSRQ", "SS-SINR"}
# 3GPP network elements and reference points: the domain vocabulary every RAN document uses,
# typed like the measurement quantities above (name, aliases)
_BUILTIN_ELEMENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
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
    ("O-RU", "NetworkElement", ()),
    ("O-DU", "NetworkElement", ()),
    ("O-CU", "NetworkElement", ()),
    ("S1", "Interface", ("S1-U", "S1-MME", "S1-C")),
    ("X2", "Interface", ("X2-C", "X2-U")),
    ("Xn", "Interface", ("Xn-C", "Xn-U")),
    ("NG", "Interface", ("NG-C", "NG-U")),
    ("F1", "Interface", ("F1-C", "F1-U")),
    ("E1", "Interface", ()),
    ("Uu", "Interface", ()),
    ("N2", "Interface", ()),
    ("N3", "Interface", ()),
)
# fmt: off
_STOP = {"the", "a", "an", "of", "in", "on", "at", "to", "for", "and", "or", "with", "by",
         "from", "is", "are", "be", "too", "not", "no", "low", "high", "wrong", "check",
         "increase", "decrease", "reduce", "raise", "adjust", "set", "enable", "disable",
         "replace", "verify", "review", "measure", "run", "restore", "apply", "cell", "cells",
         "per"}
# fmt: on
_NAMEABLE_ROLES = {"causes": "RootCause", "checks": "Check", "actions": "Action"}
_HEADER_TYPES: tuple[tuple[str, str], ...] = (
    ("root cause", "RootCause"),
    ("cause", "RootCause"),
    ("alarm", "Alarm"),
    ("action", "Action"),
    ("remedy", "Action"),
    ("fix", "Action"),
    ("check", "Check"),
    ("parameter", "Parameter"),
    ("counter", "Counter"),
    ("kpi", "KPI"),
    ("specification", "Specification"),
    ("spec", "Specification"),
    ("standard", "Specification"),
)
_ABBREV_HEADERS = ("abbreviation", "acronym", "term", "short")


@dataclass(frozen=True)
class XEntity:
    name: str
    type: str
    aliases: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class XTriple:
    subject: XEntity
    predicate: str
    object: XEntity
    chunk: int
    evidence: str
    rule: str
    confidence: float


@dataclass
class Extraction:
    triples: list[XTriple] = field(default_factory=list)
    entities: list[tuple[XEntity, int]] = field(default_factory=list)  # (entity, chunk index)


@dataclass
class _Item:
    chunk: int
    role: str | None
    kind: str  # item | row | sentence
    text: str
    name: str | None = None
    cells: dict[str, str] = field(default_factory=dict)
    bold: bool = False  # named by a bold lead (not by its first clause)


_Emit = Callable[[XEntity, str, XEntity, _Item, str], None]


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


def section_role(heading: str) -> str | None:
    """The runbook role of a section from its heading path (deepest heading first)."""
    for part in reversed(heading.split(" > ")):
        low = part.lower()
        for role, words in _ROLES:
            if any(w in low for w in words):
                return role
    return None


def _strip_md(text: str) -> str:
    return re.sub(r"[*_`]", "", text).strip()


def _item_name(text: str, role: str | None) -> str | None:
    """A bold lead, or a short leading clause, names the item."""
    bold = _BOLD_LEAD_RE.match(text)
    if bold:
        name = _strip_md(bold.group(1)).rstrip(".:;, ")
    else:
        if role not in _NAMEABLE_ROLES:
            return None
        plain = _STEP_PREFIX_RE.sub("", _strip_md(text))
        end = _CLAUSE_END_RE.search(plain)
        name = plain[: end.start()] if end else plain
        name = name.strip().rstrip(".:;,")
    words = name.split()
    if not 1 <= len(words) <= 9 or len(name) > 80:
        return None
    return name


def _parse_chunk(index: int, chunk: Chunk) -> list[_Item]:
    role = section_role(chunk.heading)
    items: list[_Item] = []
    current: list[str] | None = None
    header: list[str] | None = None
    paragraph: list[str] = []

    def flush_item() -> None:
        nonlocal current
        if current:
            text = " ".join(s.strip() for s in current)
            item_role = role
            if role == "procedure":
                first = _strip_md(text).split(maxsplit=1)[0].lower() if text.strip() else ""
                item_role = (
                    "checks"
                    if first in _CHECK_VERBS
                    else "actions"
                    if first in _ACTION_VERBS
                    else None
                )
            name = _item_name(text, item_role)
            items.append(
                _Item(index, item_role, "item", text, name, bold=bool(_BOLD_LEAD_RE.match(text)))
            )
            # '**Increase t310** and **Increase n310** when ...', 'For X, **Increase Y** ...':
            # every bold phrase that opens with a check or action verb names one more item
            if item_role in ("checks", "actions"):
                verbs = _CHECK_VERBS if item_role == "checks" else _ACTION_VERBS
                for m in re.finditer(r"\*\*(.+?)\*\*", text):
                    phrase = _strip_md(m.group(1)).rstrip(".:;, ")
                    words = phrase.split()
                    if words and words[0].lower() in verbs and len(words) <= 9 and phrase != name:
                        items.append(_Item(index, item_role, "item", text, phrase, bold=True))
        current = None

    def flush_paragraph() -> None:
        if paragraph:
            text = " ".join(paragraph)
            for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text):
                if sentence.strip():
                    items.append(_Item(index, role, "sentence", sentence.strip()))
            paragraph.clear()

    for line in chunk.text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            flush_item()
            flush_paragraph()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if header is None:
                header = [_strip_md(c).lower() for c in cells]
            elif all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                continue
            elif len(cells) == len(header):
                items.append(
                    _Item(
                        index,
                        role,
                        "row",
                        " | ".join(cells),
                        None,
                        dict(zip(header, cells, strict=True)),
                    )
                )
            continue
        header = None
        match = _ITEM_RE.match(line)
        if match:
            flush_item()
            flush_paragraph()
            current = [match.group(1)]
        elif not stripped:
            flush_item()
            flush_paragraph()
        elif current is not None:
            current.append(stripped)
        else:
            paragraph.append(stripped)
    flush_item()
    flush_paragraph()
    return items


def _specs(text: str) -> list[tuple[XEntity, int, int]]:
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


def spot(text: str, known: Known) -> list[XEntity]:
    """Typed mentions in a span: known names, counters, camelCase parameters, KPI and alarm
    phrases, measurement quantities (specifications apart, see `_specs`)."""
    plain = _strip_md(text)
    found: list[tuple[int, XEntity]] = []
    taken: list[tuple[int, int]] = []

    def add(entity: XEntity, start: int, end: int) -> None:
        if any(a < end and start < b for a, b in taken):
            return
        taken.append((start, end))
        found.append((start, entity))

    hits = [h for h in known.find(plain) if h[0].type != "Specification"]
    for entity, start, end in hits:  # elements and interfaces after the named phrases
        if entity.type not in ("NetworkElement", "Interface"):
            add(entity, start, end)
    for cand in find_candidates(plain):
        if cand.type in ("Counter", "Parameter"):
            add(XEntity(cand.name, cand.type), cand.start, cand.start + len(cand.surface))
    for m in _ALARM_RE.finditer(plain):
        name = m.group(1)
        if plain[m.end(1) :].lstrip().startswith("Alarm"):  # 'High Temperature Alarm'
            name = f"{name} Alarm"
        first = name.split()[0]
        if first in ("A", "An", "The", "No", "Any", "Each", "Every"):
            name = " ".join(name.split()[1:])
        if name:
            add(XEntity(name, "Alarm"), m.start(), m.end())
    for m in _KPI_RE.finditer(plain):
        words = m.group(1).split()
        while words and words[0] in ("of", "over", "to", "per", "The", "A", "An", "High", "Low"):
            words = words[1:]
        if len(words) >= 2:
            add(XEntity(" ".join(words), "KPI"), m.start(1), m.end(1))
    for m in re.finditer(r"\b[A-Z][A-Z-]{2,7}\b", plain):
        if m.group() in _BUILTIN_KPIS:
            add(XEntity(m.group(), "KPI"), m.start(), m.end())
    for entity, start, end in hits:
        if entity.type in ("NetworkElement", "Interface"):
            add(entity, start, end)
    found.sort(key=lambda item: item[0])
    return list(dict.fromkeys(e for _, e in found))


def _content(name: str) -> set[str]:
    return {variant_key(w) for w in normalize_name(name).split() if w not in _STOP and len(w) > 2}


def _name_words(name: str) -> set[str]:
    """Content words of a name, identifiers split at their capitals: 'pmRrcConnEstabFailLicense'
    gives 'license' among others."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return _content(spaced)


def _mentions(text: str, names: Sequence[str]) -> list[str]:
    """Which of the names occur in the text (case-insensitive, plural-tolerant)."""
    key = " " + " ".join(variant_key(w) for w in normalize_name(_strip_md(text)).split()) + " "
    return [n for n in names if f" {variant_key(n)} " in key]


def _overlap(text: str, names: Sequence[str]) -> list[str]:
    """The one name closest to the text by content words (Jaccard), none on a tie."""
    words = _content(text)
    scored = []
    for n in names:
        cw = _content(n)
        if cw and words & cw:
            scored.append((len(words & cw) / len(words | cw), n))
    if not scored:
        return []
    scored.sort(reverse=True)
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        return []
    return [scored[0][1]]


def _covered(text: str, names: Sequence[str]) -> list[str]:
    """Names most of whose content words occur in the text (plural-tolerant)."""
    words = _content(text)
    out = []
    for n in names:
        cw = _content(n)
        if len(cw) >= 2 and len(cw & words) / len(cw) >= 0.6:
            out.append(n)
    return out


# cue words of a sentence that ties an observation to a cause, or an action to its check
_CUE_INDICATES_RE = re.compile(
    r"\b(?:confirm|indicat|point|suggest|reveal|show|mean|sign|typical|character|betray|"
    r"rule[sd]? out|distinguish|separat|due to|caused by|because of)\w*",
    re.IGNORECASE,
)
_CUE_VERIFY_RE = re.compile(
    r"\b(?:watch|monitor|follow|stop when|until|verify|check that|confirm|track|compare|"
    r"should|expect|falls?|drops?|recover|improv)\w*",
    re.IGNORECASE,
)


_CUE_DEGRADES_RE = re.compile(
    r"\b(?:lower|reduc|degrad|drop|fall|hurt|worsen|limit|cost|collaps|rais|increas|inflat|"
    r"caus|lead|make|push|poor|bad|weak|low|high|loss|lose|los)\w*",
    re.IGNORECASE,
)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+", text) if s.strip()]


def _shared(text: str, names: Sequence[str]) -> list[str]:
    """Names that share a distinctive content word with the text: a word found in few of
    the names (so 'fans and filters' meets 'fan unit wear' and 'blocked air filter', but a
    word every cause has links nothing)."""
    return _shared_words(_content(text), names)


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


def _shared_words(words: set[str], names: Sequence[str]) -> list[str]:
    words = words - _STATUS_WORDS
    df: dict[str, int] = {}
    for n in names:
        for w in _content(n):
            df[w] = df.get(w, 0) + 1
    limit = max(1, len(names) // 3)
    return [n for n in names if any(df[w] <= limit for w in _content(n) & words)]


def _ev(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:399] + "…"


def extract(chunks: Sequence[Chunk], title: str = "", known: Known | None = None) -> Extraction:
    """Triples and entities of one document (chunks in order)."""
    known = known or Known()
    items = [item for i, chunk in enumerate(chunks) for item in _parse_chunk(i, chunk)]
    known = _with_table_names(items, _with_builtins(known))
    _unname_commentary(items, chunks)
    out = Extraction()
    best: dict[tuple[str, str, str], XTriple] = {}  # one triple per fact: its surest rule
    support: dict[tuple[str, str, str], dict[str, float]] = {}  # every rule that stated it

    def emit(s: XEntity, p: str, o: XEntity, item: _Item, rule: str) -> None:
        key = (normalize_name(s.name), p, normalize_name(o.name))
        if key[0] == key[2] or not key[0] or not key[2]:
            return
        confidence = CONFIDENCE[rule]
        if item.kind == "item" and item.name and not item.bold and item.role in _NAMEABLE_ROLES:
            rule, confidence = f"{rule}_clause", round(confidence * CLAUSE_FACTOR, 3)
        support.setdefault(key, {})[rule] = confidence
        if key not in best or best[key].confidence < confidence:
            best[key] = XTriple(s, p, o, item.chunk, _ev(item.text), rule, confidence)

    # --- named items: causes, checks, actions --------------------------------------------
    named: dict[str, list[_Item]] = {"causes": [], "checks": [], "actions": []}
    for item in items:
        if item.kind == "item" and item.role in named and item.name:
            named[item.role].append(item)
    causes = {i.name: XEntity(i.name, "RootCause") for i in named["causes"] if i.name}
    checks = {i.name: XEntity(i.name, "Check") for i in named["checks"] if i.name}
    actions = {i.name: XEntity(i.name, "Action") for i in named["actions"] if i.name}
    for table_item in items:
        if table_item.kind == "row":
            for header, cell in table_item.cells.items():
                type_ = _header_type(header)
                if type_ == "RootCause" and _short(cell):
                    causes.setdefault(_strip_md(cell), XEntity(_strip_md(cell), "RootCause"))
    cause_names = list(causes)
    named_params = {e for name in actions for e in _parameters(name, known)}

    # --- the main KPI and KPI formulas ---------------------------------------------------
    main_kpi: XEntity | None = None
    main_from = "formula"
    for item in items:
        if item.kind == "row":
            continue
        for kpi, counters in _kpi_formulas(_strip_md(item.text), known):
            if item.kind == "sentence":
                main_kpi = main_kpi or kpi
            for counter in counters:
                emit(kpi, "measured_by", XEntity(counter, "Counter"), item, "kpi_formula")
        for kpi, counter_entity in _kpi_counter_parens(_strip_md(item.text), known):
            emit(kpi, "measured_by", counter_entity, item, "kpi_counter_paren")
    if main_kpi is None:
        kpis = [e for e in spot(title, known) if e.type == "KPI"]
        main_kpi, main_from = (kpis[0] if kpis else None), "title"
    if main_kpi is None:
        main_from = "symptom"
        for item in items:
            if item.role == "symptoms" and item.kind != "row":
                kpis = [e for e in spot(item.text, known) if e.type == "KPI"]
                if kpis:
                    main_kpi = kpis[0]
                    break

    # --- per item rules ------------------------------------------------------------------
    for item in items:
        if item.kind == "row":
            _table_row(item, emit, known)
            continue
        text = item.text
        if item.role == "checks":
            check = checks.get(item.name or "")
            if check:
                for e in spot(text, known):
                    if e.type in ("KPI", "Counter", "Parameter", "Alarm"):
                        emit(check, "reads", e, item, "check_reads")
                named_causes = _mentions(text, cause_names)
                for c in named_causes:
                    emit(causes[c], "checked_by", check, item, "check_names_cause")
                measures = [e for e in spot(text, known) if e.type in ("Counter", "Alarm")]
                for sentence in _sentences(_strip_md(text)):
                    cue = _CUE_INDICATES_RE.search(sentence)
                    if not cue:
                        continue
                    after = sentence[cue.start() :]  # 'a drop ... suggests jamming'
                    cued = _mentions(after, cause_names) or _shared(after, cause_names)
                    for c in cued:
                        emit(causes[c], "checked_by", check, item, "check_cue_names_cause")
                        for e in measures:
                            emit(e, "indicates", causes[c], item, "check_sentence_indicates")
                if not named_causes:
                    for c in _shared(item.name or "", cause_names):
                        emit(causes[c], "checked_by", check, item, "check_overlaps_cause")
        elif item.role == "actions":
            action = actions.get(item.name or "")
            if action:
                in_name = _parameters(action.name, known)
                for e in in_name:
                    emit(action, "adjusts", e, item, "action_adjusts_name")
                if not in_name:
                    for e in spot(text, known):
                        # a parameter another action is named after is that action's
                        if e.type == "Parameter" and e not in named_params:
                            emit(action, "adjusts", e, item, "action_adjusts_text")
                named_causes = _mentions(text, cause_names)
                for c in named_causes:
                    emit(causes[c], "resolved_by", action, item, "action_names_cause")
                if not named_causes:
                    for c in _overlap(item.name or "", cause_names):
                        emit(causes[c], "resolved_by", action, item, "action_overlaps_cause")
                rest = text[len(item.name or "") :] if item.bold else text
                for sentence in _sentences(_strip_md(rest)):
                    if _CUE_VERIFY_RE.search(sentence):
                        for e in spot(sentence, known):
                            if e.type in ("KPI", "Counter"):
                                emit(action, "verified_by", e, item, "action_names_measure")
        elif item.role == "symptoms":
            subjects = [e for e in spot(text, known) if e.type in ("KPI", "Counter", "Alarm")]
            named_causes = _mentions(text, cause_names)
            for c in named_causes:
                for s in subjects:
                    emit(s, "indicates", causes[c], item, "symptom_names_cause")
            if subjects and not named_causes:
                for c in _covered(text, cause_names):
                    emit(subjects[0], "indicates", causes[c], item, "symptom_overlaps_cause")
            for s in subjects:
                for c in _shared_words(_name_words(s.name), cause_names):
                    emit(s, "indicates", causes[c], item, "symptom_name_shares_cause")
        elif item.role == "causes" and item.name in causes:
            cause = causes[item.name]
            rest = text[len(item.name) :] if text.startswith(item.name) else text
            for s in spot(rest, known):
                if s.type in ("Counter", "Alarm"):
                    emit(s, "indicates", cause, item, "cause_names_symptom")
            for sentence in _sentences(_strip_md(rest)):
                if _CUE_DEGRADES_RE.search(sentence):
                    for s in spot(sentence, known):
                        if s.type == "KPI":
                            emit(cause, "degrades", s, item, "cause_names_kpi")
            if main_kpi is not None:
                emit(cause, "degrades", main_kpi, item, f"cause_degrades_{main_from}_kpi")
        elif item.role == "verification":
            measures = [e for e in spot(text, known) if e.type in ("KPI", "Counter")]
            echoed = _overlap(text, list(actions)) if measures else []
            for a in echoed:
                for m in measures:
                    emit(actions[a], "verified_by", m, item, "verification_echoes_action")
            # 'After a tilt or qRxLevMin change, follow RSRP': the actions named by what they
            # adjust, or by a distinctive word, are verified by the measures of that sentence
            for sentence in _sentences(_strip_md(text)):
                lead = re.match(
                    r"^(?:after|following|once|when|for)\b(.+?)(?:,|\b(?:also\s+)?"
                    r"(?:watch|follow|verify|check|confirm|monitor|compare|track)\b)",
                    sentence,
                    re.I,
                )
                if not lead:
                    continue
                said = [e for e in spot(sentence, known) if e.type in ("KPI", "Counter")]
                about = lead.group(1)
                params = {
                    normalize_name(e.name) for e in spot(about, known) if e.type == "Parameter"
                }
                by_param = [
                    a
                    for a in actions
                    if {normalize_name(x.name) for x in _parameters(a, known)} & params
                ]
                for a in dict.fromkeys([*by_param, *_shared(about, list(actions))]):
                    for m in said:
                        if normalize_name(m.name) not in normalize_name(about):
                            emit(actions[a], "verified_by", m, item, "verification_after_action")
            # only a KPI the document defines by formula is surely what every action is for
            if (
                main_kpi is not None
                and main_from == "formula"
                and not echoed
                and (main_kpi in measures)
            ):
                for each in actions.values():  # "watch <main KPI> ...": every action
                    emit(each, "verified_by", main_kpi, item, f"verification_{main_from}_kpi")
        if item.role != "references":
            _element_clauses(item, emit, known)
        if item.role == "references" and item.kind == "item":
            _reference_item(item, emit, known, items)
        elif item.role != "references":
            _inline_specs(item, emit, known)
    _linked_through_names(items, causes, best, emit, known)
    _counters_named_after_kpis(items, emit, known)
    _alarms_of_main_element(items, emit, known)
    # a fact two rules state independently is surer than either (noisy-or, at most 0.95;
    # measured precision of such triples on the bundled runbooks: 0.91)
    for key, rules in support.items():
        if len(rules) >= 2:
            miss = 1.0
            for conf in rules.values():
                miss *= 1.0 - conf
            t = best[key]
            names = "+".join(sorted(rules, key=lambda r: (-rules[r], r)))  # surest first
            best[key] = XTriple(
                t.subject,
                t.predicate,
                t.object,
                t.chunk,
                t.evidence,
                names,
                round(min(0.95, max(1.0 - miss, t.confidence)), 3),
            )
    out.triples = list(best.values())
    _definitions(items, out, known)
    return out


def _with_builtins(known: Known) -> Known:
    """The known names plus the 3GPP elements and interfaces the graph does not name yet."""
    return known.extended([(n, t, a) for n, t, a in _BUILTIN_ELEMENTS if not known.find(n)])


def _unname_commentary(items: list[_Item], chunks: Sequence[Chunk]) -> None:
    """In a section whose items are named by bold leads, an item without one is commentary
    ('Read the cell's SIB1 values ...'), not one more named check or action."""
    bold_sections = {
        (chunks[i.chunk].heading, i.role) for i in items if i.kind == "item" and i.bold
    }
    for item in items:
        commentary = item.kind == "item" and not item.bold and item.role in _NAMEABLE_ROLES
        if commentary and (chunks[item.chunk].heading, item.role) in bold_sections:
            item.name = None


_LOCAL_TYPES = ("Parameter", "Counter", "KPI", "Alarm")


def _with_table_names(items: list[_Item], known: Known) -> Known:
    """The known names plus what the document's typed tables name: a cell under a
    'Parameter', 'Counter', 'KPI' or 'Alarm' header names one (so 't300' or 'N310' in a
    parameter table is a parameter wherever the document mentions it)."""
    local: list[tuple[str, str, Sequence[str]]] = []
    for item in items:
        if item.kind != "row" or item.role in ("definitions", "references"):
            continue
        for header, cell in item.cells.items():
            type_ = _header_type(header)
            if type_ not in _LOCAL_TYPES:
                continue
            name = _strip_md(re.sub(r"\s*\(.*?\)\s*", " ", cell)).strip()
            named = _short(name) or (
                type_ in ("Parameter", "Counter") and _IDENT_RE.fullmatch(name) is not None
            )
            if named and not known.find(name):
                local.append((name, type_, ()))
    return known.extended(local)


_IDENT_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{1,40}")


def _linked_through_names(
    items: list[_Item],
    causes: dict[str, XEntity],
    best: dict[tuple[str, str, str], XTriple],
    emit: _Emit,
    known: Known,
) -> None:
    """A cause whose description names a counter or parameter is checked by the checks that
    read it and resolved by the actions that adjust it ('qRxLevMin is set very low' under
    Poor coverage; 'Raise qRxLevMin' adjusts qRxLevMin)."""
    named: dict[str, tuple[_Item, set[str]]] = {}
    for item in items:
        if item.kind == "item" and item.role == "causes" and item.name in causes:
            rest = item.text[len(item.name) :] if item.text.startswith(item.name) else item.text
            keys = {
                normalize_name(e.name)
                for e in spot(rest, known)
                if e.type in ("Counter", "Parameter")
            }
            named[item.name] = (item, keys)
    reads: dict[str, tuple[XEntity, set[str]]] = {}
    adjusts: dict[str, tuple[XEntity, set[str]]] = {}
    for (s, p, o), t in list(best.items()):
        if p == "reads" and t.object.type in ("Counter", "Parameter"):
            reads.setdefault(s, (t.subject, set()))[1].add(o)
        elif p == "adjusts":
            adjusts.setdefault(s, (t.subject, set()))[1].add(o)
    for cause_name, (item, keys) in named.items():
        for check, objects in reads.values():
            if keys & objects:
                emit(causes[cause_name], "checked_by", check, item, "cause_names_what_check_reads")
        for action, objects in adjusts.values():
            if keys & objects:
                emit(
                    causes[cause_name],
                    "resolved_by",
                    action,
                    item,
                    "cause_names_what_action_adjusts",
                )


def _counters_named_after_kpis(items: list[_Item], emit: _Emit, known: Known) -> None:
    """A counter whose identifier spells a KPI of the document measures it: pmBoardTemperature
    for Board Temperature, pmCqiDistr for CQI, pmSinrPuschDistr for SINR."""
    kpis: dict[XEntity, set[str]] = {}
    counters: dict[XEntity, tuple[_Item, set[str]]] = {}
    for item in items:
        for e in spot(item.text, known):
            if e.type == "KPI":
                words = _content(e.name)
                if words:
                    kpis.setdefault(e, words)
            elif e.type == "Counter" and e not in counters:
                words = _name_words(re.sub(r"^pm(?=[A-Z])", "", e.name))
                counters[e] = (item, words)
    for counter, (item, words) in counters.items():
        for kpi, kpi_words in kpis.items():
            if kpi_words <= words:
                emit(kpi, "measured_by", counter, item, "counter_spells_kpi")


_CUE_CONNECTS_RE = re.compile(
    r"\b(?:over|between|via|towards?|interface|link|connect)\w*", re.IGNORECASE
)
_CUE_RAISED_RE = re.compile(
    r"\b(?:raised?|raises|reported|reports|issued|issues|sent|sends|"
    r"on the|from the|of the)\b",
    re.IGNORECASE,
)


def _element_clauses(item: _Item, emit: _Emit, known: Known) -> None:
    """'the MME asks the eNodeB, over the S1 interface, ...': an interface connects the
    elements a clause names with it; 'X alarm raised by the gNodeB': the element raises it."""
    text = _strip_md(item.text) if item.kind != "row" else ""
    for sentence in _sentences(text):
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


def _alarms_of_main_element(items: list[_Item], emit: _Emit, known: Known) -> None:
    """A document about one kind of element (most of its element mentions): its alarms are
    raised by that element."""
    counts: dict[XEntity, int] = {}
    alarms: dict[XEntity, _Item] = {}
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


def _parameters(text: str, known: Known) -> list[XEntity]:
    """Parameters named in a short text (an action's name): camelCase identifiers and known
    parameters, even inside a longer known name."""
    found = [
        XEntity(c.name, "Parameter")
        for c in find_candidates(_strip_md(text))
        if c.type == "Parameter"
    ]
    found += [e for e, _, _ in known.of_type("Parameter").find(_strip_md(text))]
    resolved = []
    for e in found:
        hits = known.find(e.name)
        resolved.append(hits[0][0] if hits and hits[0][0].type == "Parameter" else e)
    return list(dict.fromkeys(resolved))


_LHS_WORD_RE = re.compile(r"^(?:[A-Z0-9][\w/-]*|of|over|to|per|on|in|the)$")


def _kpi_name_before(text: str, known: Known) -> XEntity | None:
    """The KPI named just before a position: 'Handover Success Rate (HOSR)' ... '='."""
    text = re.sub(r"\s*\([A-Za-z -]{1,20}\)\s*$", "", text.rstrip())
    words = text.split()
    name: list[str] = []
    for word in reversed(words):
        if not _LHS_WORD_RE.match(word) or word.endswith((":", ",", ";")):
            break
        name.insert(0, word)
    while name and name[0].lower() in ("of", "over", "to", "per", "on", "in", "the", "a", "an"):
        name = name[1:]
    if not name or len(name) > 7:
        return None
    phrase = " ".join(name)
    hits = [e for e, _, _ in known.find(phrase) if e.type == "KPI"]
    if hits:
        return hits[-1]
    if len(name) >= 2 and _KPI_RE.fullmatch(phrase):
        return XEntity(phrase, "KPI")
    return None


def _kpi_formulas(text: str, known: Known) -> list[tuple[XEntity, list[str]]]:
    """'KPI = pmA / pmB' anywhere in a sentence (several per sentence)."""
    out = []
    parts = text.split("=")
    for i in range(len(parts) - 1):
        rhs = re.split(r";|\band\s+(?=[A-Z])|=", parts[i + 1])[0]
        counters = list(dict.fromkeys(re.findall(r"\bpm[A-Z]\w+", rhs)))
        if not counters:
            continue
        kpi = _kpi_name_before(parts[i], known)
        if kpi is not None:
            out.append((kpi, counters))
    return out


_PAREN_COUNTER_RE = re.compile(r"\((pm[A-Z]\w+)\)")
# 'The CQI distribution (pmCqiDistr)': the measure's name before a noun for its statistics
_MEASURE_NOUN_RE = re.compile(
    r"\s+(?:distribution|histogram|statistics|samples|bins|average|counter|count)$", re.I
)


def _kpi_counter_parens(text: str, known: Known) -> list[tuple[XEntity, XEntity]]:
    """'Average rank (pmRankDistr)': the KPI measured by the counter in parentheses."""
    out = []
    for m in _PAREN_COUNTER_RE.finditer(text):
        before = _MEASURE_NOUN_RE.sub("", text[: m.start()].rstrip())
        hits = [(e, end) for e, _, end in known.find(before) if e.type == "KPI"]
        if hits and hits[-1][1] == len(before):
            out.append((hits[-1][0], XEntity(m.group(1), "Counter")))
            continue
        kpi = _kpi_name_before(before, known)
        if kpi is not None:
            out.append((kpi, XEntity(m.group(1), "Counter")))
    return out


def _short(cell: str) -> bool:
    """A cell that names something: a few words, starting with a capital, not a sentence."""
    plain = _strip_md(cell)
    return (
        1 <= len(plain.split()) <= 7
        and not plain.endswith(".")
        and plain[:1].isupper()
        and ";" not in plain
    )


def _header_type(header: str) -> str | None:
    for word, type_ in _HEADER_TYPES:
        if word in header:
            return type_
    return None


def _cell_entities(cell: str, type_: str, known: Known) -> list[XEntity]:
    plain = _strip_md(cell)
    if type_ in ("Counter", "Parameter"):
        hits = [e for e in spot(plain, known) if e.type == type_]
        return hits[:1] if type_ == "Parameter" else hits
    if type_ == "Specification":
        return [e for e, _, _ in _specs(plain)]
    if not _short(cell):
        return []
    hits = [e for e, _, _ in known.find(plain) if e.type == type_]
    return hits[:1] or [XEntity(plain, type_)]


_ROW_RULES: tuple[tuple[str, str, str], ...] = (
    ("Alarm", "indicates", "RootCause"),
    ("Counter", "indicates", "RootCause"),
    ("KPI", "indicates", "RootCause"),
    ("RootCause", "resolved_by", "Action"),
    ("Alarm", "resolved_by", "Action"),
    ("RootCause", "checked_by", "Check"),
    ("KPI", "measured_by", "Counter"),
    ("Check", "reads", "Counter"),
    ("Check", "reads", "KPI"),
    ("Check", "reads", "Parameter"),
    ("Action", "adjusts", "Parameter"),
    ("Parameter", "defined_in", "Specification"),
    ("Counter", "defined_in", "Specification"),
    ("KPI", "defined_in", "Specification"),
)


def _table_row(item: _Item, emit: _Emit, known: Known) -> None:
    typed: dict[str, list[XEntity]] = {}
    for header, cell in item.cells.items():
        type_ = _header_type(header)
        if type_ and type_ not in typed:
            typed[type_] = _cell_entities(cell, type_, known)
    for s_type, predicate, o_type in _ROW_RULES:
        for s in typed.get(s_type, []):
            for o in typed.get(o_type, []):
                emit(s, predicate, o, item, "table_row")
    # "param (alias in TS 36.331)" in a parameter cell
    for header, cell in item.cells.items():
        if _header_type(header) == "Parameter":
            params = typed.get("Parameter", [])
            for spec, _, _ in _specs(cell):
                for p in params:
                    emit(p, "defined_in", spec, item, "spec_inline")


def _inline_specs(item: _Item, emit: _Emit, known: Known) -> None:
    """'X (TS 38.331)', 'X (... in TS 36.331)', 'X, defined in TS 38.321'."""
    text = _strip_md(item.text)
    for spec, start, _ in _specs(text):
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


def _reference_item(item: _Item, emit: _Emit, known: Known, items: list[_Item]) -> None:
    """'TS 36.321: MAC random access procedure ...' in a References list."""
    text = _strip_md(item.text)
    specs = _specs(text)
    if not specs or specs[0][1] > 3:
        return
    spec, _, end = specs[0]
    description = text[end:].lstrip(" :-—–,")
    for e in spot(description, known):
        if e.type == "Parameter":
            emit(e, "defined_in", spec, item, "spec_reference_list_parameter")
        elif e.type in ("Procedure", "Concept", "Interface", "NetworkElement", "Formula"):
            emit(e, "defined_in", spec, item, "spec_reference_list")
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
                for kpi, counters in _kpi_formulas(_strip_md(other.text), known)
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
    elif _IE_NAME_RE.search(description):
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
            if e.type == "Parameter" and normalize_name(e.name) not in named_elsewhere
        ]
        for p in dict.fromkeys(params):
            emit(p, "defined_in", spec, item, "spec_reference_structures")


# an ASN.1 structure name: 'RACH-ConfigCommon', 'RadioLinkMonitoringConfig', 'MeasConfig'
_IE_NAME_RE = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:-?(?:Config|Info|List|Setup|Parameters)\w*)\b")


_DEF_ITEM_RE = re.compile(r"^\*\*(?P<term>[^*]{1,60})\*\*\s*[:—–-]\s*(?P<desc>.+)$")
_DEF_PLAIN_RE = re.compile(r"^(?P<term>[A-Za-z][\w /-]{0,40}?)\s*[:—–]\s+(?P<desc>.+)$")


def _definitions(items: list[_Item], out: Extraction, known: Known) -> None:
    """Entities with descriptions from definition lists, abbreviation tables and 'X (ABBR)'."""
    for item in items:
        if item.kind == "row" and item.role == "definitions":
            cells = list(item.cells.items())
            if len(cells) >= 2 and any(w in cells[0][0] for w in _ABBREV_HEADERS):
                short, long_ = _strip_md(cells[0][1]), _strip_md(cells[1][1])
                if short and long_:
                    desc = _strip_md(cells[2][1]) if len(cells) > 2 else ""
                    out.entities.append((XEntity(long_, "Concept", (short,), desc), item.chunk))
            continue
        if item.role == "definitions" and item.kind == "item":
            m = _DEF_ITEM_RE.match(item.text) or _DEF_PLAIN_RE.match(_strip_md(item.text))
            if m:
                term, desc = _strip_md(m.group("term")), _strip_md(m.group("desc"))
                long_form = term
                aliases: tuple[str, ...] = ()
                expansion = re.match(r"^([A-Z][\w -]{3,80}?)[.;,]", desc)
                if term.isupper() and expansion and _initials(expansion.group(1), term):
                    long_form, aliases = expansion.group(1), (term,)
                out.entities.append((XEntity(long_form, "Concept", aliases, desc), item.chunk))
        for cand in find_candidates(_strip_md(item.text)):
            if cand.type == "Concept" and cand.aliases:
                hits = known.find(cand.name)
                type_ = hits[0][0].type if hits else "Concept"
                out.entities.append((XEntity(cand.name, type_, cand.aliases), item.chunk))


def _initials(long_form: str, abbrev: str) -> bool:
    letters = "".join(w[0] for w in long_form.split() if w[0].isalpha()).lower()
    return letters.startswith(abbrev.lower()[:2])
