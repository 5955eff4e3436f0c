"""Accept-gate rules that read the text alone: malformed output and prompt leaks.

Each rule returns None (passes) or a short detail saying what is wrong; `gate.py` names the rule.
"""

from __future__ import annotations

import re
import unicodedata

from telesynth_tui.text import normalize_name

# words a cut-off sentence ends on
# fmt: off
_FUNCTION_WORDS = frozenset(["the", "a", "an", "of", "to", "for", "with", "and", "or", "in",
                             "on", "by", "from", "that", "which", "is", "are", "was", "were",
                             "be", "as", "at", "than", "when", "while", "if", "into", "its",
                             "their", "per", "between", "such", "whose", "where", "this",
                             "these", "those", "our", "your", "his", "her", "can", "could",
                             "will", "would", "should", "may", "might", "must", "not", "no",
                             "nor", "but", "so", "because"])
# fmt: on
_TERMINAL = tuple(".!?)]\"'»”’")
_BAD_ENDINGS = tuple(",;:(-–—/`&+*=")
# imperatives that make a request a question
# fmt: off
_IMPERATIVES = frozenset(["compute", "calculate", "find", "give", "list", "define", "explain",
                          "describe", "determine", "estimate", "derive", "state", "name",
                          "outline", "identify", "provide", "show", "propose", "suggest",
                          "summarise", "summarize", "diagnose", "troubleshoot", "convert",
                          "evaluate", "work", "express", "obtain"])
# fmt: on
_LIST_ITEM_RE = re.compile(r"^\s*(?:\d+|[a-z])[.)]\s")
_TIMESTAMP_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}")
_PLACEHOLDER_RE = re.compile(
    r"\[\s*(?:insert|your|placeholder|name of|todo|tbd|add|enter|fill|x+\b)[^\]]*\]"
    r"|<\s*(?:insert|your|placeholder)[^>]*>|\{\{[^}]*\}\}|\blorem ipsum\b|\bTODO\b|\bTBD\b",
    re.IGNORECASE,
)
_CODE_RE = re.compile(r"[{}]|```|\"\s*:\s*[\"\[{\d]|</?\w+>")
_REPEAT_RE = re.compile(r"(.{1,40}?)(?:\s*\1){4,}", re.DOTALL)
_LEAK_RES = (
    re.compile(r"\bcontext\s*(?:items?\b|#|\[|\(?\d)", re.IGNORECASE),
    re.compile(r"\[\s*\d+(?:\s*[,\-–]\s*\d+)*\s*\]"),
    re.compile(
        r"\b(?:the|this|that|above|following|given|provided)\s+(?:given\s+|provided\s+|above\s+)?"
        r"(?:context|passage|excerpt|snippet|draft)s?\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:from|in|according to|based on|per)\s+(?:the\s+)?(?:given\s+|provided\s+)?"
        r"(?:text|document|documents)\b",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bdraft answer\b|\bas an ai\b|\blanguage model\b|\bthe instructions?\b"
        r"|\btraining data\b|\bcontext keys?\b",
        re.IGNORECASE,
    ),
    re.compile(r"\b(?:fact|chunk|formula|entity):\d+\b"),
)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'’\-]*")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# fmt: off
_STOP = frozenset(["what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is",
                   "are", "was", "were", "be", "been", "being", "do", "does", "did", "the", "a",
                   "an", "of", "to", "for", "with", "and", "or", "in", "on", "by", "from",
                   "that", "this", "these", "those", "it", "its", "as", "at", "than", "then",
                   "there", "their", "they", "them", "can", "could", "will", "would", "should",
                   "may", "might", "must", "not", "no", "into", "about", "also", "only", "more",
                   "most", "such", "each", "other", "some", "any", "all", "give", "list",
                   "explain", "describe", "define", "state", "name", "used", "use", "uses",
                   "using", "given", "value", "values", "purpose"])
# fmt: on


def _strip_number(text: str) -> str:
    return _LIST_ITEM_RE.sub("", text).strip()


def clause_starts(text: str) -> list[str]:
    """The first word (lower-case) of each clause (split at . , : ; ? !)."""
    out = []
    for part in re.split(r"[.,:;?!]\s+|^", text.strip()):
        m = _WORD_RE.search(part)
        if m and m.start() <= 1:
            out.append(m.group().lower())
    return out


def cut_off(text: str, vocabulary: set[str]) -> str | None:
    """How `text` looks cut off: a dangling ending, or a word cut short (a proper prefix of a
    word of the vocabulary that is not itself a word there)."""
    t = text.rstrip()
    if not t:
        return None
    if t.endswith(_BAD_ENDINGS):
        return f"ends with '{t[-1]}'"
    if t.endswith(_TERMINAL):
        return None
    words = _WORD_RE.findall(t)
    if not words:
        return None
    last = words[-1]
    if last.lower() in _FUNCTION_WORDS and t.endswith(last):
        return f"ends on '{last}'"
    low = last.lower()
    if len(low) >= 2 and t.endswith(last) and low not in vocabulary:
        longer = next((w for w in vocabulary if len(w) > len(low) and w.startswith(low)), None)
        if longer:
            return f"word cut short: '{last}' ({longer}…)"
    return None


