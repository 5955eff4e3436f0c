"""Evaluation sets read as real benchmarks ship them: TeleQnA JSON, MM-TelcoBench CSVs
(single-answer, several-correct, long free-form, multi-hop free-form) and ORAN-Bench JSON lines.
A malformed item is skipped and counted with its reason; an unknown file is a clear error."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from telesynth_tui.errors import TelesynthError

LETTERS = "ABCDEFGH"


@dataclass
class EvalItem:
    id: str
    question: str
    kind: str  # mcq | free
    options: list[str] = field(default_factory=list)
    answers: set[int] = field(default_factory=set)  # 0-based correct options (mcq)
    references: list[str] = field(default_factory=list)  # reference answers (free)
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class EvalSet:
    path: Path
    format: str
    items: list[EvalItem]
    skipped: list[str] = field(default_factory=list)  # "where: why" per malformed item


def _clean(text: str) -> str:
    """Cell text without the bullets and line breaks some exports carry."""
    return " ".join(text.replace("•", " ").split())


MAX_SET_BYTES = 500_000_000  # an evaluation file larger than this is refused before reading


def read_text_file(path: Path) -> str:
    from telesynth_tui.graph.readers import ReadError, read_bounded

    if not path.exists():
        raise TelesynthError(f"{path}: no such file")
    try:
        data = read_bounded(path, MAX_SET_BYTES)
        return data.decode("utf-8-sig")
    except ReadError as exc:
        raise TelesynthError(f"{path}: {exc.message}") from None
    except UnicodeDecodeError as exc:
        raise TelesynthError(f"{path}: not valid UTF-8 (byte {exc.start})") from None


def read_teleqna(path: Path, text: str) -> EvalSet:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TelesynthError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise TelesynthError(f"{path}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise TelesynthError(f"{path}: expected a JSON object of questions")
    out = EvalSet(path, "teleqna", [])
    for key, item in data.items():
        try:
            options = []
            n = 1
            while f"option {n}" in item:
                options.append(_clean(str(item[f"option {n}"])))
                n += 1
            match = re.match(r"\s*option\s*(\d+)", str(item["answer"]), re.IGNORECASE)
            if not match or not 1 <= int(match.group(1)) <= len(options):
                raise ValueError(f"answer {item['answer']!r} names no option")
            meta = {"category": str(item.get("category", ""))}
            answer = {int(match.group(1)) - 1}
            out.items.append(
                EvalItem(key, _clean(item["question"]), "mcq", options, answer, meta=meta)
            )
        except (KeyError, TypeError, ValueError) as exc:
            out.skipped.append(f"{key}: {exc}")
    return out


def _csv_rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and rows of a CSV, skipping blank preamble rows; keys are the header cells."""
    reader = csv.reader(io.StringIO(text))
    header: list[str] = []
    rows = []
    for row in reader:
        if not header:
            if any(cell.strip() for cell in row):
                header = [h.strip() for h in row]
            continue
        if not any(cell.strip() for cell in row):
            continue
        rows.append((reader.line_num, dict(zip(header, row, strict=False))))
    return header, rows


def read_mm_csv(path: Path, text: str) -> EvalSet:
    header, rows = _csv_rows(text)
    names = {h.lower() for h in header}
    if "option a" in names:
        return _mm_letter_options(path, header, rows)
    if "option 1" in names:
        return _mm_numbered_options(path, header, rows)
    if "candidate answer 1" in names:
        return _mm_free(
            path,
            rows,
            [h for h in header if h.lower().startswith("candidate answer")],
            "mm-telcobench-long",
        )
    if {"question", "answer"} <= names:
        return _mm_free(path, rows, ["Answer"], "mm-telcobench-multihop-long")
    raise TelesynthError(f"{path}: unknown CSV layout (header {header[:6]})")


