"""Reward functions for the rft export, in the form TRL's GRPOTrainer calls them as-is:
`reward(completions, **columns) -> list[float | None]`, one value per completion, None where the
reward does not apply (TRL then leaves it out of that completion's sum).

    from trl import GRPOTrainer
    from telesynth_tui.pipeline.rewards import numeric_reward, rubric_reward
    GRPOTrainer(model, reward_funcs=[numeric_reward, rubric_reward], train_dataset=rft, ...)

Completions are plain strings or, for conversational datasets such as ours, lists of messages
whose last one is the answer. Only the standard library and `telesynth_tui.units` are used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from telesynth_tui.units import check_numeric

_WORD_RE = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
# fmt: off
_STOP = frozenset({"the", "and", "for", "with", "from", "that", "this", "into", "its", "are",
                   "was", "has", "have", "then", "than", "when", "which", "per"})
# fmt: on
TERM_SHARE = 0.6  # share of a term's words an answer must contain for the term to count


def completion_text(completion: Any) -> str:
    """The answer of a completion: a string, or the last message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion:
        last = completion[-1]
        if isinstance(last, dict):
            return str(last.get("content") or "")
    return ""


def numeric_reward(
    completions: list[Any],
    numeric_answer: list[float | None],
    unit: list[str | None],
    tolerance: list[float | None],
    **_: Any,
) -> list[float | None]:
    """1.0 when the answer states the reference value within its tolerance (unit-aware: dB vs
    linear, Hz vs kHz/MHz, dBm vs W), 0.0 when not, None for items without a numeric answer."""
    out: list[float | None] = []
    for completion, truth, u, tol in zip(completions, numeric_answer, unit, tolerance, strict=True):
        if truth is None:
            out.append(None)
            continue
        check = check_numeric(
            completion_text(completion),
            float(truth),
            u or "",
            rel_tol=0.0,
            abs_tol=float(tol if tol is not None else 1e-6),
        )
        out.append(1.0 if check.ok else 0.0)
    return out


def _word(token: str) -> str:
    """Numbers compare by value ("2215.0" is "2215")."""
    try:
        return f"{float(token):g}"
    except ValueError:
        return token


def _words(text: str) -> set[str]:
    return {
        _word(w)
        for w in _WORD_RE.findall(text.lower())
        if w not in _STOP and (len(w) > 1 or w.isdigit())
    }


def term_met(term: str, words: set[str]) -> bool:
    wanted = _words(term)
    if not wanted:
        return False
    return len(wanted & words) / len(wanted) >= TERM_SHARE


def rubric_reward(
    completions: list[Any], rubric: list[list[dict[str, Any]] | None], **_: Any
) -> list[float | None]:
    """The share of an item's checkable rubric criteria the answer meets (a criterion is met
    when the answer holds most words of each of its terms); None when no criterion of the item
    has terms (those are left to a person or a model grader)."""
    out: list[float | None] = []
    for completion, criteria in zip(completions, rubric, strict=True):
        checkable = [c for c in criteria or [] if c.get("terms")]
        if not checkable:
            out.append(None)
            continue
        words = _words(completion_text(completion))
        met = sum(all(term_met(t, words) for t in c["terms"]) for c in checkable)
        out.append(round(met / len(checkable), 4))
    return out
