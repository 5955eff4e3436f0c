"""`models bench` for a model on an OpenAI-compatible server: TTFT, decode tokens/s with and
without a JSON schema (the schema penalty), server-reported rates where the server sends them,
and throughput with 1 and with several requests in flight. The pipeline-shaped prompts are the
GGUF bench's; there is no bare loop to compare against (R_decode is left empty) and energy is
not measured."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from telesynth_tui.inference.base import Message, SamplingParams
from telesynth_tui.inference.metrics import ENERGY_NOT_MEASURED, CallMetrics
from telesynth_tui.inference.registry import ModelEntry
from telesynth_tui.inference.remote import RemoteModel, validate

Messages = Callable[[list[str]], list[Message]]


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fitted(model: RemoteModel, build: Messages, context: list[str], budget: int) -> list[Message]:
    """The messages `build` makes of `context`, dropping trailing context items until `budget`
    output tokens fit the model's context."""
    items = list(context)
    messages = build(items)
    while len(items) > 1 and not _fits(model, messages, budget):
        items.pop()
        messages = build(items)
    return messages


def _fits(model: RemoteModel, messages: list[Message], budget: int) -> bool:
    return len(model.tokenize(model.render(messages))) + budget <= model.n_ctx


def throughput(
    model: RemoteModel, prompts: list[list[Message]], in_flight: int, max_tokens: int
) -> dict[str, Any]:
    """Output tokens/s and calls/s over `prompts` with `in_flight` calls at a time (threads)."""
    queue = list(enumerate(prompts))
    lock = threading.Lock()
    done: list[CallMetrics] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                _, messages = queue.pop(0)
            params = SamplingParams(max_tokens=max_tokens, stop_at_eos=False)
            completion = model.complete(messages, params)
            with lock:
                done.append(completion.metrics)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tokens = sum(m.output_tokens for m in done)
    return {
        "in_flight": in_flight,
        "calls": len(done),
        "output_tokens": tokens,
        "wall_s": round(wall, 3),
        "output_tok_s": round(tokens / wall, 2) if wall > 0 else None,
        "calls_per_s": round(len(done) / wall, 3) if wall > 0 else None,
    }


def bench_remote(
    entry: ModelEntry,
    contexts: list[list[str]],
    build: Messages,
    schema: dict[str, Any],
    runs: int = 5,
    max_tokens: int = 256,
    progress: Callable[[str], None] = lambda _: None,
    in_flight: int = 4,
) -> dict[str, Any]:
    """Runs interleaved (with `schema`, then free for as many tokens) on the messages `build`
    makes of `contexts` (the GGUF bench's pipeline-shaped prompts), then the same prompts with 1
    and with `in_flight` requests at a time."""
    model = RemoteModel(
        entry.name,
        entry.url,
        entry.model_id,
        entry.api_key_env,
        entry.context_length,
        max_in_flight=in_flight,
    )
    budget = min(max_tokens, model.n_ctx // 2)
    free: list[CallMetrics] = []
    constrained: list[CallMetrics] = []
    valid = 0
    prompts: list[list[Message]] = []
    try:
        model.complete(build(contexts[0][:1]), SamplingParams(max_tokens=4))  # warm-up
        for i in range(runs):
            progress(f"{entry.name}: run {i + 1}/{runs}")
            messages = fitted(model, build, contexts[i % len(contexts)], budget)
            prompts.append(messages)
            json_params = SamplingParams(max_tokens=budget, json_schema=schema)
            done = model.complete(messages, json_params)
            constrained.append(done.metrics)
            valid += not validate(done.text, schema)
            n = max(2, done.metrics.output_tokens)
            free_params = SamplingParams(max_tokens=n, stop_at_eos=False)
            free.append(model.complete(messages, free_params).metrics)
        progress(f"{entry.name}: 1 and {in_flight} requests in flight")
        short = max(8, min(64, budget))
        sequential = throughput(model, prompts * 2, 1, short)
        parallel = throughput(model, prompts * 2, in_flight, short)
    finally:
        model.close()
    decode = _median([m.decode_tok_s for m in free])
    json_decode = _median([m.decode_tok_s for m in constrained])
    return {
        "model": entry.name,
        "path": entry.url,
        "served_model": model.model_id,
        "server": model.info.kind,
        "quantization": entry.quantization or "served",
        "parameters": entry.parameters,
        "threads": None,
        "n_ctx": model.n_ctx,
        "prompt": "pipeline-shaped: system text, bundled-runbook context, troubleshooting task",
        "prompt_tokens": _median([m.prompt_tokens for m in free]),
        "output_tokens": _median([m.output_tokens for m in free]),
        "max_tokens": max_tokens,
        "runs": runs,
        "ttft_s": _median([m.ttft_s for m in free]),
        "bare_ttft_s": None,
        "prefill_tok_s": _median([m.prefill_tok_s for m in free]),
        "decode_tok_s": decode,
        "server_decode_tok_s": _median([m.extra.get("server_decode_tok_s") for m in free]),
        "bare_decode_tok_s": None,
        "R_decode": None,
        "json_decode_tok_s": json_decode,
        "json_output_tokens": _median([m.output_tokens for m in constrained]),
        "json_valid": f"{valid}/{runs}",
        "json_mode": model.schema_mode,
        "json_cut_at_max_tokens": sum(m.stop_reason == "length" for m in constrained),
        "grammar_penalty": round(json_decode / decode, 3) if json_decode and decode else None,
        "llama_grammar_penalty": None,
        "in_flight_1": sequential,
        f"in_flight_{in_flight}": parallel,
        "in_flight_speedup": (
            round(parallel["output_tok_s"] / sequential["output_tok_s"], 3)
            if parallel["output_tok_s"] and sequential["output_tok_s"]
            else None
        ),
        "joules_per_token": None,
        "energy_source": ENERGY_NOT_MEASURED,
        "energy_detail": f"remote model at {entry.url}: its energy is not measured",
        "peak_rss_mb": None,
    }


def summary_line(result: dict[str, Any]) -> str:
    """One line on the requests-in-flight figures, for the Markdown report."""
    keys = [k for k in result if k.startswith("in_flight_") and k != "in_flight_speedup"]
    parts = [f"{result[k]['in_flight']} in flight {result[k]['output_tok_s']} tok/s" for k in keys]
    speedup = result.get("in_flight_speedup")
    tail = f" (x{speedup})" if speedup else ""
    return f"{result['model']} ({result['server']}): " + ", ".join(parts) + tail
