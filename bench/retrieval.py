"""Hybrid retrieval latency on a synthetic knowledge graph (default 100k relations, 20k chunks).

Builds the graph through the real importer (documents, entities, triples written as files),
then times `Retriever.retrieve` (BM25 + graph expansion + fusion + budget) on random queries.
Results: bench/results/retrieval.json and .md. Run: .venv/bin/python bench/retrieval.py
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.retrieval import Retriever
from telesynth_tui.graph.stats import kg_stats
from telesynth_tui.project import Project

RESULTS = Path(__file__).parent / "results"
VOCAB = (
    "uplink",
    "downlink",
    "interference",
    "handover",
    "drop",
    "rate",
    "throughput",
    "latency",
    "backhaul",
    "sector",
    "cell",
    "carrier",
    "beam",
    "antenna",
    "feeder",
    "tilt",
    "power",
    "noise",
    "margin",
    "timer",
    "counter",
    "alarm",
    "threshold",
    "neighbour",
    "scheduler",
    "bler",
    "cqi",
    "rank",
    "layer",
    "sync",
    "clock",
    "fronthaul",
    "transport",
    "packet",
    "loss",
    "jitter",
    "session",
    "bearer",
    "release",
    "failure",
    "success",
    "attempt",
    "congestion",
    "capacity",
    "coverage",
    "overshoot",
    "hole",
)
# (predicate, subject type, object type): all allowed by the predicate vocabulary
SHAPES = [
    ("indicates", "Alarm", "RootCause"),
    ("resolved_by", "RootCause", "Action"),
    ("adjusts", "Action", "Parameter"),
    ("checked_by", "RootCause", "Check"),
    ("reads", "Check", "Counter"),
    ("measured_by", "KPI", "Counter"),
    ("degrades", "RootCause", "KPI"),
    ("verified_by", "Action", "KPI"),
]
TYPES = sorted({t for _, s, o in SHAPES for t in (s, o)})


def entity_name(type_: str, i: int) -> str:
    return f"{type_.lower()} {VOCAB[i % len(VOCAB)]} {i:05d}"


def build_sources(root: Path, n_relations: int, n_chunks: int, seed: int) -> None:
    rng = random.Random(seed)
    per_type = max(50, n_relations // 50)
    (root / "entities").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "triples").mkdir()
    with (root / "entities" / "synthetic.jsonl").open("w") as f:
        for t in TYPES:
            for i in range(per_type):
                f.write(json.dumps({"name": entity_name(t, i), "type": t}) + "\n")
    sections_per_doc = 10
    n_docs = n_chunks // sections_per_doc
    doc_entities: list[list[tuple[str, int]]] = []
    for d in range(n_docs):
        mentioned: list[tuple[str, int]] = []
        lines = [f"# Synthetic runbook {d}\n"]
        for s in range(sections_per_doc):
            picks = [(rng.choice(TYPES), rng.randrange(per_type)) for _ in range(4)]
            mentioned.extend(picks)
            words = " ".join(rng.choice(VOCAB) for _ in range(110))
            names = ", ".join(entity_name(t, i) for t, i in picks)
            lines.append(f"\n## Section {s}\n\nThis section covers {names}. {words}.\n")
        (root / "docs" / f"doc{d:05d}.md").write_text("".join(lines))
        doc_entities.append(mentioned)
    seen: set[tuple[str, str, str]] = set()
    with (root / "triples" / "synthetic.csv").open("w") as f:
        f.write("subject,predicate,object,source\n")
        while len(seen) < n_relations:
            predicate, st, ot = rng.choice(SHAPES)
            d = rng.randrange(n_docs)
            subject = entity_name(st, rng.randrange(per_type))
            obj = entity_name(ot, rng.randrange(per_type))
            key = (subject, predicate, obj)
            if key in seen:
                continue
            seen.add(key)
            f.write(f"{subject},{predicate},{obj},docs/doc{d:05d}.md\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--relations", type=int, default=100_000)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sources = Path(tmp) / "kg"
        t0 = time.perf_counter()
        build_sources(sources, args.relations, args.chunks, args.seed)
        t_generate = time.perf_counter() - t0
        project = Project.create(Path(tmp) / "proj")
        conn = project.connect()
        t0 = time.perf_counter()
        report = import_paths(conn, [sources], project.settings.ingest)
        t_import = time.perf_counter() - t0
        errors = [str(i) for i in report.issues if i.severity == "error"]
        stats = kg_stats(conn)

        retriever = Retriever(conn, project.settings.retrieval)
        t0 = time.perf_counter()
        retriever.retrieve("warm up the caches")
        t_first = time.perf_counter() - t0

        rng = random.Random(args.seed + 1)
        per_type = max(50, args.relations // 50)
        latencies: list[float] = []
        stage: dict[str, list[float]] = {"bm25": [], "graph": []}
        items, tokens = [], []
        for _ in range(args.queries):
            name = entity_name(rng.choice(TYPES), rng.randrange(per_type))
            query = f"why does {name} cause {' '.join(rng.choice(VOCAB) for _ in range(5))}"
            t0 = time.perf_counter()
            result = retriever.retrieve(query)
            latencies.append((time.perf_counter() - t0) * 1000)
            items.append(len(result.items))
            tokens.append(result.n_tokens)
            t0 = time.perf_counter()
            retriever.bm25(query, project.settings.retrieval.per_source_k)
            stage["bm25"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            retriever.graph_expansion(retriever.query_entities(query), 30)
            stage["graph"].append((time.perf_counter() - t0) * 1000)

    figures = {
        "relations": stats["relations"],
        "chunks": stats["chunks"],
        "entities": stats["entities"],
        "queries": args.queries,
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "max_ms": round(max(latencies), 2),
        "bm25_p95_ms": round(percentile(stage["bm25"], 0.95), 2),
        "graph_p95_ms": round(percentile(stage["graph"], 0.95), 2),
        "mean_items": round(statistics.mean(items), 2),
        "mean_tokens": round(statistics.mean(tokens), 1),
        "first_query_s (graph + gazetteer load)": round(t_first, 2),
        "import_s": round(t_import, 1),
        "generate_s": round(t_generate, 1),
        "import_errors": len(errors),
        "target_p95_ms": 20,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retrieval.json").write_text(json.dumps(figures, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v} |" for k, v in figures.items())
    (args.out / "retrieval.md").write_text(
        "# Hybrid retrieval latency (BM25 + graph expansion + RRF)\n\n"
        f"Command: `.venv/bin/python bench/retrieval.py --relations {args.relations} "
        f"--chunks {args.chunks} --queries {args.queries}`\n\n| figure | value |\n|---|---|\n"
        f"{rows}\n"
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
