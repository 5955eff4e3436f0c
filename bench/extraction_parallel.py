"""LLM extraction speed: chunks decoded one at a time against N together (`kg extract
--parallel N`), side by side in one run on the same chunks of the bundled runbooks.

Each way runs on a fresh project holding the same runbooks, over the first K chunks, with the
same model at temperature 0; reported: seconds, chunks per minute, the ratio, and whether both
ways stored the same triples.

Run: .venv/bin/python bench/extraction_parallel.py [--model NAME] [--chunks K] [--parallel N]
Results: bench/results/extraction_parallel.json and .md
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.llm_extraction import extract_with_llm
from telesynth_tui.project import Project

RESULTS = Path(__file__).parent / "results"


def llm_triples(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        "SELECT s.name, r.predicate, o.name FROM relation_extractions x"
        " JOIN relations r ON r.id = x.relation_id JOIN entities s ON s.id = r.subject_id"
        " JOIN entities o ON o.id = r.object_id WHERE x.extractor LIKE 'llm:%' ORDER BY 1, 2, 3"
    ).fetchall()
    return [(str(s), str(p), str(o)) for s, p, o in rows]


def one_way(tmp: Path, docs: list[Path], model: str, chunks: int, parallel: int) -> dict[str, Any]:
    project = Project.create(tmp / f"p{parallel}")
    conn = project.connect()
    ingest = project.settings.ingest.model_copy(update={"extract_relations": False})
    import_paths(conn, docs, ingest)
    t0 = time.perf_counter()
    report = extract_with_llm(project, conn, model, None, chunks, None, parallel)
    seconds = time.perf_counter() - t0
    triples = llm_triples(conn)
    conn.close()
    return {
        "parallel": parallel,
        "chunks": report.chunks,
        "seconds": round(seconds, 1),
        "chunks_per_minute": round(60 * report.chunks / seconds, 2),
        "triples_kept": report.kept,
        "triples": triples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    kg = Project.optional(Path("/nonexistent")).settings.bundled_kg
    docs = sorted((kg / "docs" / "runbooks").glob("*.md"))[:3]
    with TemporaryDirectory() as tmp:
        ways = [one_way(Path(tmp), docs, args.model, args.chunks, p) for p in (1, args.parallel)]
    one, many = ways
    result = {
        "command": f"bench/extraction_parallel.py --model {args.model} --chunks {args.chunks}"
        f" --parallel {args.parallel}",
        "documents": [d.name for d in docs],
        "ways": [{k: v for k, v in w.items() if k != "triples"} for w in ways],
        "ratio": round(many["chunks_per_minute"] / one["chunks_per_minute"], 2),
        "same_triples": one["triples"] == many["triples"],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "extraction_parallel.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# LLM extraction: one chunk at a time against several decoded together",
        "",
        f"Command: `{result['command']}` (structure-aware extraction off, so only the model's",
        f"triples are stored). Documents: {', '.join(result['documents'])}.",
        "",
        "| parallel | chunks | seconds | chunks/min | triples kept |",
        "|---|---|---|---|---|",
        *(
            f"| {w['parallel']} | {w['chunks']} | {w['seconds']} | {w['chunks_per_minute']} |"
            f" {w['triples_kept']} |"
            for w in result["ways"]
        ),
        "",
        f"Ratio: **x{result['ratio']}**; same stored triples: {result['same_triples']}.",
        "",
    ]
    (RESULTS / "extraction_parallel.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
