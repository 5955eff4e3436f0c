"""Split Markdown-like text into chunks by headings and paragraphs under a token budget.

Tables and fenced code stay whole when they fit; a larger table is split by rows with its header
repeated, a larger paragraph by sentences, a larger sentence by words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telesynth_tui.text import count_tokens

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT_RE = re.compile(r"^(=+|-+)\s*$")
_GRID_RULE_RE = re.compile(r"^\+[-=:+]{3,}$")  # +----+----+ borders of grid tables
_SENTENCE_RE = re.compile(r"(?<=[.!?;:])\s+(?=\S)")
# "5.2.1 Title ........ 42": lines of a table of contents
_TOC_LINE_RE = re.compile(r"\.{5,}\s*\d+\s*$")


@dataclass(frozen=True)
class Section:
    path: tuple[str, ...]  # heading path, outermost first
    blocks: tuple[str, ...]


@dataclass(frozen=True)
class Chunk:
    heading: str
    text: str
    n_tokens: int


def _blocks(lines: list[str]) -> list[str]:
    """Group lines into paragraphs, tables (| rows) and fenced code."""
    blocks: list[str] = []
    current: list[str] = []
    kind = ""
    fence = False

    def flush() -> None:
        nonlocal current, kind
        if current and any(x.strip() for x in current):
            blocks.append("\n".join(current).strip("\n"))
        current, kind = [], ""

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            if fence:
                current.append(line)
                fence = False
                flush()
                continue
            flush()
            fence, kind = True, "code"
            current.append(line)
            continue
        if fence:
            current.append(line)
            continue
        if not stripped or _TOC_LINE_RE.search(stripped):
            flush()
            continue
        line_kind = "table" if stripped.startswith("|") or _GRID_RULE_RE.match(stripped) else "text"
        if kind and line_kind != kind:
            flush()
        kind = line_kind
        current.append(line.rstrip())
    flush()
    return blocks


def split_sections(text: str, title: str) -> list[Section]:
    """Sections of a Markdown document, each with its heading path."""
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    lines: list[str] = []
    in_fence = False

    def emit() -> None:
        blocks = _blocks(lines)
        if blocks:
            heading = tuple(h for _, h in path) or (title,)
            sections.append(Section(heading, tuple(blocks)))
        lines.clear()

    raw_lines = text.splitlines()
    for i, line in enumerate(raw_lines):
        if line.strip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING_RE.match(line)
        setext = (
            not in_fence
            and i + 1 < len(raw_lines)
            and line.strip()
            and not line.lstrip().startswith("|")
            and _SETEXT_RE.match(raw_lines[i + 1])
            and len(raw_lines[i + 1].strip()) >= 3
        )
        if match:
            level, heading = len(match.group(1)), _clean_heading(match.group(2))
        elif setext:
            level, heading = (1 if raw_lines[i + 1].strip()[0] == "=" else 2), line.strip()
        else:
            if i > 0 and _SETEXT_RE.match(line) and _is_setext_title(raw_lines, i - 1):
                continue
            lines.append(line)
            continue
        emit()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, heading))
    emit()
    return sections


def _is_setext_title(lines: list[str], i: int) -> bool:
    return (
        bool(lines[i].strip())
        and not lines[i].lstrip().startswith("|")
        and len(lines[i + 1].strip()) >= 3
    )


def _clean_heading(heading: str) -> str:
    return re.sub(r"[*_`]", "", heading).strip() or "(untitled)"


def _split_table(block: str, budget: int) -> list[str]:
    rows = block.splitlines()
    header: list[str] = []
    if len(rows) >= 2 and re.fullmatch(r"\|?[\s:|-]+\|?", rows[1].strip()):
        header, rows = rows[:2], rows[2:]
    pieces: list[str] = []
    current = list(header)
    for row in rows:
        candidate = [*current, row]
        if len(current) > len(header) and count_tokens("\n".join(candidate)) > budget:
            pieces.append("\n".join(current))
            current = [*header, row]
        else:
            current = candidate
    if len(current) > len(header):
        pieces.append("\n".join(current))
    # a single row larger than the budget is split as prose
    return [p for piece in pieces for p in _fit(piece, budget, allow_table=False)]


def _split_words(text: str, budget: int) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    size = 0
    for word in text.split():
        n = count_tokens(word)
        if current and size + n > budget:
            out.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += n
    if current:
        out.append(" ".join(current))
    return out


def _fit(block: str, budget: int, allow_table: bool = True) -> list[str]:
    """Split one block into pieces that each fit the budget."""
    if count_tokens(block) <= budget:
        return [block]
    if allow_table and block.lstrip().startswith("|"):
        return _split_table(block, budget)
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_RE.split(block):
        if count_tokens(sentence) > budget:
            if current:
                pieces.append(current)
                current = ""
            pieces.extend(_split_words(sentence, budget))
            continue
        joined = f"{current} {sentence}".strip()
        if current and count_tokens(joined) > budget:
            pieces.append(current)
            current = sentence
        else:
            current = joined
    if current:
        pieces.append(current)
    return pieces


def chunk_sections(sections: list[Section], budget: int) -> list[Chunk]:
    """Pack each section's blocks into chunks of at most `budget` tokens (never across headings)."""
    chunks: list[Chunk] = []
    for section in sections:
        heading = " > ".join(section.path)
        current: list[str] = []
        size = 0
        for block in section.blocks:
            for piece in _fit(block, budget):
                n = count_tokens(piece)
                if current and size + n > budget:
                    chunks.append(_make_chunk(heading, current))
                    current, size = [], 0
                current.append(piece)
                size += n
        if current:
            chunks.append(_make_chunk(heading, current))
    return chunks


def _make_chunk(heading: str, pieces: list[str]) -> Chunk:
    text = "\n\n".join(pieces)
    return Chunk(heading=heading, text=text, n_tokens=count_tokens(text))


def chunk_markdown(text: str, title: str, budget: int) -> list[Chunk]:
    return chunk_sections(split_sections(text, title), budget)


def markdown_title(text: str, fallback: str) -> str:
    for line in text.splitlines()[:200]:
        match = _HEADING_RE.match(line)
        if match and len(match.group(1)) == 1:
            return _clean_heading(match.group(2))
    return fallback
