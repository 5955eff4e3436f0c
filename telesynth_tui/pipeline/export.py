"""Stage 7, export: SFT chat JSONL, RFT JSONL with rubrics, DPO pairs, CSV, and a dataset card.

Accepted samples are exported unless a reviewer rejected them, and rejected ones a reviewer
accepted or edited are exported too (DPO also uses rejected answers of the same plan). Files
are written through a temporary file and renamed.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import statistics
from pathlib import Path
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.pipeline.runner import run_summary
from telesynth_tui.project import write_atomic

FORMATS = ("sft", "rft", "dpo", "csv")
SYSTEM = "You are a RAN troubleshooting and telecom engineering assistant."
SCORE_KEYS = ("answer_relevancy", "faithfulness", "context_precision", "context_recall")


def _rows(conn: sqlite3.Connection, run_id: int, where: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT s.*, p.payload FROM samples s JOIN plans p ON p.id = s.plan_id"
        f" WHERE s.run_id = ? AND {where} ORDER BY s.id",
        (run_id,),
    ).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        for key in ("steps", "context", "cited", "provenance", "scores", "payload"):
            d[key] = json.loads(d[key]) if d[key] else None
        out.append(d)
    return out


# the pipeline's verdict unless a reviewer decided otherwise
_EXPORTABLE = (
    "s.answer IS NOT NULL AND CASE WHEN s.review IN ('accepted', 'edited') THEN 1"
    " WHEN s.review = 'rejected' THEN 0 ELSE s.status = 'accepted' END"
)


def _metadata(s: dict[str, Any]) -> dict[str, Any]:
    prov = s["provenance"] or {}
    return {
        "sample_id": s["id"], "run_id": s["run_id"], "plan_id": s["plan_id"], "type": s["type"],
        "generator": s["generator"], "quality": s["quality"],
        "scores": _scores(s["scores"] or {}),
        "context_ids": prov.get("context_keys", []), "cited": s["cited"],
        "entity_ids": prov.get("entity_ids", []), "relation_ids": prov.get("relation_ids", []),
        "chunk_ids": prov.get("chunk_ids", []), "formula": prov.get("formula"),
    }  # fmt: skip


def _scores(scores: dict[str, Any]) -> dict[str, Any]:
    """RAGAS-style scores, or for DTA exemplars the selection figures."""
    if "selection_score" in scores:
        return {"selection_score": scores["selection_score"], "style": scores.get("style"),
                "judge": scores.get("judge", {}).get("score"),
                "judge_by": scores.get("judge", {}).get("by"),
                "agrees_with": scores.get("agreement", {}).get("agree_with", [])}  # fmt: skip
    return {k: v for k, v in scores.items() if k in SCORE_KEYS}


def _user(s: dict[str, Any], with_context: bool) -> str:
    if not with_context:
        return str(s["question"])
    context = "\n".join(f"[{i}] {c['text']}" for i, c in enumerate(s["context"], 1))
    return f"Context:\n{context}\n\nQuestion: {s['question']}"


def sft_records(samples: list[dict[str, Any]], with_context: bool) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": _user(s, with_context)},
                {"role": "assistant", "content": s["answer"]},
            ],
            "metadata": _metadata(s),
        }
        for s in samples
    ]


def _rubric(s: dict[str, Any]) -> list[str]:
    payload = s["payload"] or {}
    if s["type"] == "maths":
        return [
            f"States {payload.get('output_symbol') or 'the result'} = {payload['answer']:.6g} "
            f"{payload.get('unit', '')} within {payload['tolerance']:.3g}".strip(),
            f"Uses {payload.get('expression')}",
            "Shows the inputs with their units",
        ]
    if s["type"] == "troubleshooting":
        causes = payload.get("causes", [])
        items = [f"Names the possible cause '{c['cause']}'" for c in causes]
        items += [f"Includes the check '{x}'" for c in causes for x in c.get("checks", [])]
        items += [f"Proposes the action '{x}'" for c in causes for x in c.get("actions", [])]
        items.append("Says how to verify the fix")
        return items
    return [f"Agrees with: {step}" for step in (s["steps"] or [s["answer"]])[:4]]


def rft_records(samples: list[dict[str, Any]], with_context: bool) -> list[dict[str, Any]]:
    records = []
    for s in samples:
        record: dict[str, Any] = {
            "prompt": [{"role": "system", "content": SYSTEM},
                       {"role": "user", "content": _user(s, with_context)}],
            "reference_answer": s["answer"],
            "rubric": _rubric(s),
            "type": s["type"],
            "metadata": _metadata(s),
        }  # fmt: skip
        if s["type"] == "maths":
            payload = s["payload"]
            record.update({"numeric_answer": payload["answer"], "unit": payload.get("unit", ""),
                           "tolerance": payload["tolerance"]})  # fmt: skip
        records.append(record)
    return records


def dpo_records(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    """chosen = an exported answer, rejected = a dropped answer for the same plan."""
    good = _rows(conn, run_id, _EXPORTABLE)
    bad = _rows(conn, run_id, f"s.answer IS NOT NULL AND NOT ({_EXPORTABLE})")
    by_plan: dict[int, list[dict[str, Any]]] = {}
    for s in bad:
        by_plan.setdefault(s["plan_id"], []).append(s)
    records = []
    for s in good:
        for r in by_plan.get(s["plan_id"], []):
            records.append({
                "prompt": s["question"], "chosen": s["answer"], "rejected": r["answer"],
                "rejected_reason": r["reason"],
                "metadata": {**_metadata(s), "rejected_sample_id": r["id"]},
            })  # fmt: skip
    return records


def csv_text(samples: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    fields = ["sample_id", "run_id", "type", "status", "review", "quality", *SCORE_KEYS,
              "question", "answer", "steps", "cited", "reason", "generator"]  # fmt: skip
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for s in samples:
        scores = s["scores"] or {}
        writer.writerow({
            "sample_id": s["id"], "run_id": s["run_id"], "type": s["type"], "status": s["status"],
            "review": s["review"] or "", "quality": s["quality"],
            **{k: scores.get(k, "") for k in SCORE_KEYS},
            "question": s["question"] or "", "answer": s["answer"] or "",
            "steps": " | ".join(s["steps"] or []), "cited": " ".join(s["cited"] or []),
            "reason": s["reason"] or "", "generator": s["generator"],
        })  # fmt: skip
    return buffer.getvalue()


def export_run(
    conn: sqlite3.Connection, run_id: int, fmt: str, out: Path, with_context: bool = False
) -> dict[str, Any]:
    """Write the export and its dataset card; returns what was written."""
    if fmt not in FORMATS:
        raise TelesynthError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    run = conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
    if run is None:
        raise TelesynthError(f"no run {run_id} (see: telesynth runs)")
    if fmt == "csv":
        samples = _rows(conn, run_id, "1")
        text, count = csv_text(samples), len(samples)
    else:
        if fmt == "dpo":
            records = dpo_records(conn, run_id)
        else:
            samples = _rows(conn, run_id, _EXPORTABLE)
            build = sft_records if fmt == "sft" else rft_records
            records = build(samples, with_context)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        count = len(records)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, text)
        card = out.with_suffix(".card.md")
        write_atomic(card, dataset_card(conn, run_id, fmt, out.name, count))
    except OSError as exc:
        raise TelesynthError(f"{out}: cannot write: {exc.strerror or exc}") from None
    return {"run": run_id, "format": fmt, "records": count, "file": str(out), "card": str(card)}


def _generation_lines(conn: sqlite3.Connection, run_id: int, config: dict[str, Any]) -> list[str]:
    dta = conn.execute(
        "SELECT student, config, profile FROM dta_runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    if dta is None:
        return [f"- generator: {config['generator']}; refiner: {config.get('refiner') or 'none'}; "
                "scoring: fast (ragas non-LLM context precision/recall, embedding relevancy, "
                "lexical faithfulness)"]  # fmt: skip
    dta_config, profile = json.loads(dta[1]), json.loads(dta[2])
    teachers = (["solver"] if dta_config.get("use_solver") else []) + dta_config["teachers"]
    return [
        f"- Data Trajectory Alignment for the student {dta[0]}: teachers {', '.join(teachers)}; "
        f"rewriter {dta_config.get('rewriter') or 'none (layout only)'}; reflection judge "
        f"{dta_config.get('judge') or 'step checker'}",
        f"- student style (from {profile.get('probes', 0)} probe answers): "
        f"{profile.get('words')} words, {profile.get('steps')} steps, {profile.get('layout')}, "
        f"final answer marker {profile.get('marker') or '(none)'!r}",
        "- one exemplar per problem at most: the teacher answer that agrees with the computed "
        "truth (maths) or the documented plan (troubleshooting) and passes the judge, best "
        "ranked; the others are kept as rejections with their reason (DPO exports pair them)",
    ]


def _distribution(values: list[float]) -> str:
    if not values:
        return "-"
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return (f"min {min(values):.2f} · q1 {q[0]:.2f} · median {q[1]:.2f} · q3 {q[2]:.2f} · "
            f"max {max(values):.2f}")  # fmt: skip


def dataset_card(conn: sqlite3.Connection, run_id: int, fmt: str, file: str, count: int) -> str:
    summary = run_summary(conn, run_id)
    config = json.loads(
        conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    )
    samples = _rows(conn, run_id, "1")
    generated = max(summary["generated"], 1)
    lines = [
        f"# Dataset card: run {run_id} ({fmt.upper()})", "",
        f"File: `{file}` — {count} records, made by telesynth from its telecom knowledge graph.",
        "",
        "## Generation", "",
        *_generation_lines(conn, run_id, config),
        f"- seed {config['seed']}, {summary['plans']} plans, mix "
        + ", ".join(f"{k} {v:g}" for k, v in config["mix"].items()),
        f"- minimum quality {config['min_quality']}; filters "
        + ", ".join(f"{k} {v:g}" for k, v in config["filters"].items()), "",
        "## Counts", "",
        f"{summary['generated']} generated, {summary['accepted']} accepted, "
        f"{summary['rejected']} rejected.", "",
        "| type | accepted | rejected |", "|---|---|---|",
        *(f"| {t} | {c.get('accepted', 0)} | {c.get('rejected', 0)} |"
          for t, c in summary["by_type"].items()), "",
        "## Drop rate per filter", "",
        "| filter | dropped | share of generated |", "|---|---|---|",
        *(f"| {k} | {v} | {v / generated:.1%} |" for k, v in summary["rejected_by_filter"].items()),
        "", "## Score distributions (accepted samples)", "",
    ]  # fmt: skip
    accepted = [s for s in samples if s["status"] == "accepted"]
    for key in (*SCORE_KEYS, "quality"):
        values = [
            float(s["quality"] if key == "quality" else (s["scores"] or {}).get(key))
            for s in accepted
            if (s["quality"] if key == "quality" else (s["scores"] or {}).get(key)) is not None
        ]
        lines.append(f"- {key}: {_distribution(values)}")
    lines += [
        "", "## Models, tokens and energy", "",
        f"- model calls: {summary['model_calls']}; tokens in {summary['prompt_tokens']}, "
        f"out {summary['output_tokens']}; model time {summary['model_seconds']} s",
        f"- energy: {summary['energy_j']} J "
        f"(source: {summary['energy_source'] or 'no model calls'})",
        "", "## Provenance", "",
        "Every record's `metadata` names its sample, plan, the context item ids it was built from "
        "(chunks, facts, formulas), the entity and relation ids of the plan, the generator and "
        "its scores. The knowledge comes from the bundled `kg/` documents (written for telesynth) "
        "and whatever the project imported.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"
