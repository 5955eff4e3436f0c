"""Precision and recall of each filter on labelled examples made from the bundled corpus.
The examples come from the held-out documents (every fourth by name), never used to train the
unfinished head or to calibrate thresholds. Results: bench/results/filters.json and .md.
Run: .venv/bin/python bench/filters.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.modelkit.build import UNFINISHED_HEAD, UNRELATED_HEAD
from telesynth_tui.pipeline.filters import ClassifierHead, Filters, FilterSettings
from telesynth_tui.pipeline.labelled import (
    refusal_examples,
    unfinished_examples,
    unrelated_examples,
)
from telesynth_tui.pipeline.plans import Planner
from telesynth_tui.pipeline.realize import TemplateRealizer
from telesynth_tui.project import Project

RESULTS = Path(__file__).parent / "results"


def precision_recall(flagged: list[bool], labels: list[int]) -> dict[str, float]:
    f, y = np.array(flagged), np.array(labels) == 1
    tp = int((f & y).sum())
    return {
        "examples": len(labels),
        "positives": int(y.sum()),
        "precision": round(tp / max(int(f.sum()), 1), 3),
        "recall": round(tp / max(int(y.sum()), 1), 3),
    }


def main() -> None:
    project = Project.optional(Path("/nonexistent"))
    kg = project.settings.bundled_kg
    encoder = project.encoder()
    registry = project.registry()
    unrelated_head = ClassifierHead(registry.get(UNRELATED_HEAD).path)
    head = ClassifierHead(registry.get(UNFINISHED_HEAD).path)
    filters = Filters(encoder, head, FilterSettings(), unrelated_head)
    results: dict[str, dict[str, float]] = {}

    texts, labels = refusal_examples(kg, held_out=True)
    vectors = encoder.embed(texts)
    flagged = [not filters.unanswered(t, v).passed for t, v in zip(texts, vectors, strict=True)]
    results["unanswered"] = precision_recall(flagged, labels)

    texts, labels = unfinished_examples(kg, held_out=True)
    flagged = [not filters.unfinished(t).passed for t in texts]
    results["unfinished"] = precision_recall(flagged, labels)

    rng = random.Random(3)
    with TemporaryDirectory() as tmp:
        scratch = Project.create(Path(tmp) / "p")
        conn = scratch.connect()
        import_paths(conn, [kg], scratch.settings.ingest)
        # the second set of plans: entities and relations the head's training set did not use
        _, (x, y) = unrelated_examples(conn, scratch.settings.retrieval, encoder)
        flagged = list(unrelated_head.probability(x) >= unrelated_head.threshold)
        results["unrelated"] = precision_recall(flagged, [int(v) for v in y])

        planner, realizer = Planner(conn, 5), TemplateRealizer(5)
        flagged, labels = [], []
        questions = []
        for _ in range(120):
            plan = planner.maths()
            answer = realizer.realize("maths", plan.payload).answer
            factor = rng.choice([0.5, 0.8, 1.3, 2])
            wrong = re.sub(
                r"= ([-\d.e+]+)([^=]*)$",
                lambda m, f=factor: f"= {float(m.group(1)) * f + 1:.4g}{m.group(2)}",
                answer,
            )
            for text, label in ((answer, 0), (wrong, 1)):
                flagged.append(not filters.maths(text, plan.payload).passed)
                labels.append(label)
        results["maths"] = precision_recall(flagged, labels)
        for _ in range(150):
            plan = planner.factual() or planner.definition()
            questions.append(realizer.realize(plan.type, plan.payload).question)
    questions = list(dict.fromkeys(questions))
    flagged, labels = [], []
    for i, q in enumerate(questions[:100]):
        filters.accepted = [encoder.embed([q])[0]]
        near = q.lower().rstrip("?") + " ?" if i % 2 else q.replace("What", "what").replace("?", "")
        other = questions[(i + 37) % len(questions)]
        for text, label in ((near, 1), (other, 0)):
            flagged.append(not filters.duplicate(encoder.embed([text])[0]).passed)
            labels.append(label)
    results["duplicate"] = precision_recall(flagged, labels)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "filters.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Filter precision and recall (held-out examples)",
        "",
        "Command: `.venv/bin/python bench/filters.py`",
        "",
        "| filter | examples | positives | precision | recall |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {v['examples']} | {v['positives']} | {v['precision']} | {v['recall']} |"
        for k, v in results.items()
    ]
    (RESULTS / "filters.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
