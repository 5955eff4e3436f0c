"""Text helpers shared by importers and retrieval: token counting and word tokens."""

from __future__ import annotations

import re

# Word pieces and single punctuation marks: a tokenizer-free estimate that tracks BPE token
# counts of English technical prose within ~15% (chunk budgets only need the order of magnitude).
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
# Words as entity names write them: letters/digits joined by . - _ / (gNB-CU, TS 38.331).
_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:[.\-_/][A-Za-z0-9]+)*")


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def word_spans(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


def normalize_name(name: str) -> str:
    """Key under which an entity name or alias is looked up: lower-case words joined by spaces."""
    return " ".join(w.lower() for w in words(name))


# Chat-template control tokens of common model families (ChatML, Llama 2/3, Gemma, Mistral):
# text that carries them could steer a model or end up verbatim in training data.
_CONTROL_TOKEN_RE = re.compile(
    r"<\|[A-Za-z0-9_]{1,40}\|>|\[/?INST\]|<</?SYS>>|</?s>|<(?:start|end)_of_turn>"
    r"|\[/?(?:AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS|SYSTEM_PROMPT)\]"
)


def strip_control_tokens(text: str) -> str:
    """The text without chat-template control tokens such as `<|im_start|>` or `[INST]`."""
    return _CONTROL_TOKEN_RE.sub("", text)


def has_control_tokens(text: str) -> bool:
    return _CONTROL_TOKEN_RE.search(text) is not None
