"""Customized RAGAS scoring with a local judge: ragas's LLM metrics (faithfulness, answer
relevancy, context precision, context recall) run through a registered GGUF model and the ONNX
encoder, fully offline (telemetry off). ragas hands the judge the pydantic model of the answer
it expects; the judge's decoding is constrained to that model's JSON schema."""

from __future__ import annotations

import asyncio
import math
import os
import warnings
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.generator import Generator, SamplingParams
from telesynth_tui.inference.metrics import CallMetrics

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from ragas.embeddings.base import BaseRagasEmbedding
    from ragas.llms.base import InstructorBaseRagasLLM
    from ragas.metrics.collections import (
        AnswerRelevancy,
        ContextPrecision,
        ContextRecall,
        Faithfulness,
    )

Model = TypeVar("Model", bound=BaseModel)


class JudgeError(ValueError):
    """The judge's output did not fit the model ragas asked for."""


def _bounded(schema: Any, max_chars: int = 400, max_items: int = 8) -> Any:
    """The pydantic schema with every string and array bounded, so decoding always ends."""
    if isinstance(schema, dict):
        out = {k: _bounded(v, max_chars, max_items) for k, v in schema.items()}
        if out.get("type") == "string":
            out.setdefault("maxLength", max_chars)
        if out.get("type") == "array":
            out.setdefault("maxItems", max_items)
        return out
    if isinstance(schema, list):
        return [_bounded(v, max_chars, max_items) for v in schema]
    return schema


class LocalJudgeLLM(InstructorBaseRagasLLM):
    """A registered GGUF model as ragas's LLM, with schema-constrained JSON output."""

    def __init__(self, generator: Generator, max_tokens: int = 384) -> None:
        self.generator = generator
        self.max_tokens = max_tokens
        self.calls: list[CallMetrics] = []

    def generate(self, prompt: str, response_model: type[Model]) -> Model:
        schema = _bounded(response_model.model_json_schema())
        params = SamplingParams(max_tokens=self.max_tokens, json_schema=schema)
        text = "".join(self.generator.stream([{"role": "user", "content": prompt}], params))
        if self.generator.last_metrics is not None:
            self.calls.append(self.generator.last_metrics)
        try:
            return response_model.model_validate_json(text)
        except ValidationError as exc:
            raise JudgeError(f"{response_model.__name__}: {exc.errors()[0]['msg']}") from None

    async def agenerate(self, prompt: str, response_model: type[Model]) -> Model:
        return self.generate(prompt, response_model)


class OnnxRagasEmbeddings(BaseRagasEmbedding):
    """The ONNX encoder as ragas's embeddings."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder

    def embed_text(self, text: str, **kwargs: Any) -> list[float]:
        return self.encoder.embed([text])[0].tolist()

    async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
        return self.embed_text(text)

    def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return self.encoder.embed(list(texts)).tolist()

    async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return self.embed_texts(texts)


class JudgeScorer:
    """ragas LLM metrics with the local judge, on top of the fast scores."""

    def __init__(self, fast: Any, generator: Generator, encoder: Any) -> None:
        self.fast = fast
        self.name = f"ragas-llm:{generator.name}"
        self.llm = LocalJudgeLLM(generator)
        embeddings = OnnxRagasEmbeddings(encoder)
        self.metrics = {
            "llm_faithfulness": Faithfulness(llm=self.llm),
            "llm_answer_relevancy": AnswerRelevancy(
                llm=self.llm, embeddings=embeddings, strictness=1
            ),
            "llm_context_precision": ContextPrecision(llm=self.llm),
            "llm_context_recall": ContextRecall(llm=self.llm),
        }
        self._loop = asyncio.new_event_loop()

    def close(self) -> None:
        self._loop.close()
        self.fast.close()

    def _arguments(self, name: str, question: str, answer: str, contexts: list[str],
                   references: list[str]) -> dict[str, Any]:  # fmt: skip
        reference = answer if not references else " ".join(references)
        if name == "llm_faithfulness":
            return {"user_input": question, "response": answer, "retrieved_contexts": contexts}
        if name == "llm_answer_relevancy":
            return {"user_input": question, "response": answer}
        if name == "llm_context_precision":
            return {"user_input": question, "reference": reference,
                    "retrieved_contexts": contexts}  # fmt: skip
        return {"user_input": question, "retrieved_contexts": contexts, "reference": reference}

    def score(
        self,
        question_vec: np.ndarray,
        answer_vec: np.ndarray,
        answer: str,
        contexts: list[str],
        references: list[str],
        question: str = "",
    ) -> dict[str, Any]:
        scores: dict[str, Any] = self.fast.score(
            question_vec, answer_vec, answer, contexts, references
        )
        errors: dict[str, str] = {}
        self.llm.calls = []
        for name, metric in self.metrics.items():
            args = self._arguments(name, question, answer, contexts, references)
            try:
                value = float(self._loop.run_until_complete(metric.ascore(**args)).value)
            except (TelesynthError, JudgeError, ValueError, TypeError, KeyError) as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"[:200]
                continue
            if not math.isnan(value):
                scores[name] = round(value, 4)
            else:
                errors[name] = "no statements to judge"
        if errors:
            scores["judge_errors"] = errors
        scores["judge_calls"] = [m.to_dict() for m in self.llm.calls]
        return scores
