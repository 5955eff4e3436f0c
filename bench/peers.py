"""The same plans' prompts, JSON schema and output budget three ways on the embedded
SmolLM2-135M-Instruct Q4_1 GGUF, with the same threads on the same machine:
- telesynth: LlamaGenerator (llguidance constraint, shared-prefix KV reuse), one prompt after
  another, and the batch scheduler with every prompt decoded together (`--parallel`);
- bare: a sequential llama-cpp-python loop, `create_chat_completion` with the schema as
  `response_format` (llama-cpp-python's own grammar);
- distilabel: its in-process llama.cpp generation (`LlamaCppLLM`, the `TextGeneration` task; the
  schema goes to llama-cpp-python as `response_format` through `extra_generation_kwargs`, since
  its `structured_output` needs the `outlines` package), run in a throwaway environment given
  by --distilabel-python (a venv with `pip install distilabel==1.5.3 llama-cpp-python==0.3.36`).
Reports generated outputs per hour, valid JSON outputs per hour (json.loads and the schema's
required keys) and wall time.
Results: bench/results/peers.json and .md.
Run: PYTHONPATH=. .venv/bin/python bench/peers.py [--prompts 4] [--tokens 128]
     [--distilabel-python /tmp/distienv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from smollm2_models import smollm2_entry

from telesynth_tui.inference.generator import (
    LlamaGenerator,
    SamplingParams,
    _quiet_stderr,
    auto_threads,
    new_llama,
)
from telesynth_tui.inference.scheduler import BatchScheduler, complete_together
from telesynth_tui.modelkit.bench import (
    PIPELINE_SCHEMA,
    pipeline_contexts,
    pipeline_messages,
)

RESULTS = Path(__file__).parent / "results"
KG = Path(__file__).resolve().parent.parent / "kg"

DISTILABEL = r"""
import json, sys, time
cfg = json.loads(sys.argv[1])
import llama_cpp, llama_cpp.llama as llama_module
default = llama_cpp.llama_model_default_params
def params():  # the same AMX workaround as telesynth (this machine crashes without it)
    p = default(); p.use_extra_bufts = False; return p
llama_module.llama_cpp.llama_model_default_params = params
from distilabel.models.llms import LlamaCppLLM
from distilabel.steps.tasks import TextGeneration
llm = LlamaCppLLM(model_path=cfg["model"], n_ctx=cfg["n_ctx"], chat_format="chatml",
                  verbose=False, extra_kwargs={"n_threads": cfg["threads"],
                                               "n_threads_batch": cfg["threads"]},
                  generation_kwargs={"max_new_tokens": cfg["tokens"], "temperature": 0.0,
                                     "extra_generation_kwargs": {"response_format": {
                                         "type": "json_object", "schema": cfg["schema"]}}})
task = TextGeneration(llm=llm, system_prompt=cfg["system"])
task.load()
t0 = time.perf_counter()
inputs = [{"instruction": m} for m in cfg["instructions"]]
outputs = next(task.process(inputs))
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "texts": [o.get("generation") or "" for o in outputs]}))
"""


def is_valid(text: str) -> bool:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(data, dict) and all(k in data for k in PIPELINE_SCHEMA["required"])


def figures(name: str, texts: list[str], wall: float) -> dict[str, Any]:
    valid = sum(is_valid(t) for t in texts)
    return {
        "way": name,
        "outputs": len(texts),
        "valid_json": valid,
        "wall_s": round(wall, 2),
        "outputs_per_hour": round(len(texts) * 3600 / wall, 1),
        "valid_per_hour": round(valid * 3600 / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--words", type=int, default=200, help="context words per prompt")
    parser.add_argument("--distilabel-python", default="")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    entry = smollm2_entry()
    threads = auto_threads()
    n_ctx = 1024
    messages = [pipeline_messages(c) for c in pipeline_contexts(KG, args.prompts, args.words)]
    rows = []
    params = SamplingParams(max_tokens=args.tokens, json_schema=PIPELINE_SCHEMA)

    generator = LlamaGenerator(entry.path, entry.name, threads=threads, n_ctx=n_ctx)
    try:
        t0 = time.perf_counter()
        texts = [generator.complete(m, params).text for m in messages]
        rows.append(figures("telesynth sequential", texts, time.perf_counter() - t0))
        print(rows[-1], flush=True)
        t0 = time.perf_counter()
        with BatchScheduler(generator, len(messages), n_ctx_seq=n_ctx) as scheduler:
            texts = [c.text for c in complete_together(scheduler.model(), messages, params)]
        wall = time.perf_counter() - t0
        rows.append(figures(f"telesynth --parallel {len(messages)}", texts, wall))
        print(rows[-1], flush=True)
    finally:
        generator.close()

    with _quiet_stderr():
        llm = new_llama(
            model_path=str(entry.path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    t0 = time.perf_counter()
    texts = []
    for m in messages:
        out = llm.create_chat_completion(
            m,
            max_tokens=args.tokens,
            temperature=0.0,
            response_format={"type": "json_object", "schema": PIPELINE_SCHEMA},
        )
        texts.append(out["choices"][0]["message"]["content"] or "")
    rows.append(figures("bare llama-cpp-python loop", texts, time.perf_counter() - t0))
    print(rows[-1], flush=True)
    llm.close()

    if args.distilabel_python:
        cfg = {
            "model": str(entry.path),
            "threads": threads,
            "n_ctx": n_ctx,
            "tokens": args.tokens,
            "schema": PIPELINE_SCHEMA,
            "system": messages[0][0]["content"],
            "instructions": [m[1]["content"] for m in messages],
        }
        proc = subprocess.run(
            [args.distilabel_python, "-c", DISTILABEL, json.dumps(cfg)],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if proc.returncode == 0:
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(
                figures("distilabel LlamaCppLLM + TextGeneration", out["texts"], out["wall_s"])
            )
        else:
            print(proc.stderr[-2000:], file=sys.stderr)
            rows.append({"way": "distilabel", "error": proc.stderr.strip().splitlines()[-1]})
        print(rows[-1], flush=True)

    command = (
        f"PYTHONPATH=. .venv/bin/python bench/peers.py --prompts {args.prompts} "
        f"--tokens {args.tokens} --words {args.words}"
        + (f" --distilabel-python {args.distilabel_python}" if args.distilabel_python else "")
    )
    results = {
        "model": entry.name,
        "threads": threads,
        "n_ctx": n_ctx,
        "rows": rows,
        "command": command,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# Peers on {entry.name} ({threads} threads, {args.prompts} prompts, "
        f"{args.tokens} output tokens at most)",
        "",
        "| way | outputs | valid JSON | wall s | outputs/hour | valid/hour |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['way']} | failed: {r['error']} | | | | |")
        else:
            lines.append(
                f"| {r['way']} | {r['outputs']} | {r['valid_json']} | {r['wall_s']} "
                f"| {r['outputs_per_hour']} | {r['valid_per_hour']} |"
            )
    lines += ["", f"Command: `{command}`", ""]
    (args.out / "peers.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
