"""Throughput features of the generator: threads, shared-prefix KV reuse."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from telesynth_tui.inference.bench import threads_label
from telesynth_tui.inference.generator import LlamaGenerator, SamplingParams, auto_threads
from tests.conftest import SHIPPED_GGUF

SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "maxLength": 60},
        "cited": {"type": "array", "maxItems": 3, "items": {"type": "integer"}},
    },
    "required": ["question", "cited"],
}


@pytest.fixture(scope="module")
def generator() -> Iterator[LlamaGenerator]:
    gen = LlamaGenerator(SHIPPED_GGUF, "tiny-telesynth", threads=None, n_ctx=512)
    yield gen
    gen.close()


def messages(task: str) -> list[dict[str, str]]:
    context = "[1] PRACH root sequence index collides with a neighbour cell. [2] RRC setup fails."
    return [
        {"role": "system", "content": "You write training data for RAN engineers."},
        {"role": "user", "content": f"Context:\n{context}\n\n{task}"},
    ]


def test_threads_default_to_every_core(generator: LlamaGenerator) -> None:
    assert generator.threads == auto_threads() >= 1
    assert generator.threads_auto
    generator.generate(messages("Say hi."), SamplingParams(max_tokens=3))
    assert generator.last_metrics is not None
    assert generator.last_metrics.extra["threads"] == generator.threads
    assert threads_label(None).startswith(f"{auto_threads()} (auto")
    assert threads_label(3) == "3 (set)"


@pytest.mark.parametrize("schema", [None, SCHEMA])
def test_shared_prefix_is_reused_and_output_unchanged(
    generator: LlamaGenerator, schema: dict | None
) -> None:
    cold = SamplingParams(max_tokens=160, json_schema=schema, reuse_prompt_cache=False)
    warm = SamplingParams(max_tokens=160, json_schema=schema)
    first = generator.generate(messages("Write a question as JSON."), cold)
    assert first.metrics.extra["prefix_reused_tokens"] == 0
    other = generator.generate(messages("Write a troubleshooting question."), warm)
    shared = other.metrics.extra["prefix_reused_tokens"]
    prompt = generator.tokenize(generator.render(messages("Write a troubleshooting question.")))
    assert 20 < shared < len(prompt)
    assert other.metrics.extra["llama_prefill_tokens"] == len(prompt) - shared
    again = generator.generate(messages("Write a question as JSON."), warm)
    assert again.metrics.extra["prefix_reused_tokens"] == shared
    assert again.text == first.text
    if schema is not None:
        json.loads(again.text)