def _mm_numbered_options(path: Path, header: list[str], rows: list) -> EvalSet:
    out = EvalSet(path, "mm-telcobench-multi-correct", [])
    option_cols = [h for h in header if re.fullmatch(r"Option \d+", h)]
    for line, row in rows:
        try:
            options = [_clean(row[c]) for c in option_cols if _clean(row.get(c, ""))]
            raw = row["Answer"].strip()
            try:
                listed = ast.literal_eval(raw) if raw.startswith("[") else [raw]
            except (ValueError, SyntaxError):
                listed = [raw]
            answers = {int(m) - 1 for a in listed for m in re.findall(r"(\d+)", str(a))}
            if not answers or not all(0 <= a < len(options) for a in answers):
                raise ValueError(f"answer {raw!r} names no listed option")
            out.items.append(
                EvalItem(f"line {line}", _clean(row["Question"]), "mcq", options, answers)
            )
        except (KeyError, ValueError) as exc:
            out.skipped.append(f"{path.name}:{line}: {exc}")
    return out


def _mm_letter_options(path: Path, header: list[str], rows: list) -> EvalSet:
    out = EvalSet(path, "mm-telcobench-multihop-mcq", [])
    option_cols = [h for h in header if re.fullmatch(r"Option [A-H]", h)]
    for line, row in rows:
        try:
            options = [_clean(row[c]) for c in option_cols]
            raw = _clean(row["Answer"])
            match = re.match(
                r"(?:option\s*)?\(?([A-H])\b", raw.replace("*", "").strip(), re.IGNORECASE
            )
            if not match:
                raise ValueError(f"answer {raw!r} names no option letter")
            index = LETTERS.index(match.group(1).upper())
            if index >= len(options):
                raise ValueError(f"answer {raw!r} is beyond the options")
            out.items.append(
                EvalItem(f"line {line}", _clean(row["Question"]), "mcq", options, {index})
            )
        except (KeyError, ValueError) as exc:
            out.skipped.append(f"{path.name}:{line}: {exc}")
    return out


def _mm_free(path: Path, rows: list, answer_cols: list[str], fmt: str) -> EvalSet:
    out = EvalSet(path, fmt, [])
    for line, row in rows:
        question = _clean(row.get("Question", ""))
        references = [_clean(row.get(c, "")) for c in answer_cols if _clean(row.get(c, ""))]
        if not question or not references:
            out.skipped.append(f"{path.name}:{line}: missing question or reference answer")
            continue
        meta = {k: _clean(row[k]) for k in ("Source", "Section") if row.get(k)}
        out.items.append(
            EvalItem(f"line {line}", question, "free", references=references, meta=meta)
        )
    return out


def read_oran_jsonl(path: Path, text: str) -> EvalSet:
    out = EvalSet(path, "oran-bench", [])
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            question, options, answer = json.loads(content)
            if not _clean(str(question)):
                raise ValueError("empty question")
            options = [re.sub(r"^\s*\d+\.\s*", "", str(o)).strip() for o in options]
            index = int(str(answer).strip()) - 1
            if not 0 <= index < len(options):
                raise ValueError(f"answer {answer!r} is beyond the options")
            out.items.append(
                EvalItem(f"line {line}", _clean(str(question)), "mcq", options, {index})
            )
        except json.JSONDecodeError as exc:
            out.skipped.append(f"{path.name}:{line}: invalid JSON ({exc.msg})")
        except (TypeError, ValueError) as exc:
            out.skipped.append(f"{path.name}:{line}: {exc}")
        except RecursionError:
            out.skipped.append(f"{path.name}:{line}: JSON nested too deeply")
    return out


def read_eval_set(path: Path, fmt: str | None = None) -> EvalSet:
    """Read an evaluation file, detecting its format from its content unless given."""
    text = read_text_file(path)
    stripped = text.lstrip()
    if fmt == "teleqna" or (fmt is None and stripped.startswith("{")):
        return read_teleqna(path, text)
    if fmt == "oran" or (fmt is None and stripped.startswith("[")):
        return read_oran_jsonl(path, text)
    if fmt in (None, "mm-telcobench") and path.suffix.lower() == ".csv":
        return read_mm_csv(path, text)
    raise TelesynthError(
        f"{path}: unknown evaluation format (TeleQnA JSON, MM-TelcoBench CSV or ORAN-Bench JSON "
        "lines are read)"
    )
