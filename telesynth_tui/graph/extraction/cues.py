"""Sentence cues: relations a sentence states in words, between typed mentions on either side
of a cue phrase, restricted by the schema's subject and object types.

- affects: a parameter before an effect verb, a KPI or procedure after it ('a3Offset delays
  the handover', 'a longer t310 raises the drop rate'); a parameter table's effect column
  ('| t304 | ... | Longer time for the random access in the target |').
- uses: a procedure before a usage cue, the interfaces, channels, parameters and procedures
  after it ('the Random Access Procedure sends msg3 on PUSCH', 'X2 Setup runs over SCTP').
- triggers: 'X triggers / starts / initiates Y' where Y is a procedure.
- part_of: 'X is part of Y', 'Y consists of X and Z'.
- is_a: 'X is a type (kind, form) of Y'.
Procedures are recognised by their head noun ('... Procedure', '... Setup', '... Recovery',
'Handover'); the other mentions are those `names.spot` finds.
"""

from __future__ import annotations

import re

from telesynth_tui.graph.extraction.layout import sentences
from telesynth_tui.graph.extraction.model import Emit, Item, XEntity
from telesynth_tui.graph.extraction.names import (
    APPLICATION_PROTOCOL_RE,
    BUILTIN_ELEMENTS,
    Known,
    spot,
    strip_md,
)

# head nouns of procedure names (a capitalised phrase ending in one names a procedure; 'eNB'
# and other names with an inner capital count as capitalised)
_PROCEDURE_HEADS = (
    "Procedure|Setup|Establishment|Re-establishment|Reestablishment|Recovery|Reporting|"
    "Monitoring|Selection|Reselection|Resolution|Registration|Paging|Handover|Attach|"
    "Release|Activation|Deactivation|Admission Control|Power Control|Link Adaptation|Scheduling|"
    "Update|Modification|Addition|Discovery"
)
_PROCEDURE_RE = re.compile(
    r"\b((?:(?:[A-Z]|[a-z]+[A-Z])[A-Za-z0-9/-]*\s+){0,4}(?:" + _PROCEDURE_HEADS + r"))\b"
    r"(?!\s+[A-Z][a-z])"
)
# words that open a sentence or qualify a name without being part of it
# fmt: off
_LEAD_WORDS = {"The", "A", "An", "Each", "Every", "Any", "After", "Before", "During", "When",
               "Watch", "Follow", "Compare", "Check", "Verify", "Monitor", "Track", "If", "In",
               "On", "For", "Once", "LTE", "NR", "5G", "4G", "Its", "This", "That", "Then"}
_FUNCTION_WORDS = {"and", "or", "of", "in", "on", "for", "with", "by", "to", "from", "over", "via",
                   "the", "a", "an", "its", "their", "after", "before", "during", "then",
                   "is", "are", "was", "be", "when", "if", "as", "at", "into", "per", "each"}
# fmt: on
# a hyphenated qualifier of the standard ('NG-RAN', 'E-UTRAN', 'gNB-DU') and a lower-case word
_QUALIFIER_RE = re.compile(
    r"(?<![\w-])((?:[A-Z]|[a-z]+[A-Z])[A-Za-z0-9]*-[A-Za-z0-9-]+) ([a-z]+) $"
)


def procedures(text: str) -> list[tuple[XEntity, int, int]]:
    """Procedure names in a text: capitalised phrases ending in a procedure's head noun."""
    out = []
    for m in _PROCEDURE_RE.finditer(text):
        words = m.group(1).split()
        start = m.start(1)
        while words and words[0] in _LEAD_WORDS:
            start = text.index(words[1], start + len(words[0])) if len(words) > 1 else m.end(1)
            words = words[1:]
        # 'the NG-RAN node Configuration Update procedure': a lower-case word between a
        # hyphenated qualifier and the capitalised words belongs to the name
        qualified = _QUALIFIER_RE.search(text[:start])
        if words and qualified and qualified.group(2) not in _FUNCTION_WORDS:
            start = qualified.start(1)
            words = [qualified.group(1), qualified.group(2), *words]
        if words:
            out.append((XEntity(" ".join(words), "Procedure"), start, m.end(1)))
    return out


def typed_mentions(sentence: str, known: Known) -> list[tuple[XEntity, int, int]]:
    """Typed mentions of a sentence with where they are (procedures not inside another name)."""
    found: list[tuple[XEntity, int, int]] = []
    low = sentence.lower()
    for e in spot(sentence, known):
        at = low.find(e.name.lower())
        if at == -1:
            continue
        found.append((e, at, at + len(e.name)))
    for e, start, end in procedures(sentence):
        # a procedure name holds the shorter names inside it ('S1' in 'S1 Setup') and
        # yields to a longer name around it ('RRC Setup' in 'RRC Setup Success Rate')
        if not any(a <= start and end <= b and b - a > end - start for _, a, b in found):
            found = [f for f in found if not (start <= f[1] and f[2] <= end)]
            found.append((e, start, end))
    found.sort(key=lambda f: f[1])
    return found


