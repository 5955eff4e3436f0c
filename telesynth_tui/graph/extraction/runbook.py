"""Runbook sections (symptoms/alarms, likely causes, checks, actions, verification): items name
root causes, checks and actions, and the section's role says how they relate to what they
name."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from telesynth_tui.graph.extraction.layout import sentences
from telesynth_tui.graph.extraction.measures import kpi_counter_parens, kpi_formulas
from telesynth_tui.graph.extraction.model import Emit, Item, XEntity, XTriple
from telesynth_tui.graph.extraction.names import (
    Known,
    content,
    covered,
    mentions,
    name_words,
    overlap,
    parameters,
    shared,
    shared_words,
    spot,
    strip_md,
)
from telesynth_tui.graph.extraction.tables import header_type, short
from telesynth_tui.graph.linking import find_candidates
from telesynth_tui.text import normalize_name

# cue words of a sentence that ties an observation to a cause, or an action to its check
CUE_INDICATES_RE = re.compile(
    r"\b(?:confirm|indicat|point|suggest|reveal|show|mean|sign|typical|character|betray|"
    r"rule[sd]? out|distinguish|separat|due to|caused by|because of)\w*",
    re.IGNORECASE,
)
CUE_VERIFY_RE = re.compile(
    r"\b(?:watch|monitor|follow|stop when|until|verify|check that|confirm|track|compare|"
    r"should|expect|falls?|drops?|recover|improv)\w*",
    re.IGNORECASE,
)


CUE_DEGRADES_RE = re.compile(
    r"\b(?:lower|reduc|degrad|drop|fall|hurt|worsen|limit|cost|collaps|rais|increas|inflat|"
    r"caus|lead|make|push|poor|bad|weak|low|high|loss|lose|los)\w*",
    re.IGNORECASE,
)


def linked_through_names(
    items: list[Item],
    causes: dict[str, XEntity],
    best: dict[tuple[str, str, str], XTriple],
    emit: Emit,
    known: Known,
) -> None:
    """A cause whose description names a counter or parameter is checked by the checks that
    read it and resolved by the actions that adjust it ('qRxLevMin is set very low' under
    Poor coverage; 'Raise qRxLevMin' adjusts qRxLevMin)."""
    named: dict[str, tuple[Item, set[str]]] = {}
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


@dataclass
class Runbook:
    """What a runbook's rules share: its named causes, checks and actions, and its main KPI
    (from a formula, else the title, else a symptom)."""

    causes: dict[str, XEntity]
    checks: dict[str, XEntity]
    actions: dict[str, XEntity]
    named_params: set[XEntity]
    main_kpi: XEntity | None
    main_from: str
    abbreviations: dict[str, str] = field(default_factory=dict)  # 'PIM' -> its long form

    def spelled_out(self, text: str) -> str:
        """The text with each abbreviation the document defines followed by its long form
        ('Check PIM signature' -> 'Check PIM passive intermodulation signature')."""
        for abbrev, long_form in self.abbreviations.items():
            text = re.sub(rf"(?<![\w-]){re.escape(abbrev)}(?![\w-])", f"{abbrev} {long_form}", text)
        return text


def read_runbook(items: list[Item], title: str, emit: Emit, known: Known) -> Runbook:
    """The runbook's named items and main KPI; KPI formulas give measured_by on the way."""
    # --- named items: causes, checks, actions --------------------------------------------
    named: dict[str, list[Item]] = {"causes": [], "checks": [], "actions": []}
    for item in items:
        if item.kind == "item" and item.role in named and item.name:
            named[item.role].append(item)
    causes = {i.name: XEntity(i.name, "RootCause") for i in named["causes"] if i.name}
    checks = {i.name: XEntity(i.name, "Check") for i in named["checks"] if i.name}
    actions = {i.name: XEntity(i.name, "Action") for i in named["actions"] if i.name}
    for table_item in items:
        if table_item.kind == "row":
            for header, cell in table_item.cells.items():
                type_ = header_type(header)
                if type_ == "RootCause" and short(cell):
                    causes.setdefault(strip_md(cell), XEntity(strip_md(cell), "RootCause"))
    named_params = {e for name in actions for e in parameters(name, known)}

    # --- the main KPI and KPI formulas ---------------------------------------------------
    main_kpi: XEntity | None = None
    main_from = "formula"
    for item in items:
        if item.kind == "row":
            continue
        for kpi, counters in kpi_formulas(strip_md(item.text), known):
            if item.kind == "sentence":
                main_kpi = main_kpi or kpi
            for counter in counters:
                emit(kpi, "measured_by", XEntity(counter, "Counter"), item, "kpi_formula")
        for kpi, counter_entity in kpi_counter_parens(strip_md(item.text), known):
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
    # 'Passive intermodulation (PIM)': the abbreviations the document defines
    abbreviations = {
        cand.aliases[0]: cand.name
        for item in items
        for cand in find_candidates(strip_md(item.text))
        if cand.type == "Concept" and cand.aliases
    }
    return Runbook(causes, checks, actions, named_params, main_kpi, main_from, abbreviations)