def vocabulary(*texts: str) -> set[str]:
    return {w.lower() for t in texts for w in _WORD_RE.findall(t)}


def question_form(question: str) -> str | None:
    q = question.strip()
    if _LIST_ITEM_RE.match(q):
        return "question is a numbered list item, not a question"
    if len(_WORD_RE.findall(q)) < 3:
        return "question has fewer than 3 words"
    if q.endswith("?"):
        return None
    if q.endswith((".", ":")) and _IMPERATIVES & set(clause_starts(q)):
        return None
    return "not a question (no question mark, no request)"


def script(text: str) -> str | None:
    """Characters of another script (CJK, Hangul, ...) or replacement marks: garbled output."""
    for ch in text:
        if ch == "\ufffd":
            return "replacement character"
        if ord(ch) > 0x2E7F:
            name = unicodedata.name(ch, "")
            if any(k in name for k in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPH")):
                return f"foreign script character '{ch}'"
            if unicodedata.category(ch) in ("Co", "Cn"):
                return "unassigned character"
    return None


def malformed(
    question: str, answer: str, steps: list[str], vocab: set[str], numeric_answer: bool
) -> list[str]:
    """Every malformation of the item (question, answer, steps)."""
    out: list[str] = []
    q, a = question.strip(), answer.strip()
    if not q or not a:
        return ["empty question" if not q else "empty answer"]
    problem = question_form(q)
    if problem:
        out.append(problem)
    for field, text in (("question", q), ("answer", a)):
        cut = cut_off(text, vocab)
        if cut:
            out.append(f"{field} cut off: {cut}")
    if not a.endswith(_TERMINAL) and len(_WORD_RE.findall(a)) >= 6 and not numeric_answer:
        out.append("answer cut off: no closing punctuation")
    if not _WORD_RE.search(a) or (
        not numeric_answer and len(_WORD_RE.findall(a)) < 2 and not re.search(r"[A-Za-z]{3}", a)
    ):
        out.append("answer has no words")
    if normalize_name(q) == normalize_name(a):
        out.append("answer echoes the question")
    all_text = [q, a, *steps]
    for text in all_text:
        for label, check in (
            ("timestamp", _TIMESTAMP_RE),
            ("placeholder", _PLACEHOLDER_RE),
            ("code or JSON fragment", _CODE_RE),
        ):
            m = check.search(text)
            if m:
                out.append(f"{label}: '{m.group()[:30]}'")
        odd = script(text)
        if odd:
            out.append(f"garbled: {odd}")
        m = _REPEAT_RE.search(text)
        if m and len(m.group()) >= 12:
            out.append(f"degenerate repetition: '{m.group(1).strip()[:30]}'")
        if text.count("`") % 2:
            out.append("code fragment: unbalanced backtick")
    for step in steps:
        body = _strip_number(step)
        tokens = [t for t in body.split() if re.search(r"[A-Za-z]", t)]
        if len(tokens) < 2 and "=" not in body:
            out.append(f"junk step: '{step[:30]}'")
            break
        cut = cut_off(step, vocab)
        if cut:
            out.append(f"step cut off: {cut}")
            break
    bodies = [normalize_name(_strip_number(s)) for s in steps]
    if bodies:
        top = max(bodies.count(b) for b in set(bodies))
        if top >= 3 or (len(bodies) >= 4 and len(set(bodies)) / len(bodies) < 0.6):
            out.append(f"repetitive steps ({len(set(bodies))} distinct of {len(bodies)})")
    return list(dict.fromkeys(out))


def prompt_leaks(question: str, answer: str, steps: list[str]) -> list[str]:
    out = []
    for field, text in (("question", question), ("answer", answer), ("steps", " | ".join(steps))):
        for pattern in _LEAK_RES:
            m = pattern.search(text)
            if m:
                out.append(f"{field} says '{m.group().strip()}'")
                break
    return out


def _stem(word: str) -> str:
    w = word.lower().strip("'’-")
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def content_stems(text: str) -> set[str]:
    """Content words (camelCase and snake_case split), crudely stemmed, without stop words."""
    out = set()
    for word in _WORD_RE.findall(text.replace("_", " ")):
        for part in _CAMEL_RE.split(word):
            p = part.lower()
            if len(p) >= 2 and p not in _STOP:
                out.add(_stem(p))
    return out


def tautology(question: str, answer: str) -> str | None:
    """An answer that only restates the question ("increasing P increases P")."""
    a = content_stems(answer)
    if len(a) < 2:
        return None
    new = a - content_stems(question)
    if len(new) / len(a) < 0.34:
        return f"answer restates the question ({len(new)} new of {len(a)} content words)"
    return None
