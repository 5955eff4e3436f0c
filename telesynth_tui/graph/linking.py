"""Entity linking: a gazetteer of names and aliases, plus patterns that spot new candidates.

Patterns: 3GPP parameters written in camelCase (qRxLevMin), performance counters (pm...),
specification references (TS 38.214) and abbreviations defined in the text ("... (RSRP)").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from telesynth_tui.text import normalize_name, word_spans

MAX_NAME_WORDS = 8


@dataclass(frozen=True)
class Mention:
    entity_id: int
    surface: str
    start: int


@dataclass(frozen=True)
class Candidate:
    name: str
    type: str
    aliases: tuple[str, ...]
    surface: str
    start: int


def _case_sensitive(name: str) -> bool:
    """Single-word abbreviations, camelCase identifiers and codes must match their case."""
    if len(word_spans(name)) > 1:
        return False
    letters = [c for c in name if c.isalpha()]
    if not letters:
        return True
    upper = sum(c.isupper() for c in letters)
    return upper >= 2 or any(c.isdigit() for c in name) or (upper == 1 and not name[0].isupper())


class Gazetteer:
    """Longest-match lookup of entity names and aliases over word n-grams."""

    def __init__(self) -> None:
        self._folded: dict[str, int] = {}
        self._exact: dict[str, int] = {}
        self._lengths: set[int] = set()

    def add(self, entity_id: int, names: Iterable[str]) -> None:
        for name in names:
            key = normalize_name(name)
            if not key:
                continue
            n = key.count(" ") + 1
            if n > MAX_NAME_WORDS:
                continue
            self._lengths.add(n)
            if _case_sensitive(name):
                exact = " ".join(w for w, _, _ in word_spans(name))
                self._exact.setdefault(exact, entity_id)
            else:
                self._folded.setdefault(key, entity_id)

    def __len__(self) -> int:
        return len(self._folded) + len(self._exact)

    def lookup(self, name: str) -> int | None:
        exact = " ".join(w for w, _, _ in word_spans(name))
        return self._exact.get(exact) or self._folded.get(normalize_name(name))

    def find(self, text: str) -> list[Mention]:
        """Non-overlapping mentions, longest first at each position."""
        spans = word_spans(text)
        lengths = sorted(self._lengths, reverse=True)
        mentions: list[Mention] = []
        i = 0
        while i < len(spans):
            for n in lengths:
                if i + n > len(spans):
                    continue
                window = spans[i : i + n]
                exact = " ".join(w for w, _, _ in window)
                entity_id = self._exact.get(exact)
                if entity_id is None:
                    entity_id = self._folded.get(exact.lower())
                if entity_id is not None:
                    start, end = window[0][1], window[-1][2]
                    mentions.append(Mention(entity_id, text[start:end], start))
                    i += n
                    break
            else:
                i += 1
        return mentions


# camelCase and ASN.1-style names (qRxLevMin, maxNrofSSB, csi-ReportConfig); 5+ characters so
# units and element names (dBm, mW, gNB) stay out
_CAMEL_RE = re.compile(r"\b[a-z][a-z0-9]*(?:-?[A-Z][A-Za-z0-9]*)+\b")
_CAMEL_STEP_RE = re.compile(r"[a-z][A-Z]")
_COUNTER_RE = re.compile(r"\bpm[A-Z][A-Za-z0-9]{2,}\b")
_SPEC_RE = re.compile(r"\b(?:3GPP\s+)?(TS|TR)\s?(\d{2}\.\d{3})(?:-(\d))?\b")
_ABBREV_DEF_RE = re.compile(
    r"((?:[A-Za-z][\w-]*\s+){1,7}[A-Za-z][\w-]*)\s+\(([A-Z][A-Za-z0-9]{1,7})\)"
)
_NOT_PARAMETERS = {"eNodeB", "gNodeB", "ngEnb", "iPhone", "eMBB", "mMTC", "uRLLC", "mmWave"}


def _initials_match(words: list[str], abbrev: str) -> list[str] | None:
    """The trailing words whose initials (or leading letters) spell the abbreviation."""
    letters = [c.lower() for c in abbrev if c.isalpha()]
    for take in range(min(len(words), len(letters)), 0, -1):
        tail = words[-take:]
        initials = "".join(w[0].lower() for w in tail if w)
        if initials == "".join(letters) or (
            take >= 2 and "".join(letters).startswith(initials) and len(initials) >= 2
        ):
            return tail
    return None


def find_candidates(text: str) -> list[Candidate]:
    """New-entity candidates spotted by pattern (the caller drops those already known)."""
    found: list[Candidate] = []
    for m in _COUNTER_RE.finditer(text):
        found.append(Candidate(m.group(), "Counter", (), m.group(), m.start()))
    for m in _CAMEL_RE.finditer(text):
        word = m.group()
        if (
            len(word) < 5
            or word.startswith(("pm", "dB"))
            or word.rstrip("s") in _NOT_PARAMETERS
            or not _CAMEL_STEP_RE.search(word)  # low-SINR, intra-LTE: prose, not identifiers
        ):
            continue
        found.append(Candidate(word, "Parameter", (), word, m.start()))
    for m in _SPEC_RE.finditer(text):
        name = f"{m.group(1)} {m.group(2)}" + (f"-{m.group(3)}" if m.group(3) else "")
        found.append(Candidate(name, "Specification", (), m.group(), m.start()))
    for m in _ABBREV_DEF_RE.finditer(text):
        words = m.group(1).split()
        tail = _initials_match(words, m.group(2))
        if tail:
            long_form = " ".join(tail)
            found.append(Candidate(long_form, "Concept", (m.group(2),), m.group(), m.start()))
    return found