_CUE_AFFECTS_RE = re.compile(
    r"\b(?:affect|influenc|impact|control|govern|determin|delay|shorten|lengthen|speed|"
    r"decide|shape|bias|postpone|advance|hasten|trigger earlier|trigger later)\w*",
    re.IGNORECASE,
)
_CUE_USES_RE = re.compile(
    r"\b(?:uses?|using|runs? (?:over|on)|carried (?:over|on)|over the|via|relies on|"
    r"sends?\b[^,;]*?\bon|on the|inside|within|with)\b",
    re.IGNORECASE,
)
_CUE_TRIGGERS_RE = re.compile(
    r"\b(?:triggers|trigger|starts|initiates|launch(?:es)?|leads? to|"
    r"(?:triggered|started|initiated) by)\b",
    re.IGNORECASE,
)
_TRIGGER_SUBJECTS = ("Parameter", "Alarm", "Procedure", "Concept")
_CUE_PART_OF_RE = re.compile(r"\b(?:(?:is|are) (?:a |the )?parts? of|belongs? to)\b", re.I)
_CUE_CONSISTS_RE = re.compile(r"\b(?:consists? of|comprises?|is made up of|is split into)\b", re.I)
_CUE_IS_A_RE = re.compile(r"\b(?:is|are) an? (?:type|kind|form|variant|special case)s? of\b", re.I)

_AFFECTS_OBJECTS = ("KPI", "Procedure")
_USES_OBJECTS = ("Interface", "Parameter", "Procedure")
_PART_OBJECTS = ("NetworkElement", "Procedure", "Concept", "Interface")


def sentence_cues(item: Item, emit: Emit, known: Known) -> None:
    """The cue rules over each sentence of an item or paragraph (of a References line, only
    the interfaces of the procedures it names)."""
    if item.kind == "row" or item.role == "definitions":
        return
    for sentence in sentences(strip_md(item.text)):
        found = typed_mentions(sentence, known)
        _procedure_interfaces(sentence, found, item, emit)
        if len(found) < 2 or item.role == "references":
            continue
        _affects(sentence, found, item, emit)
        _uses(sentence, found, item, emit)
        _triggers(sentence, found, item, emit)
        _part_of(sentence, found, item, emit)


def _before_after(
    found: list[tuple[XEntity, int, int]], at: int, end: int
) -> tuple[list[XEntity], list[XEntity]]:
    before = [e for e, _, b in found if b <= at]
    after = [e for e, a, _ in found if a >= end]
    return before, after


def _affects(sentence: str, found: list[tuple[XEntity, int, int]], item: Item, emit: Emit) -> None:
    for cue in _CUE_AFFECTS_RE.finditer(sentence):
        before, after = _before_after(found, cue.start(), cue.end())
        subjects = [e for e in before if e.type == "Parameter"][-1:]
        objects = [e for e in after if e.type in _AFFECTS_OBJECTS][:1]
        for s in subjects:
            for o in objects:
                emit(s, "affects", o, item, "cue_affects")


def _uses(sentence: str, found: list[tuple[XEntity, int, int]], item: Item, emit: Emit) -> None:
    cue = _CUE_USES_RE.search(sentence)
    if not cue:
        return
    before, after = _before_after(found, cue.start(), cue.end())
    subjects = [e for e in before if e.type == "Procedure"][:1]
    for s in subjects:
        for o in after:
            if o.type == "Parameter":  # 'Handover ... with a3Offset': the setting tunes it
                emit(o, "affects", s, item, "cue_parameter_of_procedure")
            elif o.type in _USES_OBJECTS:
                emit(s, "uses", o, item, "cue_uses")


def _procedure_interfaces(
    sentence: str, found: list[tuple[XEntity, int, int]], item: Item, emit: Emit
) -> None:
    """'S1 Setup', 'Xn Handover': a procedure named after an interface runs over it; so does a
    procedure named beside the interface's application protocol ('the Initial Context Setup
    procedure of NGAP', 'X2AP, including the eNB Configuration Update procedure')."""
    protocols = {m.group(1).upper() for m in APPLICATION_PROTOCOL_RE.finditer(sentence)}
    for e, _, _ in found:
        if e.type == "Procedure":
            first = e.name.split()[0]
            for name, type_, aliases in BUILTIN_ELEMENTS:
                if type_ != "Interface":
                    continue
                if first in (name, *aliases):
                    emit(e, "uses", XEntity(name, "Interface"), item, "procedure_names_interface")
                elif name.upper() in protocols and len(protocols) == 1:
                    emit(e, "uses", XEntity(name, "Interface"), item, "procedure_of_protocol")


def _triggers(sentence: str, found: list[tuple[XEntity, int, int]], item: Item, emit: Emit) -> None:
    """'X triggers Y', 'Y, triggered by X': the mentions nearest the cue on either side."""
    for cue in _CUE_TRIGGERS_RE.finditer(sentence):
        before, after = _before_after(found, cue.start(), cue.end())
        if not before or not after:
            continue
        cause, started = (
            (after[0], before[-1])
            if cue.group().endswith(" by")
            else (
                before[-1],
                after[0],
            )
        )
        if started.type == "Procedure" and cause.type in _TRIGGER_SUBJECTS:
            emit(cause, "triggers", started, item, "cue_triggers")


def _part_of(sentence: str, found: list[tuple[XEntity, int, int]], item: Item, emit: Emit) -> None:
    for cue in _CUE_PART_OF_RE.finditer(sentence):
        before, after = _before_after(found, cue.start(), cue.end())
        wholes = [e for e in after if e.type in _PART_OBJECTS][:1]
        for s in before[-1:]:
            for o in wholes:
                emit(s, "part_of", o, item, "cue_part_of")
    for cue in _CUE_CONSISTS_RE.finditer(sentence):
        before, after = _before_after(found, cue.start(), cue.end())
        wholes = [e for e in before if e.type in _PART_OBJECTS][-1:]
        for o in wholes:
            for s in after:
                emit(s, "part_of", o, item, "cue_part_of")
    for cue in _CUE_IS_A_RE.finditer(sentence):
        before, after = _before_after(found, cue.start(), cue.end())
        for s in before[-1:]:
            for o in after[:1]:
                emit(s, "is_a", XEntity(o.name, "Concept"), item, "cue_is_a")
