"""ragas's LLM metrics through the LLM scorer, with a scripted judge model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from telesynth_tui.inference.base import CallContext, Message, SamplingParams
from telesynth_tui.pipeline.llm_scoring import LlmScorer, RagasLLM, _bounded
from telesynth_tui.pipeline.scoring import FastScorer, quality

from .fakes import FakeModel, HashEncoder


def instance(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> Any:
    """A valid JSON value for a schema: what a capable judge agreeing with everything writes."""
    if "$ref" in schema:
        return instance(defs[schema["$ref"].split("/")[-1]], defs, name)
    for key in ("anyOf", "allOf"):
        if key in schema:
            return instance(schema[key][0], defs, name)
    kind = schema.get("type")
    if kind == "object":
        return {k: instance(v, defs, k) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [instance(schema["items"], defs, name)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False  # e.g. "noncommittal": the answer commits
    if name == "question":
        return "What can VSWR Over Threshold indicate?"
    return "VSWR Over Threshold indicates antenna feeder damage."


def agreeing(messages: Sequence[Message], params: SamplingParams) -> str:
    """What a capable judge agreeing with everything writes under the schema it is given."""
    schema = params.json_schema or {}
    return json.dumps(instance(schema, schema.get("$defs", {})))


def agreeing_judge() -> FakeModel:
    return FakeModel(
        agreeing, "agreeing-judge", n_ctx=8192, figures=lambda _t, _n: {"output_tokens": 12}
    )


def test_ragas_llm_metrics_run_through_the_local_judge() -> None:
    judge = agreeing_judge()
    encoder = HashEncoder()
    scorer = LlmScorer(FastScorer(), judge, encoder)
    question = "What can VSWR Over Threshold indicate?"
    answer = "VSWR Over Threshold indicates antenna feeder damage."
    contexts = ["VSWR Over Threshold indicates antenna feeder damage.", "The radio unit raises it."]
    v = encoder.embed([question, answer])
    ctx = CallContext()
    scores = scorer.score(v[0], v[1], answer, contexts, contexts[:1], question=question, ctx=ctx)
    for key in (
        "llm_faithfulness",
        "llm_answer_relevancy",
        "llm_context_precision",
        "llm_context_recall",
    ):
        assert key in scores, scores.get("judge_errors")
        assert 0.0 <= scores[key] <= 1.0
    assert scores["llm_faithfulness"] == 1.0 and scores["llm_context_recall"] == 1.0
    assert quality(scores) > 0.5 and len([m for m in ctx.metrics if m.kind == "generate"]) >= 4
    assert "judge_calls" not in scores  # the call metrics go to the call context
    # every schema the judge decoded under was bounded, so decoding always terminates
    for schema in judge.schemas:
        assert schema is not None
        text = str(schema)
        assert "'type': 'string'" not in text or "maxLength" in text
    scorer.close()


def test_judge_output_that_does_not_fit_is_an_error_not_a_crash() -> None:
    garbage = FakeModel('{"unexpected": true}', "agreeing-judge", n_ctx=8192)
    scorer = LlmScorer(FastScorer(), garbage, HashEncoder())
    v = np.ones((2, 64), dtype=np.float32) / 8
    scores = scorer.score(v[0], v[1], "An answer.", ["A context."], [], question="A question?")
    metrics = {
        "llm_faithfulness",
        "llm_answer_relevancy",
        "llm_context_precision",
        "llm_context_recall",
    }
    assert set(scores["judge_errors"]) == metrics
    assert "answer_relevancy" in scores  # the fast scores are still there
    assert _bounded({"type": "array", "items": {"type": "string"}})["items"]["maxLength"] == 400
    assert isinstance(RagasLLM(garbage).max_tokens, int)
