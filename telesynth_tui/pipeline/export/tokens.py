"""Token lengths of exported records, and trimming context to fit a token limit.

A record is counted as a trainer sees it: the conversation rendered with a chat template and
tokenized (the prompt alone, and the prompt with the answer; for DPO the longer answer).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from telesynth_tui.pipeline.export.records import Item, Message, assistant, prompt

# TRL's default max_length for SFT and DPO: longer records are cut from the right
TRL_DEFAULT_MAX_LENGTH = 1024

Counter = Callable[[Sequence[Message]], int]


@dataclass
class Lengths:
    """Token figures of one export."""

    tokenizer: str
    prompt: list[int] = field(default_factory=list)
    completion: list[int] = field(default_factory=list)
    total: list[int] = field(default_factory=list)
    max_tokens: int | None = None
    trimmed: int = 0  # records whose context was cut to fit
    over: list[int] = field(default_factory=list)  # sample ids still over the limit

    def summary(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer,
            **{part: figures(getattr(self, part)) for part in ("prompt", "completion", "total")},
            "max_tokens": self.max_tokens,
            "trimmed": self.trimmed,
            "over_limit": len(self.over),
        }

    def warning(self) -> str | None:
        limit = self.max_tokens or TRL_DEFAULT_MAX_LENGTH
        if self.max_tokens is None:
            over = sum(1 for t in self.total if t > limit)
            if not over:
                return None
            return (
                f"{over} of {len(self.total)} records exceed {limit} tokens (TRL's default "
                f"max_length, which cuts the answer off): pass --max-tokens N to trim their "
                f"context, or raise max_length"
            )
        if not self.over:
            return None
        ids = ", ".join(str(i) for i in self.over[:5]) + (" ..." if len(self.over) > 5 else "")
        return (
            f"{len(self.over)} records exceed --max-tokens {limit} even without context "
            f"(samples {ids}): raise the limit or leave them out"
        )


def figures(values: list[int]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank
    return {
        "median": float(statistics.median(ordered)),
        "p95": float(p95),
        "max": float(ordered[-1]),
    }


def _answers(item: Item) -> list[str]:
    answers = [str(item.sample.answer)]
    if item.rejected is not None:
        answers.append(str(item.rejected.answer))
    return answers


def measure(
    items: list[Item],
    count: Counter,
    tokenizer: str,
    with_context: bool,
    max_tokens: int | None = None,
) -> Lengths:
    """Count every record; with `max_tokens`, drop context items (least useful first) from
    records that exceed it, and list those that still do."""
    lengths = Lengths(tokenizer, max_tokens=max_tokens)
    for item in items:
        n_context = len(item.sample.context) if with_context else 0
        keep = n_context
        while True:
            msgs = prompt(item.sample, with_context, keep)
            p = count(msgs)
            total = max(count([*msgs, *assistant(a)]) for a in _answers(item))
            if max_tokens is None or total <= max_tokens or keep == 0:
                break
            keep -= 1
        if with_context and keep < n_context:
            item.keep = keep
            lengths.trimmed += 1
        if max_tokens is not None and total > max_tokens:
            lengths.over.append(int(item.sample.id or 0))
        lengths.prompt.append(p)
        lengths.completion.append(total - p)
        lengths.total.append(total)
    return lengths
