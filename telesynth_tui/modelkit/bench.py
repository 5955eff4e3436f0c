"""Model benchmarks measured side by side in one run: generators against a bare
llama-cpp-python loop on the same file, threads, context and prompt (R_decode), with and without
a JSON schema (grammar penalty); encoders against bare `session.run` on the same batches (R_enc).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, SamplingParams
from telesynth_tui.inference.energy import EnergyMeter
from telesynth_tui.inference.generator import (
    LlamaGenerator,
    _quiet_stderr,
    auto_threads,
    new_llama,
)
from telesynth_tui.inference.metrics import CallMetrics, decode_rate
from telesynth_tui.inference.registry import ModelEntry

BENCH_MESSAGES = [
    {
        "role": "system",
        "content": "You are a RAN troubleshooting assistant. Answer from the context and cite it.",
    },
    {
        "role": "user",
        "content": (
            "Context: After a PRACH configuration change on an NR cell the RRC Setup Success Rate "
            "fell from 99.2 % to 93.5 %. pmRaAttCbra rose while pmRrcConnEstabAtt stayed flat, and "
            "the root sequence index now equals that of a neighbour cell 4 km away. Uplink RSSI is "
            "normal, no VSWR or synchronisation alarm is active.\n"
            "Write a troubleshooting plan: likely causes, checks with the counters to read, "
            "actions with parameter changes, and how to verify."
        ),
    },
]
BENCH_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "maxLength": 200},
        "answer": {"type": "string", "maxLength": 600},
        "steps": {"type": "array", "items": {"type": "string", "maxLength": 160}, "maxItems": 6},
        "cited": {"type": "array", "items": {"type": "integer"}, "maxItems": 6},
    },
    "required": ["question", "answer", "steps", "cited"],
}


PIPELINE_SYSTEM = (
    "You write training data for RAN engineers. Use only the numbered context. Every answer must "
    "be correct, complete and grounded; cite the context items you used by their numbers."
)
PIPELINE_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 8, "maxLength": 160},
        "causes": {
            "type": "array",
            "minItems": 1,
            "maxItems": 2,
            "items": {"type": "string", "maxLength": 100},
        },
        "checks": {
            "type": "array",
            "minItems": 1,
            "maxItems": 2,
            "items": {"type": "string", "maxLength": 100},
        },
        "actions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 2,
            "items": {"type": "string", "maxLength": 100},
        },
        "verification": {"type": "string", "maxLength": 160},
        "cited": {"type": "array", "maxItems": 4, "items": {"type": "integer"}},
    },
    "required": ["question", "causes", "checks", "actions", "verification", "cited"],
}  # a complete object fits in about 300 tokens
PIPELINE_TASK = (
    "Write one troubleshooting question-answer pair as JSON: the question describes a symptom; "
    "the answer lists likely causes, checks with the KPIs and counters to read, actions with "
    "parameter changes, and how to verify."
)


def pipeline_contexts(kg_dir: Path, count: int, words: int = 520) -> list[list[str]]:
    """`count` contexts of about `words` words (about 900 prompt tokens with the system text
    and task on a 49k vocabulary), each a run of consecutive paragraphs of one bundled runbook,
    as the retriever would hand them to the generator."""
    paragraphs: list[str] = []
    for path in sorted((kg_dir / "docs").rglob("*.md")):
        for para in path.read_text(encoding="utf-8").split("\n\n"):
            text = " ".join(para.split())
            if len(text) > 40 and not text.startswith("#"):
                paragraphs.append(text[:700])
    contexts: list[list[str]] = []
    start = 0
    while len(contexts) < count and paragraphs:
        items: list[str] = []
        n = 0
        while n < words:
            text = paragraphs[start % len(paragraphs)]
            start += 1
            items.append(text)
            n += len(text.split())
        contexts.append(items)
        start += 7  # the next context starts elsewhere
    return contexts


def pipeline_messages(context: list[str], task: str = PIPELINE_TASK) -> list[dict[str, str]]:
    """A generation call as the pipeline lays it out: system text, then the numbered context,
    then the task, so consecutive calls on one context share everything but the task."""
    numbered = "\n".join(f"[{i}] {text}" for i, text in enumerate(context, 1))
    return [
        {"role": "system", "content": PIPELINE_SYSTEM},
        {"role": "user", "content": f"Context:\n{numbered}\n\n{task}"},
    ]


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


class BareLoop:
    """The reference: llama-cpp-python's own generate loop on its own Llama, nothing around it."""

    def __init__(self, path: Path, threads: int, n_ctx: int, n_batch: int) -> None:
        with _quiet_stderr():
            self.llm = new_llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=n_batch,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )

    def run(self, prompt: list[int], max_tokens: int) -> dict[str, float | None]:
        self.llm.reset()
        t0 = time.perf_counter()
        t_first = t_last = None
        n = 0
        for _ in self.llm.generate(prompt, temp=0.0, top_k=40, top_p=0.95, repeat_penalty=1.0):
            now = time.perf_counter()
            t_first = t_first or now
            t_last = now
            n += 1
            if n >= max_tokens:
                break
        return {
            "output_tokens": n,
            "ttft_s": (t_first - t0) if t_first else None,
            "decode_tok_s": decode_rate(n, t_first, t_last),
        }

    def close(self) -> None:
        self.llm.close()


