"""A real model writing plans: the share of plans that yield an accepted sample, time per plan,
and every rejection by reason, for a registered GGUF generator (the embedded SmolLM2 by default)
on a fresh project with the bundled knowledge. Accepted samples are listed in the Markdown for a
person to read against the labelling rubric. Results: bench/results/writer_<model>.json and .md.
Run from the repository root:
    PYTHONPATH=. .venv/bin/python bench/writer.py [--n 40] [--generator NAME] [--seed 0]
    PYTHONPATH=. .venv/bin/python bench/writer.py --project PATH --run RUN [--wall-s S]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.pipeline.runner import create_run
from telesynth_tui.pipeline.store import RunConfig, run_summary
from telesynth_tui.project import Project

RESULTS = Path(__file__).parent / "results"


def report(conn: sqlite3.Connection, run_id: int, wall_s: float | None) -> dict[str, Any]:
    summary = run_summary(conn, run_id)
    plans = conn.execute("SELECT id, type FROM plans WHERE run_id = ?", (run_id,)).fetchall()
    rows = conn.execute(
        "SELECT plan_id, type, status, reason, question, answer FROM samples WHERE run_id = ?"
        " ORDER BY id",
        (run_id,),
    ).fetchall()
    with_accepted = {r[0] for r in rows if r[2] == "accepted"}
    per_type: dict[str, Counter[str]] = {}
    for _, type_ in plans:
        per_type.setdefault(type_, Counter())["plans"] += 1
    for plan_id, type_ in plans:
        if plan_id in with_accepted:
            per_type[type_]["with_accepted"] += 1
    reasons = Counter(
        (r[3] or "").split(":", 1)[0] + (":" + r[3].split(":")[1] if r[3] and ":" in r[3] else "")
        for r in rows
        if r[2] == "rejected"
    )
    model_s = summary["model_seconds"]
    return {
        "run_id": run_id,
        "generator": json.loads(
            conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        )["generator"],
        "plans": len(plans),
        "plans_with_accepted_sample": len(with_accepted),
        "share_plans_with_accepted": round(len(with_accepted) / max(len(plans), 1), 3),
        "samples": len(rows),
        "accepted": summary["accepted"],
        "per_type": {t: dict(c) for t, c in sorted(per_type.items())},
        "rejected_by_reason": dict(reasons.most_common()),
        "model_seconds_per_plan": round(model_s / max(len(plans), 1), 2),
        "wall_seconds_per_plan": round(wall_s / max(len(plans), 1), 2) if wall_s else None,
        "output_tokens": summary["output_tokens"],
        "accepted_samples": [
            {"type": r[1], "question": r[4], "answer": r[5]} for r in rows if r[2] == "accepted"
        ],
    }


def markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        f"# A real model writing plans: {result['generator']}",
        "",
        f"Command: `{command}`",
        "",
        f"- plans: {result['plans']}; plans that yield an accepted sample: "
        f"{result['plans_with_accepted_sample']} ({result['share_plans_with_accepted']:.0%})",
        f"- samples: {result['samples']}, accepted {result['accepted']}",
        f"- model time per plan: {result['model_seconds_per_plan']} s; wall time per plan: "
        f"{result['wall_seconds_per_plan']} s (shared 2-core machine: absolute times drift)",
        "",
        "| type | plans | with an accepted sample |",
        "|---|---|---|",
        *(
            f"| {t} | {c.get('plans', 0)} | {c.get('with_accepted', 0)} |"
            for t, c in result["per_type"].items()
        ),
        "",
        "| rejected by | samples |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in result["rejected_by_reason"].items()),
        "",
        "## Accepted samples",
        "",
    ]
    for i, s in enumerate(result["accepted_samples"], 1):
        answer = s["answer"].replace("\n", " ")
        lines += [f"{i}. ({s['type']}) **Q:** {s['question']}", f"   **A:** {answer}", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--generator", default="smollm2-135m-instruct")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--project", type=Path, help="report on a run of this project")
    parser.add_argument("--run", type=int, help="the run to report on (with --project)")
    parser.add_argument("--wall-s", type=float, help="the run's measured wall time (with --run)")
    args = parser.parse_args()
    wall: float | None = None
    if args.project and args.run:
        conn = Project.open(args.project).connect()
        run_id = args.run
        wall = args.wall_s
        command = f"telesynth --project {args.project} generate ... (run {run_id})"
    else:
        project = Project.create(Path(tempfile.mkdtemp(prefix="bench-writer-")) / "p")
        conn = project.connect()
        import_paths(conn, [project.settings.bundled_kg], project.settings.ingest)
        config = RunConfig(n=args.n, generator=args.generator, seed=args.seed)
        run_id = create_run(conn, config)
        runner = project.runner(conn, config)  # loads models, embeds chunks (not timed)
        t0 = time.perf_counter()
        runner.execute(run_id)
        wall = time.perf_counter() - t0
        command = f"bench/writer.py --n {args.n} --generator {args.generator} --seed {args.seed}"
    result = report(conn, run_id, wall)
    RESULTS.mkdir(exist_ok=True)
    stem = f"writer_{result['generator']}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{stem}.md").write_text(markdown(result, command), encoding="utf-8")
    print(markdown(result, command))


if __name__ == "__main__":
    main()
