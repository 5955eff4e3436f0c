"""ragas's LLM metrics through the local judge interface, with a scripted judge model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from telesynth_tui.inference.generator import SamplingParams
from telesynth_tui.inference.metrics import CallMetrics
from telesynth_tui.pipeline.judge import JudgeScorer, LocalJudgeLLM, _bounded
from telesynth_tui.pipeline.scoring import FastScorer, quality

from .test_retrieval import HashEncoder


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


class AgreeingJudge:
    name = "agreeing-judge"
    n_ctx = 8192

    def __init__(self) -> None:
        self.last_metrics: CallMetrics | None = None
        self.schemas: list[dict[str, Any]] = []

    def stream(self, messages: Any, params: SamplingParams, cancel: Any = None) -> Iterator[str]:
        import json

        schema = params.json_schema or {}
        self.schemas.append(schema)
        self.last_metrics = CallMetrics(self.name, "generate", output_tokens=12, stop_reason="eos")
        yield json.dumps(instance(schema, schema.get("$defs", {})))


def test_ragas_llm_metrics_run_through_the_local_judge() -> None:
    judge = AgreeingJudge()
    encoder = HashEncoder()
    scorer = JudgeScorer(FastScorer(), judge, encoder)  # type: ignore[arg-type]
    question = "What can VSWR Over Threshold indicate?"
    answer = "VSWR Over Threshold indicates antenna feeder damage."
    contexts = ["VSWR Over Threshold indicates antenna feeder damage.", "The radio unit raises it."]
    v = encoder.embed([question, answer])
    scores = scorer.score(v[0], v[1], answer, contexts, contexts[:1], question=question)
    for key in ("llm_faithfulness", "llm_answer_relevancy", "llm_context_precision",
                "llm_context_recall"):  # fmt: skip
        assert key in scores, scores.get("judge_errors")
        assert 0.0 <= scores[key] <= 1.0
    assert scores["llm_faithfulness"] == 1.0 and scores["llm_context_recall"] == 1.0
    assert quality(scores) > 0.5 and len(scores["judge_calls"]) >= 4
    # every schema the judge decoded under was bounded, so decoding always terminates
    for schema in judge.schemas:
        text = str(schema)
        assert "'type': 'string'" not in text or "maxLength" in text
    scorer.close()


def test_judge_output_that_does_not_fit_is_an_error_not_a_crash() -> None:
    class Garbage(AgreeingJudge):
        def stream(
            self, messages: Any, params: SamplingParams, cancel: Any = None
        ) -> Iterator[str]:
            self.last_metrics = CallMetrics(self.name, "generate")
            yield '{"unexpected": true}'

    scorer = JudgeScorer(FastScorer(), Garbage(), HashEncoder())  # type: ignore[arg-type]
    v = np.ones((2, 64), dtype=np.float32) / 8
    scores = scorer.score(v[0], v[1], "An answer.", ["A context."], [], question="A question?")
    metrics = {"llm_faithfulness", "llm_answer_relevancy", "llm_context_precision",
               "llm_context_recall"}  # fmt: skip
    assert set(scores["judge_errors"]) == metrics
    assert "answer_relevancy" in scores  # the fast scores are still there
    assert _bounded({"type": "array", "items": {"type": "string"}})["items"]["maxLength"] == 400
    assert isinstance(LocalJudgeLLM(Garbage()).max_tokens, int)  # type: ignore[arg-type]
