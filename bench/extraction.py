"""Relation extraction against the hand-written triples of the bundled documents.

The bundled documents (`kg/docs/`) are imported into fresh projects, WITHOUT the triple files:
- `docs`: the documents alone (what a user with only a folder of runbooks gets);
- `docs+entities`: the entity files first (a names-and-types vocabulary, no relations), then
  the documents.
The relations the extractors produce are scored against `kg/triples/*.csv`, the gold for those
documents, which are read only to score. Names are compared after resolution through the gold
entity files' names and aliases (case, plural and separator variants fold).

Reported for the runbooks (targets: structure-aware precision >= 0.85, recall >= 0.6) and for
the maths notes, per predicate and overall: the structure-aware extractor (every candidate, and
what the acceptance threshold keeps), per rule, a confidence sweep, and with `--llm PATH` the
LLM extractor and both combined (union, and agreement).

Run: .venv/bin/python bench/extraction.py [--llm MODEL|PATH.gguf] [--llm-docs N]
     [--llm-chunks N] [--llm-cache FILE]
Results: bench/results/extraction.json and .md

The LLM's raw answers are kept in a cache keyed by the exact prompt (default
bench/results/extraction_llm_cache.json), so a later run with the same prompts replays them
instead of calling the model again: the slow model run happens once, and the scoring and the
combination with the structure-aware extractor can be re-run in seconds. A changed prompt or
chunk is a cache miss and calls the model.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.resolution import variant_key
from telesynth_tui.inference.base import CallContext, Message, SamplingParams, TextModel
from telesynth_tui.inference.metrics import CallMetrics
from telesynth_tui.project import Project

RESULTS = Path(__file__).parent / "results"
Triple = tuple[str, str, str]


class Canon:
    """Gold names and aliases -> one canonical key (used to score, never to extract)."""

    def __init__(self, kg: Path) -> None:
        self.key: dict[str, str] = {}
        for path in sorted((kg / "entities").glob("*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    canonical = variant_key(row["name"])
                    for name in [row["name"], *row.get("aliases", [])]:
                        self.key.setdefault(variant_key(name), canonical)

    def __call__(self, *names: str) -> str:
        for name in names:
            hit = self.key.get(variant_key(name))
            if hit:
                return hit
        return variant_key(names[0])


def gold_triples(kg: Path, canon: Canon) -> dict[str, set[Triple]]:
    """Gold triples by the document folder they cite (runbooks, maths) and 'all'."""
    out: dict[str, set[Triple]] = defaultdict(set)
    for path in sorted((kg / "triples").glob("*.csv")):
        with path.open() as f:
            for row in csv.DictReader(f):
                t = (canon(row["subject"]), row["predicate"], canon(row["object"]))
                out["all"].add(t)
                source = row.get("source") or ""
                for group in ("runbooks", "maths"):
                    if f"docs/{group}/" in source:
                        out[group].add(t)
    return out


def predicted(conn: sqlite3.Connection, canon: Canon) -> dict[Triple, dict[str, Any]]:
    """Every extracted relation: its extractors, best confidence, rules and source folders."""
    out: dict[Triple, dict[str, Any]] = {}
    rows = conn.execute(
        """
        SELECT r.id, s.name, s.aliases, r.predicate, o.name, o.aliases, r.status,
               x.extractor, x.rule, x.confidence, sf.path
        FROM relations r JOIN entities s ON s.id = r.subject_id
        JOIN entities o ON o.id = r.object_id
        JOIN relation_extractions x ON x.relation_id = r.id
        JOIN source_files sf ON sf.id = x.source_file_id
        """
    ).fetchall()
    for _rid, sn, sa, p, on, oa, status, extractor, rule, conf, path in rows:
        key = (canon(sn, *json.loads(sa)), p, canon(on, *json.loads(oa)))
        entry = out.setdefault(
            key,
            {
                "extractors": set(),
                "rules": set(),
                "confidence": 0.0,
                "groups": set(),
                "status": status,
                "conf_by": defaultdict(float),
            },
        )
        family = extractor.split(":", 1)[0]
        entry["extractors"].add(family)
        entry["rules"].add(rule)
        entry["confidence"] = max(entry["confidence"], conf)
        entry["conf_by"][family] = max(entry["conf_by"][family], conf)
        for group in ("runbooks", "maths"):
            if f"/docs/{group}/" in path:
                entry["groups"].add(group)
    return out


def score(pred: set[Triple], gold: set[Triple], gold_all: set[Triple]) -> dict[str, Any]:
    """Precision against every gold triple (a true fact stated in another document counts),
    recall against the group's gold; per predicate too."""
    predicates = sorted({t[1] for t in gold | pred})
    per: dict[str, Any] = {}
    for p in predicates:
        pp = {t for t in pred if t[1] == p}
        gp = {t for t in gold if t[1] == p}
        per[p] = _pr(pp, gp, gold_all)
    return {**_pr(pred, gold, gold_all), "per_predicate": per}


