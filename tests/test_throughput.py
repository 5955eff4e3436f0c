"""Throughput features of the generator: threads, shared-prefix KV reuse."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from telesynth_tui.inference.base import SamplingParams
from telesynth_tui.inference.generator import LlamaGenerator, auto_threads
from telesynth_tui.modelkit.bench import threads_label
from tests.conftest import SHIPPED_GGUF

pytestmark = pytest.mark.real_models  # every test loads the shipped GGUF

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
    done = generator.complete(messages("Say hi."), SamplingParams(max_tokens=3))
    assert done.metrics is not None
    assert done.metrics.extra["threads"] == generator.threads
    assert threads_label(None).startswith(f"{auto_threads()} (auto")
    assert threads_label(3) == "3 (set)"


@pytest.mark.parametrize("schema", [None, SCHEMA])
def test_shared_prefix_is_reused_and_output_unchanged(
    generator: LlamaGenerator, schema: dict | None
) -> None:
    cold = SamplingParams(max_tokens=160, json_schema=schema, reuse_prompt_cache=False)
    warm = SamplingParams(max_tokens=160, json_schema=schema)
    first = generator.complete(messages("Write a question as JSON."), cold)
    assert first.metrics.extra["prefix_reused_tokens"] == 0
    other = generator.complete(messages("Write a troubleshooting question."), warm)
    shared = other.metrics.extra["prefix_reused_tokens"]
    prompt = generator.tokenize(generator.render(messages("Write a troubleshooting question.")))
    assert 20 < shared < len(prompt)
    assert other.metrics.extra["llama_prefill_tokens"] == len(prompt) - shared
    again = generator.complete(messages("Write a question as JSON."), warm)
    assert again.metrics.extra["prefix_reused_tokens"] == shared
    assert again.text == first.text
    if schema is not None:
        json.loads(again.text)


def test_json_strings_refuse_control_characters(generator: LlamaGenerator) -> None:
    from telesynth_tui.inference.json_grammar import TokenMask, llama_tokenizer

    llm = generator.llm
    mask = TokenMask(llama_tokenizer(llm._model.vocab), SCHEMA, llm.n_vocab())
    for token in llm.tokenize(b'{"question": "Why', add_bos=False):
        assert mask.allows(token)
    pieces = [llm.detokenize([t]) for t in range(llm.n_vocab())]
    control = [t for t, p in enumerate(pieces) if p and any(b < 0x20 for b in p)]
    assert control, "the vocabulary has tokens with control characters"
    logits = np.zeros(llm.n_vocab(), dtype=np.float32)
    mask.restrict(logits)
    assert all(logits[t] == -np.inf for t in control)
    assert (logits == 0).sum() > 100  # ordinary text stays allowed


def test_constrained_outputs_parse_and_fit_the_schema(generator: LlamaGenerator) -> None:
    for task in ("Write a question as JSON.", "Which counter shows RACH failures?", "Why?"):
        out = generator.complete(messages(task), SamplingParams(max_tokens=200, json_schema=SCHEMA))
        assert out.metrics.extra["json_engine"] == "llguidance"
        data = json.loads(out.text)
        assert set(data) == {"question", "cited"}
        assert len(data["question"]) <= 60 and len(data["cited"]) <= 3
        assert all(isinstance(c, int) and abs(c) < 10**15 for c in data["cited"])


TASKS = [
    "Write a question as JSON.",
    "Which counter shows RACH failures?",
    "Why do RRC setups fail?",
    "Name one check.",
]


def test_models_bench_measures_pipeline_prompts() -> None:
    from pathlib import Path

    from telesynth_tui.inference.energy import EnergyMeter
    from telesynth_tui.inference.registry import ModelEntry
    from telesynth_tui.modelkit.bench import bench_generator

    entry = ModelEntry("tiny", ["generator"], SHIPPED_GGUF, "gguf", "Q8_0", 2_000_000)
    kg = Path(__file__).resolve().parent.parent / "kg"
    result = bench_generator(entry, None, 512, 256, EnergyMeter(), runs=1, max_tokens=64, kg_dir=kg)
    assert result["threads"] == auto_threads() and result["threads_auto"]
    assert result["prompt"].startswith("pipeline-shaped")
    assert 200 < result["prompt_tokens"] <= 512 - 64
    for key in ("R_decode", "grammar_penalty", "llama_grammar_penalty"):
        assert result[key] is None or result[key] > 0
    assert result["json_valid"].endswith("/1")
