"""Serialising records: JSON lines, parquet (only when the file name asks for it), CSV, and the
train/validation split by plan of a dataset folder."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.pipeline.export.records import SCORE_KEYS, Item, Shape, scores
from telesynth_tui.pipeline.export.schema import schema


def file_kind(shape: Shape, out: Path) -> str:
    """`jsonl`, `parquet` or `csv` from the file name; anything else is refused."""
    suffix = out.suffix.lower()
    if shape.fmt == "csv":
        if suffix != ".csv":
            raise TelesynthError(f"{out}: a csv export needs a .csv file name")
        return "csv"
    allowed = (".jsonl",) if shape.target == "openai" else (".jsonl", ".parquet")
    if suffix not in allowed:
        raise TelesynthError(
            f"{out}: name the file {' or '.join(allowed)} (the file type follows the name)"
        )
    return suffix[1:]


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def parquet(records: list[dict[str, Any]], shape: Shape) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(records, schema=schema(shape))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


CSV_FIELDS = (
    "sample_id",
    "run_id",
    "run_kind",
    "type",
    "status",
    "review",
    "quality",
    *SCORE_KEYS,
    "question",
    "answer",
    "steps",
    "cited",
    "reason",
    "generator",
)


def csv_text(items: list[Item], kind: str) -> str:
    """Every sample for people; lists as JSON so they read back exactly."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for item in items:
        s = item.sample
        score = scores(s.scores)
        writer.writerow(
            {
                "sample_id": s.id,
                "run_id": s.run_id,
                "run_kind": kind,
                "type": s.type,
                "status": s.status,
                "review": s.review or "",
                "quality": "" if s.quality is None else s.quality,
                **{
                    k: "" if v is None else (json.dumps(v) if isinstance(v, list) else v)
                    for k, v in score.items()
                },
                "question": s.question or "",
                "answer": s.answer or "",
                "steps": json.dumps(s.steps, ensure_ascii=False),
                "cited": json.dumps(s.cited, ensure_ascii=False),
                "reason": s.reason or "",
                "generator": s.generator,
            }
        )
    return buffer.getvalue()


def split_by_plan(items: list[Item], validation: float, seed: int) -> dict[str, list[Item]]:
    """Train and validation records, whole plans on one side (sibling answers and DPO pairs of
    a plan never straddle the splits), chosen by a seeded shuffle of the plan ids."""
    if not 0 <= validation < 1:
        raise TelesynthError(f"--validation {validation}: give a fraction in [0, 1)")
    plans = sorted({i.sample.plan_id for i in items})
    random.Random(seed).shuffle(plans)
    n_val = round(validation * len(plans))
    if validation > 0 and len(plans) >= 2:
        n_val = min(max(n_val, 1), len(plans) - 1)
    held = set(plans[:n_val])
    splits = {
        "train": [i for i in items if i.sample.plan_id not in held],
        "validation": [i for i in items if i.sample.plan_id in held],
    }
    return {k: v for k, v in splits.items() if v}
