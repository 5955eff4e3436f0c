"""Exporting one run: the records of the chosen layout, their token lengths, the file (or a
dataset folder with splits) and its dataset card. Every file goes through `write_atomic`.

Accepted samples are exported unless a reviewer rejected them, and rejected ones a reviewer
accepted or edited are exported too (DPO pairs them with dropped answers to the same question).
An export with nothing to write is refused and writes no file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.infra import write_atomic
from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.export import card, files
from telesynth_tui.pipeline.export.records import Shape, items, record, side_record
from telesynth_tui.pipeline.export.tokens import Counter, measure


@dataclass
class Tokenizer:
    """Counts the tokens of chat messages as a model's chat template and tokenizer do."""

    name: str
    count: Counter


def project_tokenizer(project: Any, name: str | None, required: bool) -> Tokenizer | None:
    """The chat template and tokenizer of a registered GGUF (by default the project's default
    generator); None when that cannot be loaded and counting was not asked for."""
    try:
        generator = project.generator(name or project.settings.models.generator)
    except TelesynthError as exc:
        if required:
            raise TelesynthError(f"--tokenizer: {exc}") from None
        return None

    def count(messages: Any) -> int:
        return len(generator.tokenize(generator.render(messages)))

    return Tokenizer(generator.name, count)


def default_out(
    project_dir: Path, run_id: int, fmt: str, layout: str, target: str, hf: bool
) -> Path:
    """exports/run<N>-<format>[-<layout>][-openai].<jsonl|csv>, or a -hf folder."""
    name = f"run{run_id}-{fmt}"
    name += f"-{layout}" if layout != "messages" else ""
    name += "-openai" if target == "openai" else ""
    if hf:
        return project_dir / "exports" / f"{name}-hf"
    return project_dir / "exports" / f"{name}.{'csv' if fmt == 'csv' else 'jsonl'}"


def _write(path: Path, data: str | bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as exc:
        raise TelesynthError(f"{path}: cannot write: {exc.strerror or exc}") from None


def export_run(
    conn: sqlite3.Connection,
    run_id: int,
    fmt: str,
    out: Path,
    with_context: bool = False,
    *,
    layout: str = "messages",
    target: str = "trl",
    hf: bool = False,
    max_tokens: int | None = None,
    tokenizer: Tokenizer | Callable[[], Tokenizer | None] | None = None,
    validation: float = 0.1,
    seed: int | None = None,
    license_id: str = "other",
) -> dict[str, Any]:
    """Write the export and its dataset card; returns what was written."""
    shape = Shape(fmt, layout, target)
    shape.check()
    store.check_run(conn, run_id)
    if hf and (fmt == "csv" or target == "openai"):
        raise TelesynthError("--hf writes a dataset folder of the sft, rft or dpo layouts")
    if hf and out.suffix.lower() in (".jsonl", ".parquet", ".csv", ".json"):
        raise TelesynthError(f"{out}: --hf writes a folder: give a folder name")
    if max_tokens is not None and max_tokens < 16:
        raise TelesynthError(f"--max-tokens {max_tokens}: give at least 16")
    if max_tokens is not None and tokenizer is None:
        raise TelesynthError("--max-tokens needs a tokenizer model (--tokenizer NAME)")
    kind_of_file = "parquet" if hf else files.file_kind(shape, out)
    kind = store.run_kind(conn, run_id)
    chosen = items(conn, run_id, fmt)
    if not chosen:
        what = "samples" if fmt == "csv" else "accepted samples"
        raise TelesynthError(f"run {run_id} has nothing to export: no {what}; nothing written")
    tokens, warnings = None, []
    if callable(tokenizer):  # loaded once there is something to count
        tokenizer = tokenizer()
    if tokenizer is not None and fmt != "csv":
        lengths = measure(chosen, tokenizer.count, tokenizer.name, with_context, max_tokens)
        tokens = lengths.summary()
        if (warning := lengths.warning()) is not None:
            warnings.append(warning)
    result: dict[str, Any] = {
        "run": run_id,
        "format": fmt,
        "layout": shape.name,
        "records": len(chosen),
        "tokens": tokens,
        "warnings": warnings,
    }
    if hf:
        return {
            **result,
            **_dataset_folder(
                conn,
                run_id,
                shape,
                out,
                chosen,
                kind,
                with_context,
                validation,
                seed,
                license_id,
                tokens,
                warnings,
            ),
        }
    if fmt == "csv":
        data: str | bytes = files.csv_text(chosen, kind)
    else:
        records = [record(i, shape, kind, with_context) for i in chosen]
        data = files.parquet(records, shape) if kind_of_file == "parquet" else files.jsonl(records)
    written = [out]
    _write(out, data)
    if target == "openai":
        side = out.with_suffix(".provenance.jsonl")
        _write(
            side,
            files.jsonl([side_record(n, i, kind, with_context) for n, i in enumerate(chosen, 1)]),
        )
        result["provenance"] = str(side)
        written.append(side)
    # run1-sft.jsonl -> run1-sft.card.md; a parquet file beside it gets run1-sft.parquet.card.md
    stem = out.name if kind_of_file == "parquet" else out.stem
    card_path = out.with_name(stem + card.CARD_SUFFIX)
    matter = card.front_matter(shape, run_id, len(chosen), license_id, [out.name])
    lines = card.body(conn, run_id, shape, f"`{out.name}`", len(chosen), tokens, warnings)
    _write(card_path, card.render(matter, lines))
    result.update(file=str(out), card=str(card_path))
    readme = out.parent / "README.md"
    if fmt != "csv":
        if readme.exists() and not card.ours(readme):
            result["readme"] = None
            warnings.append(
                f"{readme} is not telesynth's: left as it is (the folder's configs "
                "for load_dataset are not written)"
            )
        elif (text := card.folder_readme(out.parent)) is not None:
            _write(readme, text)
            result["readme"] = str(readme)
    return result


def _dataset_folder(
    conn: sqlite3.Connection,
    run_id: int,
    shape: Shape,
    out: Path,
    chosen: list[Any],
    kind: str,
    with_context: bool,
    validation: float,
    seed: int | None,
    license_id: str,
    tokens: dict[str, Any] | None,
    warnings: list[str],
) -> dict[str, Any]:
    """A folder `datasets.load_dataset(out)` and the Hub read: parquet splits and README.md."""
    if out.exists() and not out.is_dir():
        raise TelesynthError(f"{out}: exists and is not a folder")
    if seed is None:
        seed = int(store.run_config(conn, run_id).get("seed") or 0)
    splits = files.split_by_plan(chosen, validation, seed)
    paths = {name: f"{name}.parquet" for name in splits}
    for name, part in splits.items():
        records = [record(i, shape, kind, with_context) for i in part]
        _write(out / paths[name], files.parquet(records, shape))
    counts = {name: len(part) for name, part in splits.items()}
    matter = card.front_matter(
        shape, run_id, len(chosen), license_id, list(paths.values()), card.hf_extra(shape, paths)
    )
    matter["telesynth"].update(split_seed=seed, validation=validation)
    listing = ", ".join(f"`{p}`" for p in paths.values())
    lines = card.body(conn, run_id, shape, listing, len(chosen), tokens, warnings, counts)
    _write(out / "README.md", card.render(matter, lines))
    return {
        "folder": str(out),
        "splits": counts,
        "split_seed": seed,
        "card": str(out / "README.md"),
        "file": str(out),
    }
