"""The structure-aware extractor: one document's chunks in, typed triples and entities out.

Every rule emits through one function that keeps, per fact, its surest rule and every rule
that stated it; a fact several rules state gets the noisy-or of their confidences.
"""

from __future__ import annotations

from collections.abc import Sequence

from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.extraction.cues import sentence_cues
from telesynth_tui.graph.extraction.definitions import definitions
from telesynth_tui.graph.extraction.elements import (
    alarms_of_main_element,
    element_clauses,
    protocols_of_interfaces,
)
from telesynth_tui.graph.extraction.layout import NAMEABLE_ROLES, parse_chunk, unname_commentary
from telesynth_tui.graph.extraction.measures import counters_named_after_kpis
from telesynth_tui.graph.extraction.model import (
    CLAUSE_FACTOR,
    CONFIDENCE,
    Extraction,
    Item,
    XEntity,
    XTriple,
    ev,
)
from telesynth_tui.graph.extraction.names import Known, with_builtins
from telesynth_tui.graph.extraction.runbook import (
    checked_through_indicators,
    linked_through_names,
    read_runbook,
    runbook_item,
    verified_through_causes,
)
from telesynth_tui.graph.extraction.specs import (
    inline_specs,
    reference_item,
    with_document_procedures,
)
from telesynth_tui.graph.extraction.tables import table_row, with_table_names
from telesynth_tui.text import normalize_name


def extract(chunks: Sequence[Chunk], title: str = "", known: Known | None = None) -> Extraction:
    """Triples and entities of one document (chunks in order)."""
    known = known or Known()
    items = [item for i, chunk in enumerate(chunks) for item in parse_chunk(i, chunk)]
    known = with_table_names(items, with_builtins(known))
    unname_commentary(items, chunks)
    out = Extraction()
    best: dict[tuple[str, str, str], XTriple] = {}  # one triple per fact: its surest rule
    support: dict[tuple[str, str, str], dict[str, float]] = {}  # every rule that stated it

    def emit(s: XEntity, p: str, o: XEntity, item: Item, rule: str) -> None:
        key = (normalize_name(s.name), p, normalize_name(o.name))
        if key[0] == key[2] or not key[0] or not key[2]:
            return
        confidence = CONFIDENCE[rule]
        if item.kind == "item" and item.name and not item.bold and item.role in NAMEABLE_ROLES:
            rule, confidence = f"{rule}_clause", round(confidence * CLAUSE_FACTOR, 3)
        support.setdefault(key, {})[rule] = confidence
        if key not in best or best[key].confidence < confidence:
            best[key] = XTriple(s, p, o, item.chunk, ev(item.text), rule, confidence)

    rb = read_runbook(items, title, emit, known)
    references_known = (
        with_document_procedures(items, known)
        if any(item.role == "references" for item in items)
        else known
    )
    for item in items:
        if item.kind == "row":
            table_row(item, emit, known)
            continue
        runbook_item(item, rb, emit, known)
        sentence_cues(item, emit, known)
        if item.role != "references":
            element_clauses(item, emit, known)
        if item.role == "references" and item.kind == "item":
            reference_item(item, emit, references_known, items)
        elif item.role != "references":
            inline_specs(item, emit, known)
    linked_through_names(items, rb.causes, best, emit, known)
    checked_through_indicators(best, items, emit)
    verified_through_causes(items, best, emit, known)
    counters_named_after_kpis(items, emit, known)
    alarms_of_main_element(items, emit, known)
    protocols_of_interfaces(items, emit, known)
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
    definitions(items, out, known)
    return out
