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

Run: .venv/bin/python bench/extraction.py [--llm PATH.gguf] [--llm-docs N]
Results: bench/results/extraction.json and .md
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import time
from collections import Counter, defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.resolution import variant_key
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
            key, {"extractors": set(), "rules": set(), "confidence": 0.0, "groups": set(),
                  "status": status, "conf_by": defaultdict(float)},
        )  # fmt: skip
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


def build(kg: Path, with_entities: bool, tmp: Path, llm: str | None, llm_docs: int) -> Project:
    project = Project.create(tmp / ("ent" if with_entities else "docs"))
    conn = project.connect()
    paths = [kg / "entities"] if with_entities else []
    import_paths(conn, [*paths, kg / "docs"], project.settings.ingest)
    if llm:
        from telesynth_tui.graph.llm_extraction import extract_with_llm

        docs = sorted((kg / "docs" / "runbooks").glob("*.md"))[:llm_docs]
        extract_with_llm(project, conn, llm, [str(d.resolve()) for d in docs])
    conn.close()
    return project


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
            for rule in in_group[t]["rules"]:
                by_rule[rule].add(t)
        section["rules"] = {rule: _pr(ts, g, gold["all"]) for rule, ts in sorted(by_rule.items())}
        section["sweep"] = {
            str(c): _pr({t for t in structure if in_group[t]["conf_by"]["structure"] >= c}, g,
                        gold["all"])
            for c in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
        }  # fmt: skip
        if llm_docs is not None and group == "runbooks":
            # LLM scored on the documents it read only (recall against their gold)
            llm = {t for t, e in in_group.items() if "llm" in e["extractors"]}
            g_llm = _gold_of_docs(project.settings.bundled_kg, canon, llm_docs)
            section["llm_documents"] = len(llm_docs)
            section["llm"] = score(llm, g_llm, gold["all"])
            docs_structure = _on_docs(conn, canon, llm_docs, "structure")
            section["structure_same_documents"] = score(docs_structure, g_llm, gold["all"])
            section["combined_union"] = score(docs_structure | llm, g_llm, gold["all"])
            section["combined_agree"] = score(docs_structure & llm, g_llm, gold["all"])
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


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def to_markdown(results: dict[str, Any]) -> str:
    lines = ["# Relation extraction on the bundled documents", "",
             "Gold: `kg/triples/*.csv` (read only to score). Precision counts a triple correct",
             "when any gold triple states it; recall is against the gold of the group's documents.",
             f"Acceptance threshold: {results['threshold']}. Command: `{results['command']}`.",
             ""]  # fmt: skip
    for config, report in results["configs"].items():
        lines += [f"## {config}", "", f"Counts: {json.dumps(report['counts'])}", ""]
        for group in ("runbooks", "maths"):
            section = report[group]
            lines += [f"### {group}", "", "| extractor | predicted | correct | precision |"
                      " recall |", "|---|---|---|---|---|"]  # fmt: skip
            for name in ("structure", "structure_accepted", "llm", "structure_same_documents",
                         "combined_union", "combined_agree"):  # fmt: skip
                if name in section:
                    s = section[name]
                    lines.append(f"| {name} | {s['predicted']} | {s['correct']} | "
                                 f"{_fmt(s['precision'])} | {_fmt(s['recall'])} |")  # fmt: skip
            if "llm_documents" in section:
                lines += ["", f"LLM rows: the first {section['llm_documents']} runbooks only "
                          "(recall against their gold)."]  # fmt: skip
            lines += ["", "Per predicate (structure):", "",
                      "| predicate | predicted | gold | precision | recall |",
                      "|---|---|---|---|---|"]  # fmt: skip
            for p, s in section["structure"]["per_predicate"].items():
                lines.append(f"| {p} | {s['predicted']} | {s['gold']} | {_fmt(s['precision'])}"
                             f" | {_fmt(s['recall'])} |")  # fmt: skip
            lines += ["", "Per rule:", "", "| rule | predicted | precision |", "|---|---|---|"]
            for rule, s in section["rules"].items():
                lines.append(f"| {rule} | {s['predicted']} | {_fmt(s['precision'])} |")
            lines += ["", "Confidence sweep (structure, keep >= c):", "",
                      "| c | predicted | precision | recall |", "|---|---|---|---|"]  # fmt: skip
            for c, s in section["sweep"].items():
                lines.append(f"| {c} | {s['predicted']} | {_fmt(s['precision'])} | "
                             f"{_fmt(s['recall'])} |")  # fmt: skip
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", help="a GGUF file for the LLM extractor")
    parser.add_argument("--llm-docs", type=int, default=4, help="runbooks the LLM reads")
    args = parser.parse_args()
    kg = Project.optional(Path("/nonexistent")).settings.bundled_kg
    canon = Canon(kg)
    gold = gold_triples(kg, canon)
    results: dict[str, Any] = {"configs": {}, "command": "bench/extraction.py"
                               + (f" --llm {args.llm} --llm-docs {args.llm_docs}"
                                  if args.llm else "")}  # fmt: skip
    with TemporaryDirectory() as tmp:
        for name, with_entities in (("docs", False), ("docs+entities", True)):
            t0 = time.perf_counter()
            project = build(kg, with_entities, Path(tmp), args.llm, args.llm_docs)
            results["threshold"] = project.settings.ingest.accept_confidence
            llm_docs = (
                [str(d.resolve()) for d in sorted((kg / "docs" / "runbooks").glob("*.md"))][
                    : args.llm_docs
                ]
                if args.llm
                else None
            )
            report = evaluate(project, canon, gold, llm_docs)
            report["seconds"] = round(time.perf_counter() - t0, 1)
            results["configs"][name] = report
            rb = report["runbooks"]
            print(
                f"{name}: runbooks structure P={_fmt(rb['structure']['precision'])} "
                f"R={_fmt(rb['structure']['recall'])}; accepted "
                f"P={_fmt(rb['structure_accepted']['precision'])} "
                f"R={_fmt(rb['structure_accepted']['recall'])} ({report['seconds']} s)"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "extraction.json").write_text(json.dumps(results, indent=2, default=sorted))
    (RESULTS / "extraction.md").write_text(to_markdown(results))


if __name__ == "__main__":
    main()
