"""Entities with aliases and descriptions from definition lists, abbreviation tables and
"Long Form (ABBR)"."""

from __future__ import annotations

import re

from telesynth_tui.graph.extraction.model import Extraction, Item, XEntity
from telesynth_tui.graph.extraction.names import Known, strip_md
from telesynth_tui.graph.linking import find_candidates

_ABBREV_HEADERS = ("abbreviation", "acronym", "term", "short")


_DEF_ITEM_RE = re.compile(r"^\*\*(?P<term>[^*]{1,60})\*\*\s*[:—–-]\s*(?P<desc>.+)$")
_DEF_PLAIN_RE = re.compile(r"^(?P<term>[A-Za-z][\w /-]{0,40}?)\s*[:—–]\s+(?P<desc>.+)$")


def definitions(items: list[Item], out: Extraction, known: Known) -> None:
    """Entities with descriptions from definition lists, abbreviation tables and 'X (ABBR)'."""
    for item in items:
        if item.kind == "row" and item.role == "definitions":
            cells = list(item.cells.items())
            if len(cells) >= 2 and any(w in cells[0][0] for w in _ABBREV_HEADERS):
                short, long_ = strip_md(cells[0][1]), strip_md(cells[1][1])
                if short and long_:
                    desc = strip_md(cells[2][1]) if len(cells) > 2 else ""
                    out.entities.append((XEntity(long_, "Concept", (short,), desc), item.chunk))
            continue
        if item.role == "definitions" and item.kind == "item":
            m = _DEF_ITEM_RE.match(item.text) or _DEF_PLAIN_RE.match(strip_md(item.text))
            if m:
                term, desc = strip_md(m.group("term")), strip_md(m.group("desc"))
                long_form = term
                aliases: tuple[str, ...] = ()
                expansion = re.match(r"^([A-Z][\w -]{3,80}?)[.;,]", desc)
                if term.isupper() and expansion and _initials(expansion.group(1), term):
                    long_form, aliases = expansion.group(1), (term,)
                out.entities.append((XEntity(long_form, "Concept", aliases, desc), item.chunk))
        for cand in find_candidates(strip_md(item.text)):
            if cand.type == "Concept" and cand.aliases:
                hits = known.find(cand.name)
                type_ = hits[0][0].type if hits else "Concept"
                out.entities.append((XEntity(cand.name, type_, cand.aliases), item.chunk))


def _initials(long_form: str, abbrev: str) -> bool:
    letters = "".join(w[0] for w in long_form.split() if w[0].isalpha()).lower()
    return letters.startswith(abbrev.lower()[:2])