def runbook_item(item: Item, rb: Runbook, emit: Emit, known: Known) -> None:
    """The rules of a runbook section's item or sentence, by the section's role."""
    causes, checks, actions = rb.causes, rb.checks, rb.actions
    cause_names = list(causes)
    named_params, main_kpi, main_from = rb.named_params, rb.main_kpi, rb.main_from
    text = item.text
    if item.role == "checks":
        check = checks.get(item.name or "")
        if check:
            for e in spot(text, known):
                if e.type in ("KPI", "Counter", "Parameter", "Alarm"):
                    emit(check, "reads", e, item, "check_reads")
            named_causes = mentions(text, cause_names)
            for c in named_causes:
                emit(causes[c], "checked_by", check, item, "check_names_cause")
            seen: list[XEntity] = []  # the measures named so far
            for sentence in sentences(strip_md(text)):
                cue = CUE_INDICATES_RE.search(sentence)
                head = sentence[: cue.start()] if cue else sentence
                measures = [e for e in spot(head, known) if e.type in ("Counter", "Alarm")]
                seen.extend(measures)
                if not cue:
                    continue
                after = sentence[cue.start() :]  # 'a drop ... suggests jamming'
                cued = mentions(after, cause_names) or shared(rb.spelled_out(after), cause_names)
                # what the cue speaks of: the measures of its sentence, else those named before
                # that it calls by a word of their name ('repeated aborts' for
                # pmSctpAssocAbort), else the last one named
                words = content(head)
                called = [e for e in seen if name_words(e.name) & words]
                for c in cued:
                    emit(causes[c], "checked_by", check, item, "check_cue_names_cause")
                    for e in measures or called or seen[-1:]:
                        emit(e, "indicates", causes[c], item, "check_sentence_indicates")
            if not named_causes:
                for c in shared(rb.spelled_out(item.name or ""), cause_names):
                    emit(causes[c], "checked_by", check, item, "check_overlaps_cause")
    elif item.role == "actions":
        action = actions.get(item.name or "")
        if action:
            in_name = parameters(action.name, known)
            for e in in_name:
                emit(action, "adjusts", e, item, "action_adjusts_name")
            if not in_name:
                for e in spot(text, known):
                    # a parameter another action is named after is that action's
                    if e.type == "Parameter" and e not in named_params:
                        emit(action, "adjusts", e, item, "action_adjusts_text")
            named_causes = mentions(text, cause_names)
            for c in named_causes:
                emit(causes[c], "resolved_by", action, item, "action_names_cause")
            if not named_causes:
                for c in overlap(rb.spelled_out(item.name or ""), cause_names):
                    emit(causes[c], "resolved_by", action, item, "action_overlaps_cause")
            rest = text[len(item.name or "") :] if item.bold else text
            for sentence in sentences(strip_md(rest)):
                if CUE_VERIFY_RE.search(sentence):
                    for e in spot(sentence, known):
                        if e.type in ("KPI", "Counter"):
                            emit(action, "verified_by", e, item, "action_names_measure")
    elif item.role == "symptoms":
        subjects = [e for e in spot(text, known) if e.type in ("KPI", "Counter", "Alarm")]
        named_causes = mentions(text, cause_names)
        for c in named_causes:
            for s in subjects:
                emit(s, "indicates", causes[c], item, "symptom_names_cause")
        if subjects and not named_causes:
            for c in covered(text, cause_names):
                emit(subjects[0], "indicates", causes[c], item, "symptom_overlaps_cause")
        for s in subjects:
            for c in shared_words(name_words(s.name), cause_names):
                emit(s, "indicates", causes[c], item, "symptom_name_shares_cause")
        # 'pmRaFailMsg3 high: ..., pointing at the uplink'; 'A value that follows rain points at
        # water or a loose connector': what the cue points at, from the measure before it
        named: list[XEntity] = []
        for sentence in sentences(strip_md(text)):
            cue = CUE_INDICATES_RE.search(sentence)
            before = [
                e
                for e in spot(sentence[: cue.start()] if cue else sentence, known)
                if e.type in ("KPI", "Counter", "Alarm")
            ]
            named.extend(before)
            if not cue or not named:
                continue
            after = sentence[cue.end() :]
            pointed = (
                mentions(after, cause_names)
                or covered(after, cause_names)
                or shared(rb.spelled_out(after), cause_names)
            )
            for c in pointed:
                emit(named[-1], "indicates", causes[c], item, "symptom_cue_points_at_cause")
    elif item.role == "causes" and item.name in causes:
        cause = causes[item.name]
        rest = text[len(item.name) :] if text.startswith(item.name) else text
        for s in spot(rest, known):
            if s.type in ("Counter", "Alarm"):
                emit(s, "indicates", cause, item, "cause_names_symptom")
        for sentence in sentences(strip_md(rest)):
            if CUE_DEGRADES_RE.search(sentence):
                for s in spot(sentence, known):
                    if s.type == "KPI":
                        emit(cause, "degrades", s, item, "cause_names_kpi")
        if main_kpi is not None:
            emit(cause, "degrades", main_kpi, item, f"cause_degrades_{main_from}_kpi")
    elif item.role == "verification":
        measures = [e for e in spot(text, known) if e.type in ("KPI", "Counter")]
        echoed = overlap(text, list(actions)) if measures else []
        for a in echoed:
            for m in measures:
                emit(actions[a], "verified_by", m, item, "verification_echoes_action")
        # 'After a tilt or qRxLevMin change, follow RSRP': the actions named by what they
        # adjust, or by a distinctive word, are verified by the measures of that sentence
        for sentence in sentences(strip_md(text)):
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
            params = {normalize_name(e.name) for e in spot(about, known) if e.type == "Parameter"}
            by_param = [
                a
                for a in actions
                if {normalize_name(x.name) for x in parameters(a, known)} & params
            ]
            for a in dict.fromkeys([*by_param, *shared(about, list(actions))]):
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


