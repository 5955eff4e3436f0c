"""A document's layout: section roles from headings, list items (named by a bold lead or a
leading clause), table rows and paragraph sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence

from telesynth_tui.graph.chunking import Chunk
from telesynth_tui.graph.extraction.model import Item
from telesynth_tui.graph.extraction.names import strip_md

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
# fmt: on
NAMEABLE_ROLES = {"causes": "RootCause", "checks": "Check", "actions": "Action"}


def section_role(heading: str) -> str | None:
    """The runbook role of a section from its heading path (deepest heading first)."""
    for part in reversed(heading.split(" > ")):
        low = part.lower()
        for role, words in _ROLES:
            if any(w in low for w in words):
                return role
    return None


_TRAILING_ABBREV_RE = re.compile(r"\s+\((?=[^)]*[A-Z][^)]*[A-Z])[A-Za-z0-9-]{2,10}\)$")


def _item_name(text: str, role: str | None) -> str | None:
    """A bold lead, or a short leading clause, names the item."""
    bold = _BOLD_LEAD_RE.match(text)
    if bold:
        name = strip_md(bold.group(1)).rstrip(".:;, ")
    else:
        if role not in NAMEABLE_ROLES:
            return None
        plain = _STEP_PREFIX_RE.sub("", strip_md(text))
        end = _CLAUSE_END_RE.search(plain)
        name = plain[: end.start()] if end else plain
        name = name.strip().rstrip(".:;,")
    # 'Passive intermodulation (PIM)': the abbreviation is an alias, not part of the name
    name = _TRAILING_ABBREV_RE.sub("", name)
    words = name.split()
    if not 1 <= len(words) <= 9 or len(name) > 80:
        return None
    return name


def parse_chunk(index: int, chunk: Chunk) -> list[Item]:
    role = section_role(chunk.heading)
    items: list[Item] = []
    current: list[str] | None = None
    header: list[str] | None = None
    paragraph: list[str] = []

    def flush_item() -> None:
        nonlocal current
        if current:
            text = " ".join(s.strip() for s in current)
            item_role = role
            if role == "procedure":
                first = strip_md(text).split(maxsplit=1)[0].lower() if text.strip() else ""
                item_role = (
                    "checks"
                    if first in _CHECK_VERBS
                    else "actions"
                    if first in _ACTION_VERBS
                    else None
                )
            name = _item_name(text, item_role)
            items.append(
                Item(index, item_role, "item", text, name, bold=bool(_BOLD_LEAD_RE.match(text)))
            )
            # '**Increase t310** and **Increase n310** when ...', 'For X, **Increase Y** ...':
            # every bold phrase that opens with a check or action verb names one more item
            if item_role in ("checks", "actions"):
                verbs = _CHECK_VERBS if item_role == "checks" else _ACTION_VERBS
                for m in re.finditer(r"\*\*(.+?)\*\*", text):
                    phrase = strip_md(m.group(1)).rstrip(".:;, ")
                    words = phrase.split()
                    if words and words[0].lower() in verbs and len(words) <= 9 and phrase != name:
                        items.append(Item(index, item_role, "item", text, phrase, bold=True))
        current = None

    def flush_paragraph() -> None:
        if paragraph:
            text = " ".join(paragraph)
            for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text):
                if sentence.strip():
                    items.append(Item(index, role, "sentence", sentence.strip()))
            paragraph.clear()

    for line in chunk.text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            flush_item()
            flush_paragraph()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if header is None:
                header = [strip_md(c).lower() for c in cells]
            elif all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                continue
            elif len(cells) == len(header):
                items.append(
                    Item(
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


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+", text) if s.strip()]


def unname_commentary(items: list[Item], chunks: Sequence[Chunk]) -> None:
    """In a section whose items are named by bold leads, an item without one is commentary
    ('Read the cell's SIB1 values ...'), not one more named check or action."""
    bold_sections = {
        (chunks[i.chunk].heading, i.role) for i in items if i.kind == "item" and i.bold
    }
    for item in items:
        commentary = item.kind == "item" and not item.bold and item.role in NAMEABLE_ROLES
        if commentary and (chunks[item.chunk].heading, item.role) in bold_sections:
            item.name = None