def bench_generator(
    entry: ModelEntry,
    threads: int | None,
    n_ctx: int,
    n_batch: int,
    energy: EnergyMeter,
    runs: int = 5,
    max_tokens: int = 256,
    progress: Callable[[str], None] = lambda _: None,
    kg_dir: Path | None = None,
) -> dict[str, Any]:
    """Runs interleaved (wrapper with schema through llguidance, through llama.cpp's grammar,
    wrapper free, bare loop) so drift hits all alike. The prompt is pipeline-shaped (system text,
    a ~900-token context of the bundled runbooks, the task) with a per-type-like schema; each
    run takes another context. Each run's free, grammar and bare generations produce as many
    tokens as its llguidance generation did, so the rates compare decoding at the same context
    lengths."""
    generator = LlamaGenerator(entry.path, entry.name, threads, n_ctx, n_batch, energy=energy)
    bare = BareLoop(entry.path, generator.threads, generator.n_ctx, n_batch)
    free: list[CallMetrics] = []
    constrained: list[CallMetrics] = []
    grammar: list[CallMetrics] = []
    reference: list[dict[str, float | None]] = []
    valid = grammar_valid = truncated = 0
    contexts = pipeline_contexts(kg_dir or Path(__file__).resolve().parents[2] / "kg", runs)
    prompt_lengths: list[int] = []
    try:
        warm = generator.tokenize(generator.render(BENCH_MESSAGES))
        generator.complete_tokens(warm, SamplingParams(max_tokens=8))  # warm-up
        bare.run(warm, 8)
        for i in range(runs):
            progress(f"{entry.name}: run {i + 1}/{runs}")
            messages = pipeline_messages(contexts[i % len(contexts)])
            budget = min(max_tokens, generator.n_ctx // 2)
            prompt = fit_prompt(generator, messages, generator.n_ctx - budget)
            prompt_lengths.append(len(prompt))
            generator.json_engine = "llguidance"
            json_params = SamplingParams(max_tokens=budget, json_schema=PIPELINE_SCHEMA)
            done = generator.complete_tokens(prompt, json_params)
            constrained.append(done.metrics)
            valid += _is_json(done.text)
            truncated += done.stop_reason == "length"
            n = max(2, done.metrics.output_tokens)
            generator.json_engine = "llama-grammar"
            done = generator.complete_tokens(prompt, json_params)
            grammar.append(done.metrics)
            grammar_valid += _is_json(done.text)
            generator.json_engine = "llguidance"
            free_params = SamplingParams(max_tokens=n, stop_at_eos=False, reuse_prompt_cache=False)
            free.append(generator.complete_tokens(prompt, free_params).metrics)
            reference.append(bare.run(prompt, n))
    finally:
        generator.close()
        bare.close()
    decode = _median([m.decode_tok_s for m in free])
    bare_decode_rate = _median([b["decode_tok_s"] for b in reference])
    json_decode = _median([m.decode_tok_s for m in constrained])
    grammar_decode = _median([m.decode_tok_s for m in grammar])
    return {
        "model": entry.name,
        "path": str(entry.path),
        "quantization": entry.quantization,
        "parameters": entry.parameters,
        "size_mb": round(entry.path.stat().st_size / 1e6, 2),
        "threads": generator.threads,
        "threads_auto": generator.threads_auto,
        "n_ctx": generator.n_ctx,
        "prompt": "pipeline-shaped: system text, bundled-runbook context, troubleshooting task",
        "prompt_tokens": _median(prompt_lengths),
        "output_tokens": _median([m.output_tokens for m in free]),
        "max_tokens": max_tokens,
        "runs": runs,
        "ttft_s": _median([m.ttft_s for m in free]),
        "bare_ttft_s": _median([b["ttft_s"] for b in reference]),
        "prefill_tok_s": _median([m.prefill_tok_s for m in free]),
        "decode_tok_s": decode,
        "llama_decode_tok_s": _median([m.extra.get("llama_decode_tok_s") for m in free]),
        "bare_decode_tok_s": bare_decode_rate,
        "R_decode": _ratio(decode, bare_decode_rate),
        "json_decode_tok_s": json_decode,
        "json_output_tokens": _median([m.output_tokens for m in constrained]),
        "json_valid": f"{valid}/{runs}",
        "json_cut_at_max_tokens": truncated,
        "grammar_penalty": _ratio(json_decode, decode),
        "llama_grammar_decode_tok_s": grammar_decode,
        "llama_grammar_valid": f"{grammar_valid}/{runs}",
        "llama_grammar_penalty": _ratio(grammar_decode, decode),
        "joules_per_token": _median([m.joules_per_token for m in free]),
        "energy_source": free[0].energy_source,
        "energy_detail": free[0].energy_detail,
        "peak_rss_mb": round(max(m.peak_rss_mb for m in free + constrained), 1),
    }


def fit_prompt(generator: LlamaGenerator, messages: list[dict[str, str]], limit: int) -> list[int]:
    """The prompt tokens of `messages`, dropping trailing context items until it fits `limit`."""
    prompt = generator.tokenize(generator.render(messages))
    while len(prompt) > limit and "\n[" in messages[-1]["content"]:
        head, _, task = messages[-1]["content"].rpartition("\n\n")
        head = head.rsplit("\n[", 1)[0]
        messages = [*messages[:-1], {"role": "user", "content": f"{head}\n\n{task}"}]
        prompt = generator.tokenize(generator.render(messages))
    return prompt


def threads_label(setting: int | None) -> str:
    """How many llama.cpp threads a setting gives, and whether they were chosen automatically."""
    return f"{auto_threads()} (auto: every core)" if setting is None else f"{setting} (set)"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def bench_encoder(
    encoder: Any,
    texts: Sequence[str],
    runs: int = 3,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Encoder sentences/s through the wrapper and through bare session.run on the same batches."""
    encodings = encoder.tokenizer.encode_batch(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    batches = [
        [encodings[i] for i in order[s : s + encoder.batch_size]]
        for s in range(0, len(order), encoder.batch_size)
    ]
    encoder.embed(texts[: encoder.batch_size])  # warm-up
    wrapper_s, bare_s = [], []
    ctx = CallContext()
    for i in range(runs):
        progress(f"{encoder.model_id}: run {i + 1}/{runs}")
        t0 = time.perf_counter()
        vectors = encoder.embed(texts, ctx)
        wrapper_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for batch in batches:
            encoder._run(batch)
        bare_s.append(time.perf_counter() - t0)
    wrapper = len(texts) / statistics.median(wrapper_s)
    bare = len(texts) / statistics.median(bare_s)
    metrics = ctx.metrics[-1] if ctx.metrics else None
    return {
        "model": encoder.model_id,
        "sentences": len(texts),
        "batch_size": encoder.batch_size,
        "sentences_per_s": round(wrapper, 1),
        "bare_sentences_per_s": round(bare, 1),
        "R_enc": _ratio(wrapper, bare),
        "joules_per_sentence": metrics.energy_j / len(texts) if metrics else None,
        "energy_source": metrics.energy_source if metrics else "",
        "peak_rss_mb": round(metrics.peak_rss_mb, 1) if metrics else None,
        "vectors": vectors,
    }


def corpus_sentences(kg_dir: Path, limit: int = 512) -> list[str]:
    """Sentences and short passages from the bundled documents (never evaluation data)."""
    out: list[str] = []
    for path in sorted((kg_dir / "docs").rglob("*.md")):
        for para in path.read_text(encoding="utf-8").split("\n\n"):
            text = " ".join(para.split())
            if len(text) > 20 and not text.startswith(("#", "|")):
                out.append(text[:600])
    step = max(1, len(out) // limit)
    return out[::step][:limit]


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"mean": round(float(cos.mean()), 4), "min": round(float(cos.min()), 4)}


def run_model_bench(
    project: Any,
    names: Sequence[str] = (),
    runs: int = 5,
    max_tokens: int = 256,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Benchmark the named models (default: every registered one) with the project's settings."""
    registry = project.registry()
    entries = [registry.get(n) for n in names] if names else registry.entries()
    m = project.settings.models
    results: dict[str, Any] = {
        "generators": [],
        "encoders": [],
        "settings": {
            "llama_threads": threads_label(m.llama_threads),
            "onnx_threads": m.onnx_threads,
            "n_ctx": m.n_ctx,
            "n_batch": m.n_batch,
        },
    }
    texts: list[str] | None = None
    for entry in entries:
        problem = registry.check(entry)
        if problem:
            raise TelesynthError(problem)
        if entry.format == "gguf":
            results["generators"].append(
                bench_generator(
                    entry,
                    m.llama_threads,
                    m.n_ctx,
                    m.n_batch,
                    project.energy_meter(),
                    runs,
                    max_tokens,
                    progress,
                    project.settings.bundled_kg,
                )
            )
        elif entry.remote:
            from telesynth_tui.modelkit.bench_remote import bench_remote

            contexts = pipeline_contexts(project.settings.bundled_kg, runs)
            results["generators"].append(
                bench_remote(
                    entry, contexts, pipeline_messages, PIPELINE_SCHEMA, runs, max_tokens, progress
                )
            )
        elif "encoder" in entry.roles:
            texts = texts or corpus_sentences(project.settings.bundled_kg)
            result = bench_encoder(project.encoder(entry.name), texts, runs, progress)
            result.pop("vectors")
            results["encoders"].append(result)
    return results


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["# Model benchmark", ""]
    settings = results.get("settings", {})
    if settings:
        lines += [", ".join(f"{k} = {v}" for k, v in settings.items()), ""]
    gens = results.get("generators", [])
    if gens:
        lines += [
            "| model | quant | params | TTFT ms | prefill tok/s | decode tok/s | bare tok/s "
            "| R_decode | JSON tok/s | grammar penalty | llama.cpp grammar penalty "
            "| J/token (source) | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for g in gens:
            lines.append(
                f"| {g['model']} | {g['quantization']} | {g['parameters'] / 1e6:.1f}M "
                f"| {_fmt(g['ttft_s'], 1000)} | {_fmt(g['prefill_tok_s'])} "
                f"| {_fmt(g['decode_tok_s'])} | {_fmt(g['bare_decode_tok_s'])} | {g['R_decode']} "
                f"| {_fmt(g['json_decode_tok_s'])} | {g['grammar_penalty']} "
                f"| {g.get('llama_grammar_penalty')} "
                f"| {_fmt(g['joules_per_token'], 1, 5)} ({g['energy_source']}) "
                f"| {g['peak_rss_mb']} |"
            )
        sources = {g["energy_detail"] for g in gens}
        lines += ["", *(f"Energy: {s}" for s in sorted(sources)), ""]
        served = [g for g in gens if "in_flight_speedup" in g]
        if served:
            from telesynth_tui.modelkit.bench_remote import summary_line

            lines += [f"Requests in flight: {summary_line(g)}" for g in served] + [""]
    encs = results.get("encoders", [])
    if encs:
        keys = ("torch_sentences_per_s", "speedup_vs_torch", "cosine_vs_torch")
        extra = [k for k in keys if any(k in e for e in encs)]
        lines += [
            "| encoder | sentences/s | bare session.run/s | R_enc | J/sentence (source) |"
            + "".join(f" {k} |" for k in extra),
            "|---|---|---|---|---|" + "---|" * len(extra),
        ]
        for e in encs:
            row = (
                f"| {e['model']} | {e['sentences_per_s']} | {e['bare_sentences_per_s']} "
                f"| {e['R_enc']} | {_fmt(e['joules_per_sentence'], 1, 5)} "
                f"({e['energy_source']}) |"
            )
            row += "".join(f" {e.get(k, '')} |" for k in extra)
            lines.append(row)
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


# --- saved results (PROJECT/bench/*.json), so benchmarks of earlier sessions stay visible --------

BENCH_DIR = "bench"


def save_results(project_dir: Path, results: dict[str, Any], created_at: str = "") -> Path:
    """Write one benchmark's results as PROJECT/bench/bench-<YYYYMMDDTHHMMSS>.json (atomically;
    a second result in the same second gets a numbered name)."""
    from telesynth_tui.infra import now, write_atomic

    created_at = created_at or now()
    folder = project_dir / BENCH_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = "bench-" + "".join(c for c in created_at[:19] if c.isalnum())
        path = folder / f"{stem}.json"
        n = 1
        while path.exists():
            n += 1
            path = folder / f"{stem}-{n}.json"
        record = {"created_at": created_at, **results}
        write_atomic(path, json.dumps(record, indent=2, default=str) + "\n")
    except OSError as exc:
        raise TelesynthError(
            f"{folder}: cannot save the benchmark: {exc.strerror or exc}"
        ) from None
    return path


def load_results(project_dir: Path) -> list[dict[str, Any]]:
    """The saved benchmark results of a project, oldest first; files that are not readable
    benchmark JSON are left out."""
    found = []
    for path in (project_dir / BENCH_DIR).glob("bench-*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(record, dict):
            record.setdefault("generators", [])
            record.setdefault("encoders", [])
            found.append(((str(record.get("created_at", "")), len(path.name), path.name), record))
    return [record for _, record in sorted(found, key=lambda pair: pair[0])]
