"""Which option(s) a student's free text chooses: a letter, a number, "option 3", or the option's
own text, as students actually write them."""

from __future__ import annotations

import re

from rapidfuzz import fuzz

LETTERS = "ABCDEFGH"
_MARKED = re.compile(
    r"(?:answer|option|choice|correct(?: answer)?(?: is)?)\s*(?:is|:|=)?\s*\(?\s*([A-H]|\d)\b",
    re.IGNORECASE,
)
_LEADING = re.compile(r"^\s*[\(\[]?\s*([A-H]|\d)\s*[\)\].:]", re.IGNORECASE)
_BARE = re.compile(r"^\s*\**\s*([A-H]|\d)\s*\**\s*$", re.IGNORECASE)


def _index(token: str, n_options: int, letters: bool) -> int | None:
    token = token.upper()
    if token.isdigit():
        value = int(token) - 1
    elif letters or token in LETTERS[:n_options]:
        value = LETTERS.index(token) if token in LETTERS else -1
    else:
        return None
    return value if 0 <= value < n_options else None


def parse_choice(text: str, options: list[str], multiple: bool = False) -> set[int]:
    """The chosen option indices (0-based); empty when the text picks none."""
    n = len(options)
    cleaned = text.replace("*", " ").strip()
    chosen: list[int] = []
    for pattern in (_BARE, _LEADING):
        match = pattern.match(cleaned)
        if match:
            index = _index(match.group(1), n, letters=True)
            if index is not None:
                chosen.append(index)
                break
    for match in _MARKED.finditer(cleaned):
        index = _index(match.group(1), n, letters=True)
        if index is not None:
            chosen.append(index)
        if chosen and not multiple:
            break
    if not chosen:  # the option's text itself
        scores = [fuzz.partial_ratio(o.lower(), cleaned.lower()) if o else 0 for o in options]
        best = max(scores, default=0)
        if best >= 90:
            chosen = [i for i, s in enumerate(scores) if s == best]
    if not multiple:
        return {chosen[0]} if chosen else set()
    return set(chosen)
