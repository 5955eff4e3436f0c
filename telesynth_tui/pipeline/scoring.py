"""Stage 6, score: the scorer interface and the fast scorer.

A scorer turns one candidate (its question and answer vectors, answer text, context and the
references it cites) into named scores; the metrics of any model call it makes go to the call
context it is given. Two scorers implement it: `FastScorer` here and the LLM scorer
(`pipeline/llm_scoring.py`, ragas's LLM metrics through a local model).

The fast scorer: ragas's non-LLM metrics and embedding similarity, offline.

- context_precision / context_recall: ragas NonLLMContextPrecisionWithReference and
  NonLLMContextRecall (string similarity of retrieved against reference contexts, the items the
  answer cites);
- answer_relevancy: cosine of question and answer embeddings;
- faithfulness: share of the answer's content words found in the context (a lexical stand-in
  for ragas's LLM faithfulness, which needs a judge model).
The combined quality is their mean.
"""

from __future__ import annotations

import asyncio
import os
import re
import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from telesynth_tui.inference.base import CallContext

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-]{3,}|\d+(?:\.\d+)?")
# fmt: off
_STOP = frozenset({"this", "that", "with", "from", "what", "which", "when", "where", "there",
                   "their", "they", "them", "have", "been", "were", "will", "would", "should",
                   "could", "about", "into", "than", "then", "also", "only", "more", "most",
                   "such", "each", "other", "these", "those", "your", "does", "done", "given",
                   "using", "used", "after", "before", "while", "because"})
# fmt: on


def content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD_RE.findall(text)} - _STOP


class Scorer(ABC):
    """Scores a candidate QA against its context."""

    name: str

    @abstractmethod
    def score(
        self,
        question_vec: np.ndarray,
        answer_vec: np.ndarray,
        answer: str,
        contexts: list[str],
        references: list[str],
        question: str = "",
        ctx: CallContext | None = None,
    ) -> dict[str, Any]:
        """Scores by metric name (0-1); model-call metrics go to `ctx.metrics`."""

    def close(self) -> None:
        """Release what the scorer holds. Safe to call twice."""
        return None


class FastScorer(Scorer):
    """ragas's non-LLM metrics and embedding similarity: no model call."""

    name = "fast"

    def __init__(self) -> None:
        os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from ragas import SingleTurnSample
            from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall

        self._sample = SingleTurnSample
        self._precision = NonLLMContextPrecisionWithReference()
        self._recall = NonLLMContextRecall()
        self._loop = asyncio.new_event_loop()

    def close(self) -> None:
        self._loop.close()

    def score(
        self,
        question_vec: np.ndarray,
        answer_vec: np.ndarray,
        answer: str,
        contexts: list[str],
        references: list[str],
        question: str = "",
        ctx: CallContext | None = None,
    ) -> dict[str, Any]:
        scores: dict[str, float] = {
            "answer_relevancy": round(float(question_vec @ answer_vec), 4),
        }
        words = content_words(answer)
        context_words = set().union(*(content_words(c) for c in contexts)) if contexts else set()
        scores["faithfulness"] = round(len(words & context_words) / len(words), 4) if words else 0.0
        if contexts and references:
            sample = self._sample(retrieved_contexts=contexts, reference_contexts=references)
            scores["context_precision"] = round(
                float(self._loop.run_until_complete(self._precision.single_turn_ascore(sample))), 4
            )
            scores["context_recall"] = round(
                float(self._loop.run_until_complete(self._recall.single_turn_ascore(sample))), 4
            )
        return scores


def quality(scores: dict[str, Any]) -> float:
    """Mean of the judge's ragas metrics when present, else of the fast scores."""
    judged = (
        "llm_faithfulness",
        "llm_answer_relevancy",
        "llm_context_precision",
        "llm_context_recall",
    )
    fast = ("answer_relevancy", "faithfulness", "context_precision", "context_recall")
    keys = judged if any(k in scores for k in judged) else fast
    values = [float(scores[k]) for k in keys if k in scores]
    return round(sum(values) / len(values), 4) if values else 0.0
