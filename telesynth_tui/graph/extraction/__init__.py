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
  ("TS 36.321: MAC random access procedure") give defined_in; a References line also defines
  the procedures it names by their head noun ("S1AP, including the S1 Setup procedure") and
  the document's own multi-word procedures it mentions in lower case.
- definition lists, abbreviation tables and "Long Form (ABBR)" give entities with aliases and
  descriptions.
- network elements and interfaces of the standard: connects between an interface and its
  endpoints, raised_by, part_of for a split node's parts and the interfaces' transport protocols.
- sentence cues: affects, uses, triggers, part_of and is_a between typed mentions on either side
  of a cue phrase.

Each triple carries the chunk it comes from, the evidence span, the rule and a confidence (the
rule's measured precision on the bundled runbooks, the lower of the runs without and with the
entity files, rounded down to 0.05; see bench/extraction.py); a
triple several rules state gets the noisy-or of their confidences (its rule names them
all, surest first: `check_reads+cause_names_what_check_reads`).

Modules, one concept each: `layout` (sections, items, sentences), `names` (typed mentions and
name matching), `runbook` (the rules of runbook sections), `tables`, `measures` (KPI formulas
and counters), `specs` (spec references), `elements` (network elements and interfaces),
`definitions` (definition lists and abbreviations), `cues` (sentence cue rules and procedure
names), `model` (the extracted records and rule confidences), `structure` (the extractor that
runs them all).
"""

from __future__ import annotations

from telesynth_tui.graph.extraction.layout import section_role
from telesynth_tui.graph.extraction.model import (
    CLAUSE_FACTOR,
    CONFIDENCE,
    EXTRACTOR,
    Extraction,
    XEntity,
    XTriple,
)
from telesynth_tui.graph.extraction.names import Known, spot
from telesynth_tui.graph.extraction.structure import extract

__all__ = [
    "CLAUSE_FACTOR",
    "CONFIDENCE",
    "EXTRACTOR",
    "Extraction",
    "Known",
    "XEntity",
    "XTriple",
    "extract",
    "section_role",
    "spot",
]
