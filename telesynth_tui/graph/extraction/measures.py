"""Measures: "KPI = pmA / pmB" formulas, "KPI (pmCounter)", counters whose identifier spells a
KPI and counters sharing a distinctive word with a KPI in one sentence give measured_by."""

from __future__ import annotations

import re

from telesynth_tui.graph.extraction.layout import sentences
from telesynth_tui.graph.extraction.model import Emit, Item, XEntity
from telesynth_tui.graph.extraction.names import (
    KPI_RE,
    Known,
    content,
    name_words,
    shared_words,
    spot,
    strip_md,
)

_FORMULA_RE = re.compile(r"^\s*(?P<kpi>[A-Z][\w /()-]{2,60}?)\s*=\s*(?P<rhs>.*\bpm[A-Z]\w+.*)$")


def counters_named_after_kpis(items: list[Item], emit: Emit, known: Known) -> None:
    """A counter whose identifier spells a KPI of the document measures it: pmBoardTemperature
    for Board Temperature, pmCqiDistr for CQI, pmSinrPuschDistr for SINR."""
    kpis: dict[XEntity, set[str]] = {}
    counters: dict[XEntity, tuple[Item, set[str]]] = {}
    for item in items:
        for e in spot(item.text, known):
            if e.type == "KPI":
                words = content(e.name)
                if words:
                    kpis.setdefault(e, words)
            elif e.type == "Counter" and e not in counters:
                words = name_words(re.sub(r"^pm(?=[A-Z])", "", e.name))
                counters[e] = (item, words)
    for counter, (item, words) in counters.items():
        for kpi, kpi_words in kpis.items():
            if kpi_words <= words:
                emit(kpi, "measured_by", counter, item, "counter_spells_kpi")
    # 'Paging Success Rate drops: pmPagingAtt grows but pmPagingSucc does not': in one
    # sentence, a counter whose identifier shares a distinctive word with a KPI
    for item in items:
        if item.role == "references":
            continue
        for sentence in sentences(strip_md(item.text)):
            found = spot(sentence, known)
            named = [e.name for e in found if e.type == "KPI"]
            for counter in (e for e in found if e.type == "Counter"):
                words = name_words(re.sub(r"^pm(?=[A-Z])", "", counter.name))
                for name in shared_words(words, named):
                    emit(XEntity(name, "KPI"), "measured_by", counter, item, "counter_shares_kpi")


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
    if len(name) >= 2 and KPI_RE.fullmatch(phrase):
        return XEntity(phrase, "KPI")
    return None


def kpi_formulas(text: str, known: Known) -> list[tuple[XEntity, list[str]]]:
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


_COUNTER = r"pm[A-Z]\w+"
# '(pmRankDistr)', '(pmRrcReestSucc / pmRrcReestAtt)', '(pmMacHarqDlNack relative to
# pmMacHarqDlAck)': the counters, alone or in the ratio, that give the measure before them
_RATIO_OP = r"\s*(?:/|\+|-|\*|x|relative to|over|divided by|versus|vs\.?)\s*"
_PAREN_COUNTER_RE = re.compile(rf"\(({_COUNTER}(?:{_RATIO_OP}{_COUNTER})*)\)")
# 'SCTP Link Availability, computed from pmSctpAssocUpTime', 'Energy Consumption, from
# pmEnergyConsumed'
_FROM_COUNTER_RE = re.compile(
    rf",?\s+(?:(?:as\s+)?(?:computed|derived|calculated|counted|taken|read)\s+)?from\s+({_COUNTER})"
)
# 'The CQI distribution (pmCqiDistr)': the measure's name before a noun for its statistics
_MEASURE_NOUN_RE = re.compile(
    r"\s+(?:distribution|histogram|statistics|samples|bins|average|counter|count)$", re.I
)


def kpi_counter_parens(text: str, known: Known) -> list[tuple[XEntity, XEntity]]:
    """'Average rank (pmRankDistr)', 'BLER (pmMacHarqDlNack relative to pmMacHarqDlAck)',
    'Transport Latency, from pmTwampRttAvg': the KPI measured by the counters named with it."""
    out = []
    for pattern in (_PAREN_COUNTER_RE, _FROM_COUNTER_RE):
        for m in pattern.finditer(text):
            kpi = _measure_before(text[: m.start()], known)
            if kpi is not None:
                for counter in re.findall(_COUNTER, m.group(1)):
                    out.append((kpi, XEntity(counter, "Counter")))
    return out


def _measure_before(text: str, known: Known) -> XEntity | None:
    """The KPI whose name ends the text (a noun for its statistics apart)."""
    before = _MEASURE_NOUN_RE.sub("", text.rstrip())
    hits = [(e, end) for e, _, end in known.find(before) if e.type == "KPI"]
    if hits and hits[-1][1] == len(before):
        return hits[-1][0]
    return _kpi_name_before(before, known)
