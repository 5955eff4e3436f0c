"""Pipeline throughput: samples per hour, output tokens per second, time share per stage, and
R_e2e = pure model time ÷ pipeline wall time, for the KG-template realizer and for a GGUF
generator at `--parallel 1` and at `--parallel N` (the same plans, on copies of one fresh project
with the bundled knowledge). Pure model time is the time llama.cpp was busy: the calls' wall
time, or for batched calls their share of the steps they were decoded in. Stage shares are of
the wall time each stage took in the threads that ran it (with N plans in flight, a stage's time
includes waiting for the model). Results: bench/results/pipeline.json and .md.
Run: .venv/bin/python bench/pipeline.py [--n 100] [--llm-n 20] [--generator NAME] [--parallel 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.pipeline.runner import create_run
from telesynth_tui.pipeline.store import TEMPLATE, RunConfig, model_seconds, run_summary
from telesynth_tui.project import Project

RESULTS = Path(__file__).parent / "results"


def measure(project: Project, config: RunConfig, parallel: int = 1) -> dict[str, Any]:
    conn = project.connect()
    t0 = time.perf_counter()
    run_id = create_run(conn, config)
    t_plan = time.perf_counter() - t0
    runner = project.runner(conn, config)  # loads models, embeds missing chunks (not timed)
    t0 = time.perf_counter()
    runner.execute(run_id, parallel=parallel)
    wall = time.perf_counter() - t0
    summary = run_summary(conn, run_id)
    calls = [
        json.loads(r[0])
        for r in conn.execute("SELECT metrics FROM model_calls WHERE run_id = ?", (run_id,))
    ]
    model_s = sum(model_seconds(c) for c in calls)
    output_tokens = sum(c.get("output_tokens", 0) for c in calls)
    stages = dict(runner.stage_seconds)
    stages["plan"] = t_plan
    total = sum(stages.values())
    return {
        "generator": config.generator,
        "parallel": parallel,
        "plans": config.n,
        "samples": summary["generated"],
        "accepted": summary["accepted"],
        "acceptance": round(summary["accepted"] / max(summary["generated"], 1), 3),
        "wall_s": round(wall, 2),
        "samples_per_hour": round(summary["generated"] / wall * 3600),
        "accepted_per_hour": round(summary["accepted"] / wall * 3600),
        "model_s": round(model_s, 2),
        "output_tokens": output_tokens,
        "output_tok_s": round(output_tokens / wall, 2),
        "R_e2e": round(model_s / wall, 3),
        "stage_share": {k: round(v / total, 3) for k, v in sorted(stages.items())},
        "rejected_by_filter": summary["rejected_by_filter"],
        "energy_j": summary["energy_j"],
        "energy_source": summary["energy_source"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--llm-n", type=int, default=20)
    parser.add_argument("--generator", default="smollm2-135m-instruct")
    parser.add_argument("--parallel", type=int, default=8, help="plans in flight (besides 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.create(Path(tmp) / "p")
        import_paths(project.connect(), [project.settings.bundled_kg], project.settings.ingest)
        project.connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        fresh = Path(tmp) / "fresh"
        shutil.copytree(project.path, fresh)  # the same plans for every GGUF measurement
        results.append(measure(project, RunConfig(n=args.n, seed=1, generator=TEMPLATE)))
        for i, parallel in enumerate(dict.fromkeys([1, args.parallel]) if args.llm_n else []):
            copy = Path(tmp) / f"llm{i}"
            shutil.copytree(fresh, copy)
            config = RunConfig(n=args.llm_n, seed=2, generator=args.generator)
            results.append(measure(Project.open(copy), config, parallel))
            print(results[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Pipeline throughput",
        "",
        f"Command: `.venv/bin/python bench/pipeline.py --n {args.n} --llm-n {args.llm_n} "
        f"--generator {args.generator} --parallel {args.parallel}`",
        "",
        "| generator | parallel | plans | samples | accepted | samples/h | output tok/s "
        "| R_e2e | stage share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        share = ", ".join(f"{k} {v:.0%}" for k, v in r["stage_share"].items())
        lines.append(
            f"| {r['generator']} | {r['parallel']} | {r['plans']} | {r['samples']} "
            f"| {r['accepted']} | {r['samples_per_hour']} | {r['output_tok_s']} "
            f"| {r['R_e2e']} | {share} |"
        )
    (args.out / "pipeline.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
