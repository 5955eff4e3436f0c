"""Batched decoding on the embedded SmolLM2-135M-Instruct Q4_1 GGUF: aggregate decode tokens/s of
N calls made at the same time from N threads and decoded together by the batch scheduler (one
llama.cpp context), against one call, same threads, with
the pipeline's JSON constraint (llguidance) on every sequence. Sizes are interleaved and
repeated; medians are reported. Contexts are short (about 120 words) so that the prefill of 8
prompts stays cheap on a busy machine; the decode steps are what is measured.
Results: bench/results/batch.json and .md.
Run: PYTHONPATH=. .venv/bin/python bench/batch.py [--sizes 1,2,4,8] [--repeats 2] [--tokens 48]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from smollm2_models import smollm2_entry

from telesynth_tui.inference.generator import LlamaGenerator, SamplingParams
from telesynth_tui.inference.metrics import CallMetrics
from telesynth_tui.inference.scheduler import BatchScheduler, complete_together
from telesynth_tui.modelkit.bench import (
    PIPELINE_SCHEMA,
    pipeline_contexts,
    pipeline_messages,
    threads_label,
)

RESULTS = Path(__file__).parent / "results"
KG = Path(__file__).resolve().parent.parent / "kg"


def aggregate_decode(metrics: list[CallMetrics]) -> float:
    """Tokens after each call's first over the joint decode time: from the last first token
    (every prefill done) to the last token (calls submitted at the same time)."""
    span = max(m.wall_s for m in metrics) - max(m.ttft_s or 0.0 for m in metrics)
    tokens = sum(max(0, m.output_tokens - 1) for m in metrics)
    return round(tokens / span, 2) if span > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,2,4,8")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    entry = smollm2_entry()
    generator = LlamaGenerator(entry.path, entry.name, threads=args.threads, n_ctx=2048)
    contexts = pipeline_contexts(KG, max(sizes), words=120)
    conversations = [pipeline_messages(c) for c in contexts]
    params = SamplingParams(max_tokens=args.tokens, json_schema=PIPELINE_SCHEMA, stop_at_eos=False)
    rates: dict[int, list[float]] = {n: [] for n in sizes}
    valid: dict[int, list[bool]] = {n: [] for n in sizes}
    schedulers = {n: BatchScheduler(generator, n, n_ctx_seq=1024) for n in sizes}
    try:
        for r in range(args.repeats):
            for n in sizes:
                done = complete_together(schedulers[n].model(), conversations[:n], params)
                rate = aggregate_decode([c.metrics for c in done])
                rates[n].append(rate)
                valid[n] += [c.stop_reason == "eos" for c in done]
                print(f"repeat {r + 1}: {n} sequences: {rate} tok/s aggregate", flush=True)
    finally:
        for s in schedulers.values():
            s.close()
        generator.close()
    single = statistics.median(rates[sizes[0]])
    rows = [
        {
            "sequences": n,
            "aggregate_decode_tok_s": round(statistics.median(rates[n]), 1),
            "runs": rates[n],
            "speedup_vs_first": round(statistics.median(rates[n]) / single, 2),
        }
        for n in sizes
    ]
    command = (
        f"PYTHONPATH=. .venv/bin/python bench/batch.py --sizes {args.sizes} "
        f"--repeats {args.repeats} --tokens {args.tokens}"
    )
    results = {
        "model": entry.name,
        "threads": threads_label(args.threads),
        "prompt_tokens": [c.metrics.prompt_tokens for c in done],
        "max_tokens": args.tokens,
        "rows": rows,
        "command": command,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# Batched decoding ({entry.name}, threads {results['threads']})",
        "",
        "| sequences | aggregate decode tok/s (median) | runs | × first size |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['sequences']} | {r['aggregate_decode_tok_s']} | {r['runs']} "
        f"| {r['speedup_vs_first']} |"
        for r in rows
    ]
    lines += ["", f"Command: `{command}`", ""]
    (args.out / "batch.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
