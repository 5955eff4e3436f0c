"""Dataset cards: YAML front matter that `datasets` and the Hugging Face Hub read (license,
language, task categories, size, configs and column types), then the run's story in Markdown:
counts, drop rates, score distributions, models, tokens, energy and the layout version."""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
from pathlib import Path
from typing import Any

from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.export.records import FLOAT_SCORES, Shape, scores
from telesynth_tui.pipeline.export.schema import features

CARD_SUFFIX = ".card.md"
TASKS = {
    "sft": ["text-generation", "question-answering"],
    "rft": ["text-generation", "question-answering"],
    "dpo": ["text-generation"],
    "csv": ["question-answering"],
}


def yaml(value: Any, indent: int = 0) -> str:
    """A small YAML emitter for dicts, lists and scalars (strings double-quoted, JSON-style)."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{k}:\n{yaml(v, indent + 2)}")
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for v in value:
            if isinstance(v, dict) and v:
                body = yaml(v, indent + 2)
                lines.append(f"{pad}- {body[indent + 2 :]}")
            elif isinstance(v, list) and v:
                lines.append(f"{pad}-\n{yaml(v, indent + 2)}")
            else:
                lines.append(f"{pad}- {_scalar(v)}")
        return "\n".join(lines)
    return pad + _scalar(value)


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return json.dumps(v)
    if isinstance(v, dict | list):
        return "{}" if isinstance(v, dict) else "[]"
    return json.dumps(str(v), ensure_ascii=False)


def size_category(n: int) -> str:
    for bound, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < bound:
            return label
    return "n>1T" if n > 10**12 else "10M<n<100M"


def front_matter(
    shape: Shape,
    run_id: int,
    count: int,
    license_id: str,
    files: list[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "pretty_name": f"telesynth run {run_id} ({shape.name})",
        "license": license_id,
        "language": ["en"],
        "task_categories": TASKS[shape.fmt],
        "size_categories": [size_category(count)],
        "tags": ["telecom", "synthetic", "telesynth"],
        **(extra or {}),
        "telesynth": {"layout": shape.name, "run": run_id, "records": count, "files": files},
    }


def hf_extra(shape: Shape, splits: dict[str, str]) -> dict[str, Any]:
    """`configs` and `dataset_info` of a dataset folder whose splits are the given files."""
    return {
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": p} for s, p in splits.items()],
            }
        ],
        "dataset_info": {"features": features(shape)},
    }


def _distribution(values: list[float]) -> str:
    if not values:
        return "-"
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return (
        f"min {min(values):.2f} · q1 {q[0]:.2f} · median {q[1]:.2f} · q3 {q[2]:.2f} · "
        f"max {max(values):.2f}"
    )


def _generation_lines(conn: sqlite3.Connection, run_id: int, config: dict[str, Any]) -> list[str]:
    dta = store.dta_run(conn, run_id)
    if dta is None:
        return [
            f"- generator: {config['generator']}; refiner: {config.get('refiner') or 'none'}; "
            "scoring: fast (ragas non-LLM context precision/recall, embedding relevancy, "
            "lexical faithfulness)"
        ]
    dta_config, profile = dta.config, dta.profile
    teachers = (["solver"] if dta_config.get("use_solver") else []) + dta_config["teachers"]
    return [
        f"- Data Trajectory Alignment for the student {dta.student}: "
        f"teachers {', '.join(teachers)}; "
        f"rewriter {dta_config.get('rewriter') or 'none (layout only)'}; reflection judge "
        f"{dta_config.get('judge') or 'step checker'}",
        f"- student style (from {profile.get('probes', 0)} probe answers): "
        f"{profile.get('words')} words, {profile.get('steps')} steps, {profile.get('layout')}, "
        f"final answer marker {profile.get('marker') or '(none)'!r}",
        "- one exemplar per problem at most: the teacher answer that agrees with the computed "
        "truth (maths) or the documented plan (troubleshooting) and passes the judge, best "
        "ranked; the others are kept as rejections with their reason (DPO exports pair them)",
    ]


_COLUMNS = {
    "sft": "`messages` (system, user, assistant) and `metadata`",
    "sft-prompt-completion": "`prompt` (system, user), `completion` (assistant) and `metadata`: "
    "TRL's prompt-completion type, the loss falls on the answer only",
    "rft": "`messages` and `prompt` (the same system and user messages: OpenAI's RFT layout and "
    "TRL GRPO's prompt column), `reference_answer`, `rubric` (criterion and terms), `type`, "
    "`numeric_answer`, `unit` and `tolerance` (null unless maths) and `metadata`; reward "
    "functions for TRL's GRPOTrainer: `telesynth_tui.pipeline.rewards`",
    "dpo": "`prompt` (system, user), `chosen` and `rejected` (assistant): TRL's conversational "
    "preference type, and `metadata` (with the rejected sample and why it was dropped)",
    "sft-openai": "`messages` only (OpenAI chat fine-tuning); provenance in the side file",
    "rft-openai": "`messages` (developer, user), `reference_answer`, `rubric`, `type`, "
    "`numeric_answer`, `unit`, `tolerance` (OpenAI reinforcement fine-tuning: grader fields as "
    "`item.*`); provenance in the side file",
    "dpo-openai": "`input.messages`, `preferred_output`, `non_preferred_output` (OpenAI "
    "preference fine-tuning); provenance in the side file",
    "csv": "every sample with status, scores and reasons; `steps`, `cited` and `agrees_with` as "
    "JSON lists",
}


def _token_lines(tokens: dict[str, Any] | None, warnings: list[str]) -> list[str]:
    if tokens is None:
        return ["Not counted (no tokenizer model could be loaded; see --tokenizer)."]

    def cell(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    lines = [
        f"Counted with the chat template and tokenizer of `{tokens['tokenizer']}`.",
        "",
        "| part | median | p95 | max |",
        "|---|---|---|---|",
        *(
            f"| {part} | {cell(tokens[part]['median'])} | {cell(tokens[part]['p95'])} | "
            f"{cell(tokens[part]['max'])} |"
            for part in ("prompt", "completion", "total")
        ),
    ]
    if tokens["max_tokens"] is not None:
        lines += [
            "",
            f"--max-tokens {tokens['max_tokens']}: context trimmed in "
            f"{tokens['trimmed']} records; {tokens['over_limit']} still over the limit.",
        ]
    lines += [f"\nWarning: {w}" for w in warnings]
    return lines


def body(
    conn: sqlite3.Connection,
    run_id: int,
    shape: Shape,
    files: str,
    count: int,
    tokens: dict[str, Any] | None,
    warnings: list[str],
    splits: dict[str, int] | None = None,
) -> list[str]:
    summary = store.run_summary(conn, run_id)
    config = store.run_config(conn, run_id)
    everything = store.samples(conn, run_id)
    generated = max(summary["generated"], 1)
    key = shape.name.split("/")[0]
    split_line = (
        ", split by plan: " + ", ".join(f"{k} {v}" for k, v in splits.items()) if splits else ""
    )
    lines = [
        f"# Dataset card: run {run_id} ({shape.fmt.upper()})",
        "",
        f"File: {files} — {count} records{split_line}, made by telesynth from its telecom "
        "knowledge graph.",
        "",
        "## Layout",
        "",
        f"Layout `{shape.name}` (version {shape.name.split('/')[1]}): {_COLUMNS[key]}. Every "
        "key is present in every record, null where it does not apply; `metadata` has the same "
        "shape for generation and DTA runs.",
        "",
        *(
            ["## Token lengths", "", *_token_lines(tokens, warnings), ""]
            if shape.fmt != "csv"
            else []
        ),
        "## Generation",
        "",
        *_generation_lines(conn, run_id, config),
        f"- seed {config['seed']}, {summary['plans']} plans, mix "
        + ", ".join(f"{k} {v:g}" for k, v in config["mix"].items()),
        f"- minimum quality {config['min_quality']}; filters "
        + ", ".join(f"{k} {v:g}" for k, v in config["filters"].items()),
        "",
        "## Counts",
        "",
        f"{summary['generated']} generated, {summary['accepted']} accepted, "
        f"{summary['rejected']} rejected.",
        "",
        "| type | accepted | rejected |",
        "|---|---|---|",
        *(
            f"| {t} | {c.get('accepted', 0)} | {c.get('rejected', 0)} |"
            for t, c in summary["by_type"].items()
        ),
        "",
        "## Drop rate per filter",
        "",
        "| filter | dropped | share of generated |",
        "|---|---|---|",
        *(f"| {k} | {v} | {v / generated:.1%} |" for k, v in summary["rejected_by_filter"].items()),
        "",
        "## Score distributions (accepted samples)",
        "",
    ]
    accepted = [s for s in everything if s.accepted]
    normal = [{**scores(s.scores), "quality": s.quality} for s in accepted]
    for name in (*FLOAT_SCORES, "quality"):
        values = [float(n[name]) for n in normal if n[name] is not None]
        if values or name == "quality":
            lines.append(f"- {name}: {_distribution(values)}")
    lines += [
        "",
        "## Models, tokens and energy",
        "",
        f"- model calls: {summary['model_calls']}; tokens in {summary['prompt_tokens']}, "
        f"out {summary['output_tokens']}; model time {summary['model_seconds']} s",
        f"- energy: {summary['energy_j']} J "
        f"(source: {summary['energy_source'] or 'no model calls'})",
        "",
        "## Provenance",
        "",
        "Every record's `metadata` (or, for the openai target, the side file keyed by sample "
        "id) names its sample, plan, the context item ids it was built from (chunks, facts, "
        "formulas), the entity and relation ids of the plan, the generator and its scores. The "
        "knowledge comes from the bundled `kg/` documents (written for telesynth) and whatever "
        "the project imported: set the license (--license) to match your sources.",
    ]
    return lines


def render(matter: dict[str, Any], lines: list[str]) -> str:
    return "---\n" + yaml(matter) + "\n---\n\n" + "\n".join(lines) + "\n"


# --- the README of an exports folder ---------------------------------------------------------

FOLDER_MARK = "telesynth_exports: true"
_LAYOUT_RE = re.compile(r'^  layout: "([^"]+)"$', re.M)
_FILE_RE = re.compile(r'^    - "([^"]+)"$', re.M)


def _card_entry(card: Path) -> tuple[str, list[str]] | None:
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---\n"):
        return None
    head = text.split("\n---\n", 1)[0]
    layout = _LAYOUT_RE.search(head)
    if layout is None:
        return None
    return layout.group(1), _FILE_RE.findall(head.split("  files:", 1)[-1])


def folder_readme(folder: Path) -> str | None:
    """A README.md for a folder of exports: one config per layout (and file type) listing the
    files of that layout, with its column types, so `load_dataset(folder, NAME)` reads exports
    of different runs together. None when the folder holds no JSONL or parquet exports."""
    groups: dict[str, tuple[Shape, list[str]]] = {}
    for card in sorted(folder.glob(f"*{CARD_SUFFIX}")):
        entry = _card_entry(card)
        if entry is None:
            continue
        name, files = entry
        files = [f for f in files if (folder / f).is_file() and f.endswith((".jsonl", ".parquet"))]
        if not files:
            continue
        shape = _shape_of(name)
        if shape is None:
            continue
        base = name.split("/")[0]
        for f in files:
            config = base + ("-parquet" if f.endswith(".parquet") else "")
            groups.setdefault(config, (shape, []))[1].append(f)
    if not groups:
        return None
    configs, infos = [], []
    order = {"sft": 0, "rft": 1, "dpo": 2}  # the default config is sft when there is one
    ranked = sorted(groups.items(), key=lambda g: (order[g[1][0].fmt], g[0]))
    for i, (config, (shape, files)) in enumerate(ranked):
        item: dict[str, Any] = {"config_name": config}
        if i == 0:
            item["default"] = True
        item["data_files"] = [{"split": "train", "path": sorted(files)}]
        configs.append(item)
        infos.append({"config_name": config, "features": features(shape)})
    matter = {
        "configs": configs,
        "dataset_info": infos,
        "tags": ["telecom", "synthetic"],
        "telesynth_exports": True,
    }
    lines = [
        "# telesynth exports",
        "",
        "Each config is one export layout; its files are exports of different runs, read "
        'together with `datasets.load_dataset("<this folder>", "<config>")`. Each '
        f"file's own card (`*{CARD_SUFFIX}`) tells how it was made.",
        "",
        *(
            f"- `{c}`: {', '.join(f'`{f}`' for f in sorted(files))}"
            for c, (_, files) in sorted(groups.items())
        ),
    ]
    return render(matter, lines)


def _shape_of(name: str) -> Shape | None:
    base = name.split("/")[0]
    parts = base.split("-", 1)
    fmt, rest = parts[0], parts[1] if len(parts) > 1 else ""
    if fmt not in ("sft", "rft", "dpo"):
        return None
    target = "openai" if rest.endswith("openai") else "trl"
    layout = "prompt-completion" if rest.startswith("prompt-completion") else "messages"
    return Shape(fmt, layout, target)


def ours(readme: Path) -> bool:
    """Is this README.md one telesynth wrote (and may rewrite)?"""
    try:
        head = readme.read_text(encoding="utf-8", errors="replace")[:20_000]
    except OSError:
        return False
    return "\ntelesynth_exports: true\n" in head.split("\n---\n", 1)[0] + "\n"
