"""TTFT saved by reusing the KV cache of shared prompt prefixes, on pipeline-shaped prompts
(system text, a ~900-token context of the bundled runbooks, then the task) with the embedded
SmolLM2-135M-Instruct Q4_1 GGUF. Per plan: a generation call, then a refinement-like call on the
same context (what a plan's generate → refine → judge calls look like). Each call runs cold
(KV cache dropped, the whole prompt prefilled) and warm (after the plan's previous call), the
two interleaved; medians are reported.
Results: bench/results/prefix.json and .md.
Run: PYTHONPATH=. .venv/bin/python bench/prefix.py [--plans 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from smollm2_models import smollm2_entry

from telesynth_tui.inference.base import SamplingParams
from telesynth_tui.inference.generator import LlamaGenerator
from telesynth_tui.modelkit.bench import (
    PIPELINE_SCHEMA,
    pipeline_contexts,
    pipeline_messages,
    threads_label,
)

RESULTS = Path(__file__).parent / "results"
KG = Path(__file__).resolve().parent.parent / "kg"
REFINE = (
    "Question: Why did the RRC setup success rate fall?\nDraft answer: PRACH collision.\n\n"
    "Rewrite the answer as a step-by-step troubleshooting plan grounded in the context, "
    "keeping the citations. Reply as JSON."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    entry = smollm2_entry()
    generator = LlamaGenerator(entry.path, entry.name, threads=args.threads, n_ctx=2048)
    cold: list[float] = []
    warm: list[float] = []
    reused: list[int] = []
    prompt_tokens: list[int] = []
    try:
        for i, context in enumerate(pipeline_contexts(KG, args.plans)):
            first = pipeline_messages(context)
            second = pipeline_messages(context, REFINE)
            json_params = SamplingParams(max_tokens=4, json_schema=PIPELINE_SCHEMA)
            generator.complete(first, json_params)  # the plan's generation call
            warm_call = generator.complete(second, json_params)  # refine: shared prefix reused
            cold_params = SamplingParams(
                max_tokens=4, json_schema=PIPELINE_SCHEMA, reuse_prompt_cache=False
            )
            cold_call = generator.complete(second, cold_params)
            warm.append(warm_call.metrics.ttft_s or 0.0)
            cold.append(cold_call.metrics.ttft_s or 0.0)
            reused.append(warm_call.metrics.extra["prefix_reused_tokens"])
            prompt_tokens.append(warm_call.metrics.prompt_tokens)
            print(
                f"plan {i + 1}: cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s, "
                f"{reused[-1]}/{prompt_tokens[-1]} tokens reused",
                flush=True,
            )
    finally:
        generator.close()
    command = f"PYTHONPATH=. .venv/bin/python bench/prefix.py --plans {args.plans}"
    results = {
        "model": entry.name,
        "threads": threads_label(args.threads),
        "prompt_tokens": prompt_tokens,
        "reused_tokens": reused,
        "ttft_cold_s": round(statistics.median(cold), 3),
        "ttft_warm_s": round(statistics.median(warm), 3),
        "ttft_saved_s": round(statistics.median(c - w for c, w in zip(cold, warm, strict=True)), 3),
        "runs_cold_s": cold,
        "runs_warm_s": warm,
        "command": command,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prefix.json").write_text(json.dumps(results, indent=2) + "\n")
    text = (
        f"# Shared-prefix KV reuse ({entry.name}, threads {results['threads']})\n\n"
        "| prompt tokens | reused | TTFT cold s | TTFT warm s | saved s |\n"
        "|---|---|---|---|---|\n"
        f"| {statistics.median(prompt_tokens)} | {statistics.median(reused)} "
        f"| {results['ttft_cold_s']} | {results['ttft_warm_s']} | {results['ttft_saved_s']} |\n"
        f"\nMedians over {args.plans} plans. Command: `{command}`\n"
    )
    (args.out / "prefix.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