def _pr(pred: set[Triple], gold: set[Triple], gold_all: set[Triple]) -> dict[str, Any]:
    tp_p = len(pred & gold_all)
    tp_r = len(pred & gold)
    return {
        "predicted": len(pred),
        "gold": len(gold),
        "correct": tp_p,
        "precision": round(tp_p / len(pred), 3) if pred else None,
        "recall": round(tp_r / len(gold), 3) if gold else None,
    }


class CachedGenerator(TextModel):
    """A text model that replays answers recorded for the same prompt and records new ones
    (the real model is opened on the first prompt not in the cache)."""

    def __init__(self, open_model: Callable[[], TextModel], name: str, cache: Path) -> None:
        self._open = open_model
        self._model: TextModel | None = None
        self.name = name
        self.cache_path = cache
        self.cache: dict[str, Any] = json.loads(cache.read_text()) if cache.is_file() else {}
        self.hits = 0
        self.misses = 0
        self.walls: list[float] = []  # the model's time for each prompt of this run

    @property
    def model(self) -> TextModel:
        if self._model is None:
            self._model = self._open()
        return self._model

    @property
    def n_ctx(self) -> int:
        return self.model.n_ctx

    @property
    def n_vocab(self) -> int:
        return self.model.n_vocab

    def tokenize(self, text: str) -> list[int]:
        return self.model.tokenize(text)

    def render(self, messages: Sequence[Message]) -> str:
        return self.model.render(messages)

    def _key(self, messages: Sequence[Any], params: SamplingParams) -> str:
        blob = json.dumps(
            [self.name, list(messages), params.max_tokens, params.json_schema], sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def execute(
        self, messages: Sequence[Message], params: SamplingParams, ctx: CallContext
    ) -> Generator[str, None, CallMetrics]:
        key = self._key(messages, params)
        if key in self.cache:
            self.hits += 1
            entry = self.cache[key]
            self.walls.append(float(entry["metrics"].get("wall_s", 0.0)))
            yield entry["raw"]
            return CallMetrics(
                **{k: v for k, v in entry["metrics"].items() if k != "joules_per_token"}
            )
        self.misses += 1
        done = self.model.complete(messages, params, CallContext(ctx.cancel))
        metrics = done.metrics.to_dict()
        self.walls.append(float(metrics.get("wall_s", 0.0)))
        self.cache[key] = {"raw": done.text, "metrics": metrics}
        self.cache_path.write_text(json.dumps(self.cache))
        yield done.text
        return done.metrics

    def close(self) -> None:
        if self._model is not None:
            self._model.close()


def build(
    kg: Path,
    with_entities: bool,
    tmp: Path,
    llm: str | None,
    llm_docs: list[str],
    llm_chunks: int | None,
    cache: Path,
    open_names: bool = False,
) -> tuple[Project, dict[str, Any]]:
    project = Project.create(tmp / ("ent" if with_entities else "docs"))
    conn = project.connect()
    paths = [kg / "entities"] if with_entities else []
    import_paths(conn, [*paths, kg / "docs"], project.settings.ingest)
    info: dict[str, Any] = {}
    if llm:
        from telesynth_tui.graph.llm_extraction import (
            LlmExtractor,
            extract_documents,
            open_generator,
        )

        name = Path(llm).stem if llm.endswith(".gguf") else llm
        generator = CachedGenerator(lambda: open_generator(project, llm), name, cache)
        t0 = time.perf_counter()
        done = [0]
        read: list[str] = []

        def progress(line: str) -> None:
            done[0] += 1
            doc = line.split(" chunk ", 1)[0]
            if doc not in read:
                read.append(doc)
            print(f"  llm {done[0]}: {line} ({time.perf_counter() - t0:.0f} s)", flush=True)

        extractor = LlmExtractor(generator, closed_names=not open_names)
        report = extract_documents(
            conn,
            extractor,
            llm_docs,
            project.settings.ingest.accept_confidence,
            llm_chunks,
            progress,
        )
        generator.close()
        info = {
            "model": name,
            "names": "free (open schema)" if open_names else "enum of the chunk's names",
            "documents_read": [d for d in llm_docs if Path(d).name in read],
            "chunks": report.chunks,
            "kept": report.kept,
            "dropped": dict(report.dropped.most_common()),
            "cache_hits": generator.hits,
            "model_calls": generator.misses,
            "seconds": report.seconds,
            "model_seconds_per_chunk": round(sum(generator.walls) / len(generator.walls), 2)
            if generator.walls
            else None,
            "model_seconds_total": round(sum(generator.walls), 1),
        }
    conn.close()
    return project, info


def evaluate(
    project: Project, canon: Canon, gold: dict[str, set[Triple]], llm_docs: list[str] | None
) -> dict[str, Any]:
    conn = project.connect()
    pred = predicted(conn, canon)
    threshold = project.settings.ingest.accept_confidence
    report: dict[str, Any] = {}
    for group in ("runbooks", "maths"):
        in_group = {t: e for t, e in pred.items() if group in e["groups"]}
        structure = {t for t, e in in_group.items() if "structure" in e["extractors"]}
        accepted = {t for t in structure if in_group[t]["conf_by"]["structure"] >= threshold}
        g = gold[group]
        section: dict[str, Any] = {
            "structure": score(structure, g, gold["all"]),
            "structure_accepted": score(accepted, g, gold["all"]),
        }
        by_rule: dict[str, set[Triple]] = defaultdict(set)
        for t in structure:
            for rules in in_group[t]["rules"]:
                if "+" in rules:  # several rules stated it: each one, and their agreement
                    by_rule["(two or more rules agree)"].add(t)
                for rule in rules.split("+"):
                    by_rule[rule].add(t)
        section["rules"] = {rule: _pr(ts, g, gold["all"]) for rule, ts in sorted(by_rule.items())}
        section["sweep"] = {
            str(c): _pr(
                {t for t in structure if in_group[t]["conf_by"]["structure"] >= c}, g, gold["all"]
            )
            for c in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
        }
        if llm_docs is not None and group == "runbooks":
            # LLM scored on the documents it read only (recall against their gold)
            llm = {t for t, e in in_group.items() if "llm" in e["extractors"]}
            g_llm = _gold_of_docs(project.settings.bundled_kg, canon, llm_docs)
            section["llm_documents"] = len(llm_docs)
            section["llm"] = score(llm, g_llm, gold["all"])
            docs_structure = _on_docs(conn, canon, llm_docs, "structure")
            docs_accepted = {
                t for t in docs_structure if in_group[t]["conf_by"]["structure"] >= threshold
            }
            section["structure_same_documents"] = score(docs_structure, g_llm, gold["all"])
            section["structure_accepted_same_documents"] = score(docs_accepted, g_llm, gold["all"])
            section["combined_union"] = score(docs_structure | llm, g_llm, gold["all"])
            section["combined_agree"] = score(docs_structure & llm, g_llm, gold["all"])
            section["combined_accepted"] = score(
                docs_accepted | (docs_structure & llm), g_llm, gold["all"]
            )
        report[group] = section
    report["counts"] = {
        "extracted_relations": len(pred),
        "status": dict(Counter(e["status"] for e in pred.values())),
        "entities_extracted": conn.execute(
            "SELECT COUNT(DISTINCT entity_id) FROM entity_extractions"
        ).fetchone()[0],
    }
    conn.close()
    return report


def _gold_of_docs(kg: Path, canon: Canon, docs: list[str]) -> set[Triple]:
    names = {Path(d).name for d in docs}
    out: set[Triple] = set()
    for path in sorted((kg / "triples").glob("*.csv")):
        with path.open() as f:
            for row in csv.DictReader(f):
                if Path(row.get("source") or "").name in names:
                    out.add((canon(row["subject"]), row["predicate"], canon(row["object"])))
    return out


def _on_docs(conn: sqlite3.Connection, canon: Canon, docs: list[str], family: str) -> set[Triple]:
    marks = ",".join("?" * len(docs))
    rows = conn.execute(
        f"""
        SELECT s.name, s.aliases, r.predicate, o.name, o.aliases
        FROM relations r JOIN entities s ON s.id = r.subject_id
        JOIN entities o ON o.id = r.object_id
        JOIN relation_extractions x ON x.relation_id = r.id
        JOIN source_files sf ON sf.id = x.source_file_id
        WHERE sf.path IN ({marks}) AND x.extractor LIKE ?
        """,
        [*docs, f"{family}%"],
    ).fetchall()
    return {
        (canon(sn, *json.loads(sa)), p, canon(on, *json.loads(oa))) for sn, sa, p, on, oa in rows
    }


EXTRACTOR_ROWS = (
    "structure",
    "structure_accepted",
    "llm",
    "structure_same_documents",
    "structure_accepted_same_documents",
    "combined_union",
    "combined_agree",
    "combined_accepted",
)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def to_markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Relation extraction on the bundled documents",
        "",
        "Gold: `kg/triples/*.csv` (read only to score). Precision counts a triple correct",
        "when any gold triple states it; recall is against the gold of the group's documents.",
        f"Acceptance threshold: {results['threshold']}. Command: `{results['command']}`.",
        "",
    ]
    for config, report in results["configs"].items():
        lines += [f"## {config}", "", f"Counts: {json.dumps(report['counts'])}", ""]
        for group in ("runbooks", "maths"):
            section = report[group]
            lines += [
                f"### {group}",
                "",
                "| extractor | predicted | correct | precision | recall |",
                "|---|---|---|---|---|",
            ]
            names = [n for n in EXTRACTOR_ROWS if n in section]
            for name in names:
                s = section[name]
                lines.append(
                    f"| {name} | {s['predicted']} | {s['correct']} | "
                    f"{_fmt(s['precision'])} | {_fmt(s['recall'])} |"
                )
            if "llm_documents" in section:
                run = report.get("llm_run", {})
                dropped = json.dumps(run.get("dropped", {}), ensure_ascii=False)
                lines += [
                    "",
                    f"The rows from `llm` on are scored on the {section['llm_documents']}"
                    f" runbooks the model read ({run.get('chunks')} chunks; recall against"
                    " their gold). `combined_union`: either extractor; `combined_agree`:"
                    " both; `combined_accepted`: what the acceptance rule keeps (structure"
                    " at the threshold, or both agree). LLM triples kept after grounding:"
                    f" {run.get('kept')}; dropped: {dropped}."
                    f" Names: {run.get('names')}. Model time (recorded when it ran, 2"
                    f" shared cores): {run.get('model_seconds_per_chunk')} s per chunk,"
                    f" {run.get('model_seconds_total')} s in all.",
                ]
            lines += [
                "",
                "Per predicate (precision / recall / predicted):",
                "",
                "| predicate | gold | " + " | ".join(names) + " |",
                "|---|---|" + "---|" * len(names),
            ]
            for p, s in section["structure"]["per_predicate"].items():
                cells = []
                for name in names:
                    q = section[name]["per_predicate"].get(p)
                    cells.append(
                        f"{_fmt(q['precision'])} / {_fmt(q['recall'])} / {q['predicted']}"
                        if q
                        else "-"
                    )
                lines.append(f"| {p} | {s['gold']} | " + " | ".join(cells) + " |")
            lines += ["", "Per rule:", "", "| rule | predicted | precision |", "|---|---|---|"]
            for rule, s in section["rules"].items():
                lines.append(f"| {rule} | {s['predicted']} | {_fmt(s['precision'])} |")
            lines += [
                "",
                "Confidence sweep (structure, keep >= c):",
                "",
                "| c | predicted | precision | recall |",
                "|---|---|---|---|",
            ]
            for c, s in section["sweep"].items():
                lines.append(
                    f"| {c} | {s['predicted']} | {_fmt(s['precision'])} | {_fmt(s['recall'])} |"
                )
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", help="a registered model or a GGUF file for the LLM extractor")
    parser.add_argument(
        "--llm-docs", type=int, default=None, help="runbooks the LLM reads (default: all)"
    )
    parser.add_argument(
        "--llm-chunks",
        type=int,
        default=None,
        help="stop the LLM after this many chunks (default: no limit)",
    )
    parser.add_argument(
        "--llm-cache",
        type=Path,
        default=RESULTS / "extraction_llm_cache.json",
        help="recorded LLM answers, replayed for the same prompt",
    )
    parser.add_argument(
        "--llm-open",
        action="store_true",
        help="free subject/object names instead of an enum of the chunk's names"
        " (results: extraction_open_schema.json/.md)",
    )
    args = parser.parse_args()
    kg = Project.optional(Path("/nonexistent")).settings.bundled_kg
    canon = Canon(kg)
    gold = gold_triples(kg, canon)
    command = "bench/extraction.py"
    if args.llm:
        command += f" --llm {args.llm}"
        command += f" --llm-docs {args.llm_docs}" if args.llm_docs else ""
        command += f" --llm-chunks {args.llm_chunks}" if args.llm_chunks else ""
        command += " --llm-open" if args.llm_open else ""
    results: dict[str, Any] = {"configs": {}, "command": command}
    runbooks = [str(d.resolve()) for d in sorted((kg / "docs" / "runbooks").glob("*.md"))]
    runbooks = runbooks[: args.llm_docs] if args.llm_docs else runbooks
    with TemporaryDirectory() as tmp:
        for name, with_entities in (("docs", False), ("docs+entities", True)):
            t0 = time.perf_counter()
            # the LLM reads the documents of the first configuration only (its cost is the
            # model run; the entity vocabulary changes its prompts)
            llm = args.llm if not with_entities else None
            project, info = build(
                kg,
                with_entities,
                Path(tmp),
                llm,
                runbooks,
                args.llm_chunks,
                args.llm_cache,
                args.llm_open,
            )
            results["threshold"] = project.settings.ingest.accept_confidence
            llm_docs = info["documents_read"] if llm else None
            report = evaluate(project, canon, gold, llm_docs)
            report["seconds"] = round(time.perf_counter() - t0, 1)
            if info:
                report["llm_run"] = info
            results["configs"][name] = report
            rb = report["runbooks"]
            print(
                f"{name}: runbooks structure P={_fmt(rb['structure']['precision'])} "
                f"R={_fmt(rb['structure']['recall'])}; accepted "
                f"P={_fmt(rb['structure_accepted']['precision'])} "
                f"R={_fmt(rb['structure_accepted']['recall'])} ({report['seconds']} s)"
            )
    RESULTS.mkdir(exist_ok=True)
    stem = "extraction_open_schema" if args.llm_open else "extraction"
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2, default=sorted))
    (RESULTS / f"{stem}.md").write_text(to_markdown(results))


if __name__ == "__main__":
    main()
