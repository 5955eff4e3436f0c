"""Student evaluation: a registered GGUF answers an evaluation set (benchmarks as shipped, or
held-out samples exported from our runs); every answer is scored and stored with its latency,
tokens/s and energy per output token."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.evaluate.answers import LETTERS, parse_choice
from telesynth_tui.evaluate.metrics import bleu, embedding_f1, mean, rouge_l
from telesynth_tui.evaluate.readers import EvalItem, EvalSet, read_eval_set, read_text_file
from telesynth_tui.inference.base import Message, SamplingParams, TextModel
from telesynth_tui.inference.metrics import ENERGY_NOT_MEASURED
from telesynth_tui.infra import now, transaction
from telesynth_tui.units import check_numeric

MCQ_SYSTEM = "Answer the multiple-choice question about telecommunications."
FREE_SYSTEM = "Answer the telecommunications question precisely and briefly."


def read_own_samples(path: Path, text: str | None = None) -> EvalSet:
    """Held-out samples exported from a telesynth run (RFT or SFT JSONL)."""
    out = EvalSet(path, "telesynth", [])
    text = read_text_file(path) if text is None else text
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
            messages = record.get("prompt") or record["messages"][:-1]
            user = next(m["content"] for m in messages if m["role"] == "user")
            reference = record.get("reference_answer")
            if reference is None:  # sft layouts: the answer is the last message
                reference = (record.get("completion") or record["messages"])[-1]["content"]
            question = user.split("Question: ", 1)[-1]
            context = (
                user.split("Question: ", 1)[0].removeprefix("Context:\n")
                if "Question: " in user
                else ""
            )
            meta = {"context": context.strip(), "type": str(record.get("type", ""))}
            if record.get("numeric_answer") is not None:  # null unless maths
                meta.update(numeric=str(record["numeric_answer"]), unit=str(record.get("unit", "")))
            out.items.append(
                EvalItem(f"line {line}", question, "free", references=[reference], meta=meta)
            )
        except (json.JSONDecodeError, KeyError, StopIteration, TypeError) as exc:
            out.skipped.append(f"{path.name}:{line}: {type(exc).__name__}: {exc}")
        except RecursionError:
            out.skipped.append(f"{path.name}:{line}: JSON nested too deeply")
    return out


def load_set(path: Path, fmt: str | None) -> EvalSet:
    text = read_text_file(path)  # a regular file within the size limit, or a one-line error
    if fmt == "telesynth" or (fmt is None and path.suffix == ".jsonl" and _looks_like_ours(text)):
        return read_own_samples(path, text)
    return read_eval_set(path, fmt)


def _looks_like_ours(text: str) -> bool:
    try:
        first = json.loads(text.split("\n", 1)[0] or "{}")
    except (json.JSONDecodeError, RecursionError):
        return False
    return isinstance(first, dict) and "metadata" in first


@dataclass
class ItemResult:
    item: EvalItem
    prompt: str
    output: str
    correct: bool | None
    scores: dict[str, Any]
    metrics: dict[str, Any]


def _mcq_prompt(item: EvalItem) -> str:
    options = "\n".join(f"{LETTERS[i]}) {o}" for i, o in enumerate(item.options))
    several = (
        " (several may be correct: give every correct letter)" if len(item.answers) > 1 else ""
    )
    return f"{item.question}\n{options}\nAnswer with the letter of the correct option{several}."


def item_messages(item: EvalItem, mode: str) -> tuple[str, list[Message]]:
    """The prompt an item puts to the student, and the chat messages carrying it."""
    if item.kind == "mcq":
        prompt = _mcq_prompt(item)
        return prompt, [
            {"role": "system", "content": MCQ_SYSTEM},
            {"role": "user", "content": prompt},
        ]
    context = item.meta.get("context", "")
    prompt = (
        item.question
        if mode == "closed" or not context
        else (f"Context:\n{context}\n\nQuestion: {item.question}")
    )
    return prompt, [{"role": "system", "content": FREE_SYSTEM}, {"role": "user", "content": prompt}]


def evaluate_item(
    student: TextModel, item: EvalItem, mode: str, encoder: Any, max_tokens: int
) -> ItemResult:
    prompt, messages = item_messages(item, mode)
    try:
        done = student.complete(messages, SamplingParams(max_tokens=max_tokens))
    except TelesynthError as exc:  # e.g. a prompt longer than the student's context: wrong
        graded = None if item.kind == "free" and "numeric" not in item.meta else False
        return ItemResult(item, prompt, "", graded, {"error": str(exc)}, {})
    output, metrics = done.text, done.metrics.to_dict()
    scores: dict[str, Any] = {}
    if item.kind == "mcq":
        chosen = parse_choice(output, item.options, multiple=len(item.answers) > 1)
        scores["chosen"] = sorted(chosen)
        correct: bool | None = chosen == item.answers
    elif "numeric" in item.meta:
        check = check_numeric(output, float(item.meta["numeric"]), item.meta.get("unit", ""))
        scores["numeric"] = check.detail
        correct = check.ok
    else:
        correct = None
    if item.kind == "free":
        scores["rouge_l"] = round(rouge_l(output, item.references), 4)
        scores["bleu"] = round(bleu(output, item.references), 4)
        scores["embedding_f1"] = round(embedding_f1(output, item.references, encoder), 4)
    return ItemResult(item, prompt, output, correct, scores, metrics)


def summarize(results: list[ItemResult]) -> dict[str, Any]:
    graded = [r.correct for r in results if r.correct is not None]
    out_tokens = sum(r.metrics.get("output_tokens", 0) for r in results)
    joules = sum(r.metrics.get("energy_j", 0.0) for r in results)
    # a served model's calls measure no energy: no figure rather than 0
    measured = any(
        r.metrics.get("energy_source") not in (None, ENERGY_NOT_MEASURED) for r in results
    )
    summary: dict[str, Any] = {
        "items": len(results),
        "accuracy": round(sum(graded) / len(graded), 4) if graded else None,
        "graded": len(graded),
        "errors": sum(1 for r in results if "error" in r.scores),
        "latency_s": mean([r.metrics.get("wall_s", 0.0) for r in results]),
        "ttft_s": mean([r.metrics["ttft_s"] for r in results if r.metrics.get("ttft_s")]),
        "decode_tok_s": mean(
            [r.metrics["decode_tok_s"] for r in results if r.metrics.get("decode_tok_s")]
        ),
        "output_tokens": out_tokens,
        "joules_per_output_token": (
            round(joules / out_tokens, 6) if out_tokens and measured else None
        ),
        "energy_source": ",".join(
            sorted({r.metrics.get("energy_source", "") for r in results} - {""})
        ),
    }
    for key in ("rouge_l", "bleu", "embedding_f1"):
        values = [r.scores[key] for r in results if key in r.scores]
        if values:
            summary[key] = round(float(mean(values) or 0.0), 4)
    return summary


def run_evaluation(
    conn: sqlite3.Connection,
    student: TextModel,
    encoder: Any,
    path: Path,
    fmt: str | None = None,
    mode: str = "closed",
    limit: int | None = None,
    max_tokens: int = 64,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Any]:
    if mode not in ("closed", "open"):
        raise TelesynthError("--mode is closed or open")
    data = load_set(path, fmt)
    items = data.items[:limit] if limit else data.items
    if not items:
        raise TelesynthError(f"{path}: no usable items ({len(data.skipped)} malformed)")
    # the calls to come (a student on Ray workers starts them now)
    student.expect(
        [(item_messages(item, mode)[1], SamplingParams(max_tokens=max_tokens)) for item in items]
    )
    results = []
    for i, item in enumerate(items, 1):
        results.append(evaluate_item(student, item, mode, encoder, max_tokens))
        progress(i, len(items))
    summary = summarize(results)
    summary.update(
        {
            "student": student.name,
            "set": str(path),
            "format": data.format,
            "mode": mode,
            "skipped": len(data.skipped),
            "skipped_reasons": data.skipped[:20],
        }
    )
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO eval_runs(created_at, student, set_path, format, mode, summary)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (now(), student.name, str(path), data.format, mode, json.dumps(summary)),
        )
        eval_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO eval_items(eval_run_id, item_id, kind, prompt, output, correct, scores,"
            " metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    eval_id,
                    r.item.id,
                    r.item.kind,
                    r.prompt,
                    r.output,
                    None if r.correct is None else int(r.correct),
                    json.dumps(r.scores),
                    json.dumps(r.metrics),
                )
                for r in results
            ],
        )
    summary["eval_run"] = eval_id
    return summary


# fmt: off
COMPARE_KEYS = ("items", "accuracy", "rouge_l", "bleu", "embedding_f1", "latency_s", "ttft_s",
                "decode_tok_s", "joules_per_output_token", "energy_source")
# fmt: on


def compare(conn: sqlite3.Connection, a: int, b: int) -> list[tuple[str, Any, Any]]:
    rows = []
    summaries = []
    for run in (a, b):
        row = conn.execute("SELECT student, summary FROM eval_runs WHERE id = ?", (run,)).fetchone()
        if row is None:
            raise TelesynthError(f"no evaluation run {run}")
        summaries.append({"student": row[0], **json.loads(row[1])})
    for key in ("student", "format", "mode", *COMPARE_KEYS):
        rows.append((key, summaries[0].get(key), summaries[1].get(key)))
    return rows