def verified_through_causes(
    items: list[Item],
    best: dict[tuple[str, str, str], XTriple],
    emit: Emit,
    known: Known,
) -> None:
    """A measure the verification names is what verifies the actions whose cause it points
    at: the cause's indicator, or what a check of that cause reads ('Replace fan unit'
    resolves Fan unit wear, which pmFanSpeed indicates; the verification watches pmFanSpeed)."""
    fixes: dict[str, list[XEntity]] = {}  # cause -> actions
    for (c, p, _a), t in best.items():
        if p == "resolved_by":
            fixes.setdefault(c, []).append(t.object)
    points: dict[str, set[str]] = {}  # measure -> causes
    for (subject, p, o), t in best.items():
        if p == "indicates" and t.confidence >= 0.65:
            points.setdefault(subject, set()).add(o)
    for item in items:
        if item.role != "verification":
            continue
        for m in spot(item.text, known):
            if m.type not in ("KPI", "Counter"):
                continue
            key = normalize_name(m.name)
            for c in points.get(key, set()):
                for a in fixes.get(c, []):
                    emit(a, "verified_by", m, item, "verification_measure_indicates_cause")


def checked_through_indicators(
    best: dict[tuple[str, str, str], XTriple],
    items: list[Item],
    emit: Emit,
) -> None:
    """A check that reads what indicates a cause checks that cause ('Check board
    temperature' reads pmBoardTemperature, which the cause's description says climbs)."""
    causes_of: dict[str, list[tuple[XEntity, XTriple]]] = {}
    for (subject, p, _o), t in best.items():
        if p == "indicates" and t.confidence >= 0.55:
            causes_of.setdefault(subject, []).append((t.object, t))
    check_items = {item.name: item for item in items if item.role == "checks" and item.name}
    # a check whose text names the cause it confirms is about that cause only
    says_its_cause = {
        k
        for (_c, p, k), t in best.items()
        if p == "checked_by" and t.rule.startswith(("check_names_cause", "check_cue_names_cause"))
    }
    for (k, p, m), t in list(best.items()):
        item = check_items.get(t.subject.name)
        if p != "reads" or item is None or k in says_its_cause:
            continue
        for cause, _ in causes_of.get(m, []):
            emit(cause, "checked_by", t.subject, item, "check_reads_cause_indicator")
