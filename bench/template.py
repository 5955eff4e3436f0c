"""The template path on the bundled graph: maths inputs from their valid sets, validity
conditions, ranking phrases and technology mixing.

Plans N maths plans and a set of troubleshooting, multi-hop and factual plans on a fresh project
with the bundled knowledge, realizes each with the KG-template realizer and counts:
- maths inputs outside their valid set (a listed value, a whole number or the range);
- validity-condition violations (the formula's conditions across inputs);
- maths questions that do not state every input with its exact value;
- unsupported ranking phrases ("most likely cause"...) in questions and answers;
- plans whose entities mix LTE-only and NR-only entities, and bundled relations that do.
For reference it also counts how often drawing every input uniformly from [min, max] (ignoring
value sets and conditions) would break a set or a condition for the same formulas.
Results: bench/results/template.json and .md.
Run: .venv/bin/python bench/template.py [--maths 1000] [--other 600] [--seed 11]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from telesynth_tui.graph.formulas import FormulaError, FormulaSpec
from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.technology import cross_technology_relations
from telesynth_tui.pipeline.plans import Planner
from telesynth_tui.pipeline.realize import TemplateRealizer, missing_inputs, ranking_phrases
from telesynth_tui.project import Project

RESULTS = Path(__file__).parent / "results"


def _violations(spec: FormulaSpec, inputs: dict[str, float]) -> tuple[list[str], list[str]]:
    """(inputs outside their valid set, conditions that do not hold)."""
    outside = []
    for var in spec.variables:
        try:
            var.check(float(inputs[var.symbol]))
        except FormulaError:
            outside.append(f"{var.symbol}={inputs[var.symbol]:g}")
    broken = []
    for condition in spec.parsed_conditions:
        try:
            holds = bool(condition.evaluate(inputs))
        except FormulaError:
            holds = False
        if not holds:
            broken.append(condition.text)
    return outside, broken


def _naive(spec: FormulaSpec, rng: random.Random) -> dict[str, float]:
    """Every input uniform in [min, max] (whole numbers where integer), nothing else."""
    return {
        v.symbol: float(rng.randint(int(v.min), int(v.max)))
        if v.integer
        else round(rng.uniform(v.min, v.max), 4)
        for v in spec.variables
    }


def _mixed(conn: object, entity_ids: list[int]) -> bool:
    if not entity_ids:
        return False
    marks = ",".join("?" * len(entity_ids))
    rows = conn.execute(  # type: ignore[attr-defined]
        f"SELECT DISTINCT technology FROM entities WHERE id IN ({marks})"
        " AND technology IN ('LTE', 'NR')",
        entity_ids,
    ).fetchall()
    return len(rows) > 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maths", type=int, default=1000)
    parser.add_argument("--other", type=int, default=600)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        project = Project.create(Path(tmp) / "p")
        conn = project.connect()
        import_paths(conn, [project.settings.bundled_kg], project.settings.ingest)
        planner = Planner(conn, args.seed)
        realizer = TemplateRealizer(args.seed)
        specs = {spec.id: spec for _, _, spec in planner._formulas()}

        started = time.perf_counter()
        maths = [planner.maths() for _ in range(args.maths)]
        maths_s = time.perf_counter() - started
        outside: Counter[str] = Counter()
        broken: Counter[str] = Counter()
        unstated: Counter[str] = Counter()
        ranking: list[str] = []
        mixed = 0
        naive_outside = naive_broken = 0
        rng = random.Random(args.seed)
        for plan in maths:
            assert plan is not None
            spec = specs[plan.payload["formula"]]
            bad_inputs, bad_conditions = _violations(spec, plan.payload["inputs"])
            outside.update(f"{spec.id}: {b}" for b in bad_inputs)
            broken.update(f"{spec.id}: {c}" for c in bad_conditions)
            candidate = realizer.realize("maths", plan.payload)
            unstated.update(
                f"{spec.id}: {s}" for s in missing_inputs(candidate.question, plan.payload)
            )
            ranking += ranking_phrases(candidate.question + " " + candidate.answer)
            mixed += _mixed(conn, plan.entity_ids)
            n_out, n_cond = _violations(spec, _naive(spec, rng))
            naive_outside += bool(n_out)
            naive_broken += bool(n_cond)

        per_type = max(1, args.other // 3)
        others = planner.plans(
            {
                "troubleshooting": per_type,
                "multi_hop": per_type,
                "factual": args.other - 2 * per_type,
            }
        )
        other_ranking: Counter[str] = Counter()
        other_mixed: Counter[str] = Counter()
        for plan in others:
            candidate = realizer.realize(plan.type, plan.payload)
            for phrase in ranking_phrases(candidate.question + " " + candidate.answer):
                other_ranking[f"{plan.type}: {phrase}"] += 1
            if _mixed(conn, plan.entity_ids):
                other_mixed[plan.type] += 1
        cross = cross_technology_relations(conn)
        by_tech = Counter(p.payload.get("technology") or "open" for p in others)

    report: dict[str, Any] = {
        "command": (
            f"bench/template.py --maths {args.maths} --other {args.other} --seed {args.seed}"
        ),
        "maths_plans": len(maths),
        "formulas": len(specs),
        "formulas_used": len({p.payload["formula"] for p in maths if p}),
        "maths_planning_ms_per_plan": round(1000 * maths_s / max(len(maths), 1), 3),
        "inputs_outside_valid_set": sum(outside.values()),
        "validity_condition_violations": sum(broken.values()),
        "questions_missing_an_input": sum(unstated.values()),
        "maths_ranking_phrases": len(ranking),
        "maths_plans_mixing_technologies": mixed,
        "naive_range_sampling": {
            "plans_with_an_input_outside_its_set": naive_outside,
            "plans_breaking_a_condition": naive_broken,
        },
        "other_plans": dict(Counter(p.type for p in others)),
        "other_plans_by_technology": dict(by_tech),
        "unsupported_ranking_phrases": sum(other_ranking.values()) + len(ranking),
        "plans_mixing_technologies": sum(other_mixed.values()) + mixed,
        "cross_technology_relations": len(cross),
        "details": {
            "outside": dict(outside.most_common(20)),
            "conditions": dict(broken.most_common(20)),
            "unstated": dict(unstated.most_common(20)),
            "ranking": dict(other_ranking.most_common(20)),
            "mixed": dict(other_mixed),
            "cross": cross[:20],
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "template.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    naive = {
        "plans_with_an_input_outside_its_set": naive_outside,
        "plans_breaking_a_condition": naive_broken,
    }
    lines = [
        "# Template path: valid inputs, conditions, ranking phrases, technology",
        "",
        f"`{report['command']}` on the bundled graph ({report['formulas']} formulas, "
        f"{report['formulas_used']} used).",
        "",
        "| measure | count | target |",
        "|---|---|---|",
        f"| maths plans | {report['maths_plans']} | |",
        f"| inputs outside their valid set | {report['inputs_outside_valid_set']} | 0 |",
        f"| validity-condition violations | {report['validity_condition_violations']} | 0 |",
        f"| maths questions missing an input | {report['questions_missing_an_input']} | 0 |",
        f"| troubleshooting / multi-hop / factual plans | {len(others)} | |",
        f"| unsupported ranking phrases (all plans) | {report['unsupported_ranking_phrases']} "
        "| 0 |",
        f"| plans mixing LTE and NR (all plans) | {report['plans_mixing_technologies']} | 0 |",
        f"| bundled relations joining LTE-only and NR-only entities | "
        f"{report['cross_technology_relations']} | 0 |",
        "",
        f"For reference, drawing each input uniformly from [min, max] for the same "
        f"{report['maths_plans']} formulas puts an input outside its set in "
        f"{naive['plans_with_an_input_outside_its_set']} plans and breaks a condition in "
        f"{naive['plans_breaking_a_condition']}.",
        f"Maths planning: {report['maths_planning_ms_per_plan']} ms per plan. Other plans by "
        f"technology: {report['other_plans_by_technology']}.",
        "",
    ]
    (RESULTS / "template.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
