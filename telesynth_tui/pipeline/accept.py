"""The accept policy: filter, score and gate one QA candidate into an accepted or rejected
sample. A candidate is accepted when every filter passes, the graph-backed gate finds nothing
against it and its quality reaches the run's minimum; otherwise the first reason is kept.
An unusable model output becomes a rejected sample that keeps the raw text."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from telesynth_tui.graph.retrieval import Retriever
from telesynth_tui.inference.base import CallContext
from telesynth_tui.infra import Stopwatch
from telesynth_tui.pipeline.filters import Filters
from telesynth_tui.pipeline.gate import Gate, GateItem
from telesynth_tui.pipeline.realize import Candidate
from telesynth_tui.pipeline.records import (
    ACCEPTED,
    REJECTED,
    FilterVerdict,
    Rejection,
    Sample,
    Scores,
)
from telesynth_tui.pipeline.scoring import Scorer, quality
from telesynth_tui.text import has_control_tokens, strip_control_tokens


def without_control_tokens(candidate: Candidate) -> Candidate:
    """The candidate with chat-template control tokens removed from what it says."""
    texts = [candidate.question, candidate.answer, *candidate.steps]
    if not any(has_control_tokens(t) for t in texts):
        return candidate
    return replace(
        candidate,
        question=strip_control_tokens(candidate.question),
        answer=strip_control_tokens(candidate.answer),
        steps=[strip_control_tokens(s) for s in candidate.steps],
    )


class AcceptPolicy:
    def __init__(
        self,
        retriever: Retriever,
        filters: Filters,
        scorer: Scorer,
        gate: Gate,
        clock: Stopwatch,
        min_quality: float = 0.0,
    ) -> None:
        self.retriever = retriever  # the stored vectors of context chunks
        self.filters = filters
        self.scorer = scorer
        self.gate = gate  # it learns the accepted samples of the run
        self.clock = clock
        self.min_quality = min_quality

    def assess(
        self,
        item: Candidate | str,
        template: Sample,
        payload: dict[str, Any],
        context: list[dict[str, Any]],
        texts: list[str],
        draft: str | None = None,
        filter_ctx: CallContext | None = None,
        score_ctx: CallContext | None = None,
    ) -> tuple[Sample, np.ndarray | None]:
        """The sample (the template with the candidate and its verdict) and its question's
        vector (None when the model output was unusable). The filters' and scorers' model calls
        go to `filter_ctx` and `score_ctx`."""
        plan_type = template.type
        reason: str | None
        if isinstance(item, str):  # the model's output could not be used: keep it and say why
            rejection = Rejection.parse(item)
            return replace(
                template, raw_text=rejection.raw_text, status=REJECTED, reason=rejection.reason
            ), None
        item = without_control_tokens(item)
        known = {}
        for position, c in enumerate(context):
            if c["kind"] == "chunk":
                vector = self.retriever.chunk_vector(int(c["id"]))
                if vector is not None:
                    known[position] = vector
        with self.clock.timed("filter"):
            verdicts, vectors = self.filters.run(
                item.question, item.answer, texts, plan_type, payload, known, filter_ctx
            )
        by_key = {c["key"]: c["text"] for c in context}
        references = [by_key[k] for k in item.cited if k in by_key]
        with self.clock.timed("score"):
            scores: dict[str, Any] = self.scorer.score(
                vectors["question"],
                vectors["answer"],
                item.answer,
                texts,
                references,
                question=item.question,
                ctx=score_ctx,
            )
        q = quality(scores)
        filters: dict[str, FilterVerdict] = {v.filter: v for v in verdicts}
        gated = GateItem(
            plan_type, item.question, item.answer, list(item.steps), texts, payload, draft
        )
        with self.clock.timed("filter"):
            gate_reasons = self.gate.check(gated)
        gate = [str(r) for r in gate_reasons]
        failed = next((v for v in verdicts if not v.passed), None)
        if failed is not None:
            status, reason = REJECTED, f"{failed.filter}: {failed.detail}"
        elif gate_reasons:
            status, reason = REJECTED, f"gate: {gate_reasons[0]}"
        elif q < self.min_quality:
            status, reason = REJECTED, f"quality: {q:.2f} below {self.min_quality:.2f}"
        else:
            status, reason = ACCEPTED, None
            self.gate.accept(gated, "an accepted sample of this run")
        sample = replace(
            template,
            question=item.question,
            answer=item.answer,
            steps=list(item.steps),
            cited=list(item.cited),
            raw_text=item.raw_text or None,
            status=status,
            reason=reason,
            scores=Scores(scores, filters, gate),
            quality=q,
        )
        return sample, vectors["question"]
