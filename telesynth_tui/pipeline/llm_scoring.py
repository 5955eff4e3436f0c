"""The LLM scorer: ragas's LLM metrics (faithfulness, answer relevancy, context precision,
context recall) run through a local text model (the run's judge model) and the encoder, fully
offline (telemetry off). ragas hands the model the pydantic model of the answer it expects; its
decoding is constrained to that model's JSON schema."""

from __future__ import annotations

import asyncio
import math
import os
import warnings
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, Encoder, SamplingParams, TextModel
from telesynth_tui.pipeline.scoring import Scorer

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


class RagasOutputError(ValueError):
    """The model's output did not fit the pydantic model ragas asked for."""


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


class RagasLLM(InstructorBaseRagasLLM):
    """A local text model as ragas's LLM, with schema-constrained JSON output. Each call's
    metrics go to the call context of the score in progress (`ctx`)."""

    def __init__(self, model: TextModel, max_tokens: int = 384) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.ctx = CallContext()

    def generate(self, prompt: str, response_model: type[Model]) -> Model:
        schema = _bounded(response_model.model_json_schema())
        params = SamplingParams(max_tokens=self.max_tokens, json_schema=schema)
        text = self.model.complete([{"role": "user", "content": prompt}], params, self.ctx).text
        try:
            return response_model.model_validate_json(text)
        except ValidationError as exc:
            raise RagasOutputError(f"{response_model.__name__}: {exc.errors()[0]['msg']}") from None

    async def agenerate(self, prompt: str, response_model: type[Model]) -> Model:
        return self.generate(prompt, response_model)


class RagasEmbeddings(BaseRagasEmbedding):
    """The encoder as ragas's embeddings; call metrics go to `ctx` like `RagasLLM`'s."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.ctx = CallContext()

    def embed_text(self, text: str, **kwargs: Any) -> list[float]:
        return list(self.encoder.embed([text], self.ctx)[0].tolist())

    async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
        return self.embed_text(text)

    def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return list(self.encoder.embed(list(texts), self.ctx).tolist())

    async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return self.embed_texts(texts)


class LlmScorer(Scorer):
    """ragas's LLM metrics through a local model, on top of the fast scores."""

    def __init__(self, fast: Scorer, model: TextModel, encoder: Encoder) -> None:
        self.fast = fast
        self.name = f"ragas-llm:{model.name}"
        self.llm = RagasLLM(model)
        self.embeddings = embeddings = RagasEmbeddings(encoder)
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

    def _arguments(
        self, name: str, question: str, answer: str, contexts: list[str], references: list[str]
    ) -> dict[str, Any]:
        reference = answer if not references else " ".join(references)
        if name == "llm_faithfulness":
            return {"user_input": question, "response": answer, "retrieved_contexts": contexts}
        if name == "llm_answer_relevancy":
            return {"user_input": question, "response": answer}
        if name == "llm_context_precision":
            return {"user_input": question, "reference": reference, "retrieved_contexts": contexts}
        return {"user_input": question, "retrieved_contexts": contexts, "reference": reference}

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
        ctx = ctx if ctx is not None else CallContext()
        scores: dict[str, Any] = self.fast.score(
            question_vec, answer_vec, answer, contexts, references, ctx=ctx
        )
        errors: dict[str, str] = {}
        self.llm.ctx = self.embeddings.ctx = ctx  # ragas calls back into them
        for name, metric in self.metrics.items():
            args = self._arguments(name, question, answer, contexts, references)
            try:
                value = float(self._loop.run_until_complete(metric.ascore(**args)).value)
            except (TelesynthError, RagasOutputError, ValueError, TypeError, KeyError) as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"[:200]
                continue
            if not math.isnan(value):
                scores[name] = round(value, 4)
            else:
                errors[name] = "no statements to judge"
        if errors:
            scores["judge_errors"] = errors
        return scores
