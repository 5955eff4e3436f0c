"""Continuous batching: calls from several threads decoded together in one llama.cpp context."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from telesynth_tui.inference.base import CallContext, Completion, SamplingParams
from telesynth_tui.inference.generator import GeneratorError, LlamaGenerator
from telesynth_tui.inference.scheduler import BatchScheduler
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
TASKS = [
    "Write a troubleshooting question.",
    "Which counter shows RACH failures?",
    "Why do RRC setups fail?",
    "Name one check.",
]


@pytest.fixture(scope="module")
def generator() -> Iterator[LlamaGenerator]:
    gen = LlamaGenerator(SHIPPED_GGUF, "tiny-telesynth", n_ctx=512)
    yield gen
    gen.close()


def messages(task: str) -> list[dict[str, str]]:
    context = "[1] PRACH root sequence index collides with a neighbour cell. [2] RRC setup fails."
    return [
        {"role": "system", "content": "You write training data for RAN engineers."},
        {"role": "user", "content": f"Context:\n{context}\n\n{task}"},
    ]


def in_threads(
    scheduler: BatchScheduler, params: SamplingParams, contexts: list[CallContext]
) -> list[Completion]:
    """Every task completed from a thread of its own, at the same time."""
    model = scheduler.model()
    results: list[Completion | None] = [None] * len(contexts)

    def work(i: int) -> None:
        results[i] = model.complete(messages(TASKS[i]), params, contexts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(contexts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


@pytest.mark.parametrize("schema", [None, SCHEMA])
def test_batched_output_equals_sequential_at_temperature_zero(
    generator: LlamaGenerator, schema: dict | None
) -> None:
    tokens = 48 if schema is None else 160  # room for complete JSON
    params = SamplingParams(max_tokens=tokens, json_schema=schema, reuse_prompt_cache=False)
    sequential = [generator.complete(messages(t), params).text for t in TASKS]
    seen: list[list[str]] = [[] for _ in TASKS]
    contexts = [CallContext(on_token=seen[i].append) for i in range(len(TASKS))]
    with BatchScheduler(generator, n_seq=len(TASKS), n_ctx_seq=256) as scheduler:
        results = in_threads(scheduler, params, contexts)
    assert [r.text for r in results] == sequential
    assert ["".join(pieces) for pieces in seen] == sequential
    assert max(r.metrics.extra["mean_batch_size"] for r in results) > 1  # decoded together
    for r, ctx in zip(results, contexts, strict=True):
        m = r.metrics
        assert ctx.metrics == [m]
        assert m.prompt_tokens > 0 and m.output_tokens > 0 and m.ttft_s is not None
        assert m.extra["batched"] and m.extra["mean_batch_size"] >= 1
        assert m.cpu_s > 0 and m.energy_j > 0
        if schema is not None:
            json.loads(r.text)


def test_more_calls_than_slots_wait_for_a_free_slot(generator: LlamaGenerator) -> None:
    params = SamplingParams(max_tokens=24)
    sequential = [generator.complete(messages(t), params).text for t in TASKS]
    with BatchScheduler(generator, n_seq=2, n_ctx_seq=256) as scheduler:
        results = in_threads(scheduler, params, [CallContext() for _ in TASKS])
    assert [r.text for r in results] == sequential


def test_a_slot_reuses_the_prefix_it_holds(generator: LlamaGenerator) -> None:
    params = SamplingParams(max_tokens=8)
    with BatchScheduler(generator, n_seq=1, n_ctx_seq=256) as scheduler:
        model = scheduler.model()
        first = model.complete(messages(TASKS[0]), params)
        again = model.complete(messages(TASKS[1]), params)
    assert first.metrics.extra["prefix_reused_tokens"] == 0
    shared = len(generator.tokenize(generator.render(messages(""))[:-40]))
    assert again.metrics.extra["prefix_reused_tokens"] >= shared // 2
    assert again.text == generator.complete(messages(TASKS[1]), params).text


def test_each_call_cancels_within_a_token(generator: LlamaGenerator) -> None:
    params = SamplingParams(max_tokens=64, stop_at_eos=False)
    steps: list[int] = []
    contexts = [
        CallContext(cancel=lambda: steps.append(1) or len(steps) >= 6),
        CallContext(),
    ]
    with BatchScheduler(generator, n_seq=2, n_ctx_seq=256) as scheduler:
        cancelled, other = in_threads(scheduler, params, contexts)
    assert cancelled.cancelled and cancelled.metrics.output_tokens < 8
    assert not other.cancelled and other.metrics.output_tokens == 64


def test_a_prompt_too_long_is_refused(generator: LlamaGenerator) -> None:
    with (
        BatchScheduler(generator, n_seq=1, n_ctx_seq=32) as scheduler,
        pytest.raises(GeneratorError, match="does not fit the 32-token context"),
    ):
        scheduler.model().complete(messages(TASKS[0]), SamplingParams(max_tokens=4))
