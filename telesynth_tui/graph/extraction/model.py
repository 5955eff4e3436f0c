"""The extracted records (entities, triples, one document's extraction), the parsed item
the rules read, and each rule's confidence (its measured precision on the bundled runbooks,
rounded down; see bench/extraction.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

EXTRACTOR = "structure"

# rule -> confidence
CONFIDENCE = {
    "kpi_formula": 0.95,
    "kpi_counter_paren": 0.95,
    "table_row": 0.9,
    "check_reads": 0.85,
    "action_adjusts_name": 0.95,
    "action_adjusts_text": 0.85,
    "check_names_cause": 0.95,
    "action_names_cause": 0.95,
    "check_overlaps_cause": 0.85,
    "action_overlaps_cause": 0.8,
    "symptom_names_cause": 0.65,
    "symptom_overlaps_cause": 0.7,
    "symptom_cue_points_at_cause": 0.5,
    "cause_names_symptom": 0.95,
    "cause_degrades_formula_kpi": 0.9,
    "cause_degrades_title_kpi": 0.55,
    "cause_degrades_symptom_kpi": 0.5,
    "verification_echoes_action": 0.35,
    "verification_after_action": 0.6,
    "verification_measure_indicates_cause": 0.6,
    "check_sentence_indicates": 0.5,
    "check_cue_names_cause": 0.7,
    "check_reads_cause_indicator": 0.8,
    "cause_names_kpi": 0.25,
    "symptom_name_shares_cause": 0.55,
    "interface_clause_connects": 0.95,
    "counter_spells_kpi": 0.95,
    "cause_names_what_check_reads": 0.8,
    "cause_names_what_action_adjusts": 0.85,
    "alarm_clause_element": 0.9,
    "alarm_main_element": 0.75,
    "spec_reference_counters": 0.35,
    "spec_reference_kpis": 0.95,
    "action_names_measure": 0.6,
    "verification_formula_kpi": 0.5,
    "spec_inline": 0.85,
    "spec_reference_list": 0.55,
    "spec_reference_procedure": 0.85,
    "spec_reference_protocol": 0.85,
    "spec_reference_list_parameter": 0.75,
    "spec_reference_parameters": 0.85,
    "spec_reference_structures": 0.65,
    "interface_names_endpoint": 0.95,
    "element_part_of_node": 0.95,
    "protocol_part_of_interface": 0.85,
    "procedure_names_interface": 0.95,
    "procedure_of_protocol": 0.85,
    "alarm_of_interface": 0.85,
    "counter_shares_kpi": 0.8,
    "cue_affects": 0.5,
    "cue_uses": 0.5,
    "cue_parameter_of_procedure": 0.6,
    "cue_triggers": 0.3,
    "cue_part_of": 0.3,
    "cue_is_a": 0.3,
}

# an item named by its first clause (no bold lead) is less surely a named check or action
CLAUSE_FACTOR = 0.8


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
class Item:
    chunk: int
    role: str | None
    kind: str  # item | row | sentence
    text: str
    name: str | None = None
    cells: dict[str, str] = field(default_factory=dict)
    bold: bool = False  # named by a bold lead (not by its first clause)


Emit = Callable[[XEntity, str, XEntity, Item, str], None]


def ev(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:399] + "…"
