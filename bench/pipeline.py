"""Pipeline throughput: samples per hour, time share per stage, and R_e2e = pure model time ÷
pipeline wall time, for the KG-template realizer and for a GGUF generator, on a fresh project
with the bundled knowledge. Results: bench/results/pipeline.json and .md.
Run: .venv/bin/python bench/pipeline.py [--n 100] [--llm-n 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.pipeline.runner import create_run
from telesynth_tui.pipeline.store import TEMPLATE, RunConfig, run_summary
from telesynth_tui.project import Project

RESULTS = Path(__file__).parent / "results"


def measure(project: Project, config: RunConfig) -> dict[str, Any]:
    conn = project.connect()
    t0 = time.perf_counter()
    run_id = create_run(conn, config)
    t_plan = time.perf_counter() - t0
    runner = project.runner(conn, config)  # loads models, embeds missing chunks (not timed)
    t0 = time.perf_counter()
    runner.execute(run_id)
    wall = time.perf_counter() - t0
    summary = run_summary(conn, run_id)
    calls = [json.loads(r[0]) for r in conn.execute(
        "SELECT metrics FROM model_calls WHERE run_id = ?", (run_id,))]  # fmt: skip
    model_s = sum(c.get("wall_s", 0.0) for c in calls)
    stages = dict(runner.stage_seconds)
    stages["plan"] = t_plan
    total = sum(stages.values())
    return {
        "generator": config.generator,
        "plans": config.n,
        "samples": summary["generated"],
        "accepted": summary["accepted"],
        "acceptance": round(summary["accepted"] / max(summary["generated"], 1), 3),
        "wall_s": round(wall, 2),
        "samples_per_hour": round(summary["generated"] / wall * 3600),
        "accepted_per_hour": round(summary["accepted"] / wall * 3600),
        "model_s": round(model_s, 2),
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
    parser.add_argument("--generator", default="tiny-telesynth")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.create(Path(tmp) / "p")
        import_paths(project.connect(), [project.settings.bundled_kg], project.settings.ingest)
        results.append(measure(project, RunConfig(n=args.n, seed=1, generator=TEMPLATE)))
        if args.llm_n:
            results.append(measure(project, RunConfig(n=args.llm_n, seed=2,
                                                      generator=args.generator)))  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["# Pipeline throughput", "",
             f"Command: `.venv/bin/python bench/pipeline.py --n {args.n} --llm-n {args.llm_n}`", "",
             "| generator | plans | samples | accepted | samples/h | R_e2e | stage share |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        share = ", ".join(f"{k} {v:.0%}" for k, v in r["stage_share"].items())
        lines.append(f"| {r['generator']} | {r['plans']} | {r['samples']} | {r['accepted']} "
                     f"| {r['samples_per_hour']} | {r['R_e2e']} | {share} |")  # fmt: skip
    (args.out / "pipeline.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
